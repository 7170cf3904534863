-- The job system: one row per job, its stages, its append-only event log, its costs, and the
-- content-addressed analysis cache. Row-level security on every table: owners read their own;
-- the API and workers write with the service role (which bypasses RLS).

create table if not exists public.jobs (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  kind text not null,
  status text not null default 'queued'
    check (status in ('queued', 'processing', 'completed', 'failed', 'canceled')),
  params jsonb not null default '{}'::jsonb,
  inputs jsonb not null default '[]'::jsonb,
  outputs jsonb not null default '[]'::jsonb,
  result jsonb,
  current_stage text,
  progress real not null default 0 check (progress >= 0 and progress <= 100),
  estimated_remaining_s real,
  estimated_duration_s real,
  total_cost_usd numeric(12, 6) not null default 0,
  estimated_cost_usd numeric(12, 6),
  budget_usd numeric(12, 6),
  error_code text,
  error_message text,
  error_retryable boolean,
  idempotency_key text,
  attempts integer not null default 0,
  worker_id text,
  heartbeat_at timestamptz,
  cancel_requested boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  started_at timestamptz,
  completed_at timestamptz,
  expires_at timestamptz
);

create unique index if not exists jobs_idempotency
  on public.jobs (user_id, idempotency_key) where idempotency_key is not null;
create index if not exists jobs_user_created on public.jobs (user_id, created_at desc);
create index if not exists jobs_queue on public.jobs (created_at) where status = 'queued';
create index if not exists jobs_processing on public.jobs (heartbeat_at) where status = 'processing';

create table if not exists public.job_stages (
  id bigserial primary key,
  job_id uuid not null references public.jobs (id) on delete cascade,
  user_id uuid not null,
  name text not null,
  position integer not null,
  status text not null default 'pending'
    check (status in ('pending', 'running', 'completed', 'failed', 'skipped')),
  engine text,
  attempts integer not null default 0,
  started_at timestamptz,
  completed_at timestamptz,
  duration_s real,
  cost_usd numeric(12, 6) not null default 0,
  error text,
  unique (job_id, name)
);

create table if not exists public.job_events (
  id bigserial primary key,
  job_id uuid not null references public.jobs (id) on delete cascade,
  user_id uuid not null,
  type text not null
    check (type in ('stage_update', 'progress', 'message', 'cost_update', 'completed', 'error')),
  data jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);
create index if not exists job_events_job on public.job_events (job_id, id);

create table if not exists public.job_costs (
  id bigserial primary key,
  job_id uuid not null references public.jobs (id) on delete cascade,
  user_id uuid not null,
  stage text,
  provider text not null,
  units real not null,
  unit text not null default 'seconds',
  cost_usd numeric(12, 6) not null,
  detail text,
  created_at timestamptz not null default now()
);
create index if not exists job_costs_job on public.job_costs (job_id);

-- Content hash (+ analysis version or params) -> JSON result. Shared computation, so the key
-- includes the user: one user's upload never reveals that another uploaded the same file.
create table if not exists public.analysis_cache (
  user_id uuid not null references auth.users (id) on delete cascade,
  namespace text not null,
  key text not null,
  value jsonb not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null default now() + interval '14 days',
  primary key (user_id, namespace, key)
);

alter table public.jobs enable row level security;
alter table public.job_stages enable row level security;
alter table public.job_events enable row level security;
alter table public.job_costs enable row level security;
alter table public.analysis_cache enable row level security;

drop policy if exists "owners read their jobs" on public.jobs;
create policy "owners read their jobs" on public.jobs
  for select to authenticated using ((select auth.uid()) = user_id);
drop policy if exists "owners read their job stages" on public.job_stages;
create policy "owners read their job stages" on public.job_stages
  for select to authenticated using ((select auth.uid()) = user_id);
drop policy if exists "owners read their job events" on public.job_events;
create policy "owners read their job events" on public.job_events
  for select to authenticated using ((select auth.uid()) = user_id);
drop policy if exists "owners read their job costs" on public.job_costs;
create policy "owners read their job costs" on public.job_costs
  for select to authenticated using ((select auth.uid()) = user_id);
drop policy if exists "owners read their cache" on public.analysis_cache;
create policy "owners read their cache" on public.analysis_cache
  for select to authenticated using ((select auth.uid()) = user_id);

grant select on public.jobs, public.job_stages, public.job_events, public.job_costs,
  public.analysis_cache to authenticated;
grant all on public.jobs, public.job_stages, public.job_events, public.job_costs,
  public.analysis_cache to service_role;
grant usage, select on all sequences in schema public to service_role;
