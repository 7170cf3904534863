-- The library (every upload and job output as a file of its owner, content-addressed per user),
-- the links between jobs and the files they read and wrote, and projects: version control for
-- audio (commits with one or two parents, a snapshot of files + metadata, branches as pointers).
--
-- Row-level security: files, jobs' links and private projects are their owner's alone; a public
-- project (and its commits, branches and the files its commits hold) is readable by every
-- signed-in user and writable only by its owner. The API writes project rows as the user (these
-- policies are what stop a stranger), and library rows with the service role.

create table if not exists public.files (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  name text not null check (char_length(name) between 1 and 200),
  kind text not null default 'other'
    check (kind in ('audio', 'video', 'image', 'midi', 'json', 'text', 'other')),
  content_type text not null default 'application/octet-stream',
  format text,
  bucket text not null,
  path text not null,
  size_bytes bigint not null check (size_bytes >= 0),
  sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  duration_s real,
  sample_rate integer,
  channels integer,
  loudness_lufs real,
  source text not null default 'upload' check (source in ('upload', 'output')),
  job_id uuid,  -- the job that made it; kept as a plain id when that job is deleted
  output_name text,
  pinned boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- Content-addressed per user: the same bytes are one file (and one stored object).
  unique (user_id, sha256)
);
create index if not exists files_user_created on public.files (user_id, created_at desc, id);
create index if not exists files_user_kind on public.files (user_id, kind, created_at desc);
create index if not exists files_object on public.files (bucket, path);

create table if not exists public.job_files (
  job_id uuid not null references public.jobs (id) on delete cascade,
  file_id uuid not null references public.files (id) on delete cascade,
  user_id uuid not null,
  role text not null check (role in ('input', 'output')),
  name text not null default '',
  primary key (job_id, role, name, file_id)
);
create index if not exists job_files_file on public.job_files (file_id);

create table if not exists public.projects (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  name text not null check (char_length(name) between 1 and 100),
  description text not null default '' check (char_length(description) <= 2000),
  is_public boolean not null default false,
  default_branch text not null default 'main',
  forked_from uuid references public.projects (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (user_id, name)
);
create index if not exists projects_user on public.projects (user_id, updated_at desc);
create index if not exists projects_public on public.projects (updated_at desc) where is_public;

-- Commits are keyed by (project, id): a fork copies the rows with the same ids, as git does,
-- so "commit abc" means the same snapshot in the original and in every fork.
create sequence if not exists public.commit_seq;
create table if not exists public.commits (
  project_id uuid not null references public.projects (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  user_id uuid not null,  -- the project's owner (what RLS checks)
  author_id uuid,         -- who made the commit (kept through forks)
  author_email text,
  message text not null check (char_length(message) between 1 and 2000),
  parent_ids uuid[] not null default '{}' check (cardinality(parent_ids) <= 2),
  metadata jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  -- Creation order; a parent always has a smaller seq than its children (forks keep the order).
  seq bigint not null default nextval('public.commit_seq'),
  primary key (project_id, id)
);
create index if not exists commits_project_seq on public.commits (project_id, seq desc);

create table if not exists public.commit_files (
  project_id uuid not null,
  commit_id uuid not null,
  user_id uuid not null,
  role text not null check (role in ('mix', 'stem')),
  name text not null check (char_length(name) between 1 and 60),
  -- restrict: no delete (by the sweeper or a user) can take a file a commit holds.
  file_id uuid not null references public.files (id) on delete restrict,
  primary key (project_id, commit_id, name),
  foreign key (project_id, commit_id) references public.commits (project_id, id) on delete cascade
);
create index if not exists commit_files_file on public.commit_files (file_id);

create table if not exists public.branches (
  project_id uuid not null references public.projects (id) on delete cascade,
  name text not null check (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,59}$'),
  user_id uuid not null,
  head_id uuid not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (project_id, name),
  foreign key (project_id, head_id) references public.commits (project_id, id)
);

alter table public.files enable row level security;
alter table public.job_files enable row level security;
alter table public.projects enable row level security;
alter table public.commits enable row level security;
alter table public.commit_files enable row level security;
alter table public.branches enable row level security;

-- Who may read a project's rows: whoever can see the project row itself (the projects policy:
-- owner, or public). Written as `exists (...)` over projects so the planner checks it once per
-- query (a hashed subplan), not once per row -- a 1,000-commit tree reads in ~1 ms, not ~70.
drop policy if exists "owners read their files" on public.files;
create policy "owners read their files" on public.files
  for select to authenticated using ((select auth.uid()) = user_id);
drop policy if exists "readers of a project read its files" on public.files;
create policy "readers of a project read its files" on public.files
  for select to authenticated using (
    exists (
      select 1 from public.commit_files cf join public.projects p on p.id = cf.project_id
      where cf.file_id = files.id
    )
  );

drop policy if exists "owners read their job files" on public.job_files;
create policy "owners read their job files" on public.job_files
  for select to authenticated using ((select auth.uid()) = user_id);

drop policy if exists "read own or public projects" on public.projects;
create policy "read own or public projects" on public.projects
  for select to authenticated using (is_public or (select auth.uid()) = user_id);
drop policy if exists "owners insert projects" on public.projects;
create policy "owners insert projects" on public.projects
  for insert to authenticated with check ((select auth.uid()) = user_id);
drop policy if exists "owners update projects" on public.projects;
create policy "owners update projects" on public.projects
  for update to authenticated using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);
