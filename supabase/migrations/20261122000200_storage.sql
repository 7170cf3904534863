-- Buckets (private; access through signed URLs) and owner-only read policies on their objects.
-- Objects are named `{user_id}/{job_id}/{file}`, so the first folder is the owner.
-- Retention is enforced by the app's sweeper (Supabase Storage has no lifecycle rules);
-- periods live in shared/storage.py (BUCKETS) and supabase/config.toml.

insert into storage.buckets (id, name, public, file_size_limit)
values
  ('audio-uploads', 'audio-uploads', false, 52428800),
  ('stems', 'stems', false, 524288000),
  ('audio-outputs', 'audio-outputs', false, 524288000),
  ('reference-images', 'reference-images', false, 20971520),
  ('video-clips', 'video-clips', false, 209715200),
  ('video-outputs', 'video-outputs', false, 1073741824)
on conflict (id) do nothing;

drop policy if exists "owners read their files" on storage.objects;
create policy "owners read their files" on storage.objects
  for select to authenticated
  using (
    bucket_id in ('audio-uploads', 'stems', 'audio-outputs', 'reference-images', 'video-clips',
                  'video-outputs')
    and (storage.foldername(name))[1] = (select auth.uid())::text
  );
