-- Operations: every attempt of a stage kept on its row (retries with backoff), so a person can
-- see which attempt failed how, not only the last outcome.

alter table public.job_stages
  add column if not exists attempt_log jsonb not null default '[]'::jsonb;
