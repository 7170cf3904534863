-- Operations: every attempt of a stage kept on its row (retries with backoff), so a person can
-- see which attempt failed how, not only the last outcome.

alter table public.job_stages
  add column if not exists attempt_log jsonb not null default '[]'::jsonb;

-- Retention per job kind: when a job's uploads and outputs were removed by the sweeper (or by
-- the job itself, e.g. a blend deletes its originals once converted), so a sweep never looks
-- at the same job twice and the job's record says its files are gone.
alter table public.jobs
  add column if not exists inputs_swept_at timestamptz,
  add column if not exists outputs_swept_at timestamptz;
create index if not exists jobs_unswept on public.jobs (completed_at)
  where completed_at is not null and (inputs_swept_at is null or outputs_swept_at is null);