drop policy if exists "owners delete projects" on public.projects;
create policy "owners delete projects" on public.projects
  for delete to authenticated using ((select auth.uid()) = user_id);

drop policy if exists "read commits of readable projects" on public.commits;
create policy "read commits of readable projects" on public.commits
  for select to authenticated using (exists (select 1 from public.projects p where p.id = project_id));
drop policy if exists "owners write commits" on public.commits;
create policy "owners write commits" on public.commits
  for insert to authenticated with check ((select auth.uid()) = user_id);

drop policy if exists "read commit files of readable projects" on public.commit_files;
create policy "read commit files of readable projects" on public.commit_files
  for select to authenticated using (exists (select 1 from public.projects p where p.id = project_id));
drop policy if exists "owners write commit files" on public.commit_files;
create policy "owners write commit files" on public.commit_files
  for insert to authenticated with check ((select auth.uid()) = user_id);

drop policy if exists "read branches of readable projects" on public.branches;
create policy "read branches of readable projects" on public.branches
  for select to authenticated using (exists (select 1 from public.projects p where p.id = project_id));
drop policy if exists "owners insert branches" on public.branches;
create policy "owners insert branches" on public.branches
  for insert to authenticated with check ((select auth.uid()) = user_id);
drop policy if exists "owners update branches" on public.branches;
create policy "owners update branches" on public.branches
  for update to authenticated using ((select auth.uid()) = user_id)
  with check ((select auth.uid()) = user_id);
drop policy if exists "owners delete branches" on public.branches;
create policy "owners delete branches" on public.branches
  for delete to authenticated using ((select auth.uid()) = user_id);

-- The owner rows of a commit must belong to the project's owner: a stranger cannot slip a
-- commit into someone's project by writing their own id in user_id.
create or replace function public.check_project_owner() returns trigger
language plpgsql security definer set search_path = public as $$
begin
  if not exists (
    select 1 from public.projects p where p.id = new.project_id and p.user_id = new.user_id
  ) then
    raise exception 'user_id must be the project owner' using errcode = '42501';
  end if;
  return new;
end
$$;
drop trigger if exists commits_owner on public.commits;
create trigger commits_owner before insert or update on public.commits
  for each row execute function public.check_project_owner();
drop trigger if exists commit_files_owner on public.commit_files;
create trigger commit_files_owner before insert or update on public.commit_files
  for each row execute function public.check_project_owner();
drop trigger if exists branches_owner on public.branches;
create trigger branches_owner before insert or update on public.branches
  for each row execute function public.check_project_owner();

grant select on public.files, public.job_files to authenticated;
grant select, insert, update, delete on public.projects, public.branches to authenticated;
grant select, insert on public.commits, public.commit_files to authenticated;
grant usage on sequence public.commit_seq to authenticated;
grant all on public.files, public.job_files, public.projects, public.commits, public.commit_files,
  public.branches to service_role;
grant usage, select on all sequences in schema public to service_role;
