-- Hardening: sessions that end, limits that count attempts, a storage ledger that sees job
-- outputs before they exist, one wake-up per event for the SSE streams, and a login role for
-- the service with only the grants it needs.

-- What an Idempotency-Key was first used for: a replay with a different body is refused.
alter table public.jobs add column if not exists request_hash text;

-- Per-user token generation: a password reset or "log out everywhere" bumps it; access tokens
-- issued before (older `gen` claim, or `iat` before `not_before` for tokens without one) fail.
create table if not exists public.user_token_floors (
  user_id uuid primary key references auth.users (id) on delete cascade,
  generation integer not null default 0,
  not_before timestamptz not null default now()
);

-- Attempts (job creations, failed logins, ...) counted as they happen, not as rows that a user
-- can delete: `bucket` names the limit ('jobs', 'login-account', 'login-address'), `key` whom.
create table if not exists public.rate_attempts (
  id bigserial primary key,
  bucket text not null,
  key text not null,
  created_at timestamptz not null default now()
);
create index if not exists rate_attempts_lookup on public.rate_attempts (bucket, key, created_at);

-- Bytes a job being submitted, queued or running may still write (its uploads while they
-- arrive, then its output estimate), so parallel jobs and uploads cannot together overrun a
-- quota that only counts files already stored. No foreign key: the reservation is taken before
-- the job row exists; reservations of finished or vanished jobs no longer count.
create table if not exists public.storage_reservations (
  job_id uuid primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  bytes bigint not null check (bytes >= 0),
  created_at timestamptz not null default now()
);
create index if not exists storage_reservations_user on public.storage_reservations (user_id);

alter table public.user_token_floors enable row level security;
alter table public.rate_attempts enable row level security;
alter table public.storage_reservations enable row level security;
grant all on public.user_token_floors, public.rate_attempts, public.storage_reservations
  to service_role;
grant usage, select on all sequences in schema public to service_role;

-- One NOTIFY per event: each API process LISTENs once and wakes the streams of that job.
create or replace function public.notify_job_event() returns trigger
language plpgsql as $$
begin
  perform pg_notify('job_events', new.job_id::text || ':' || new.id::text);
  return null;
end
$$;
drop trigger if exists job_events_notify on public.job_events;
create trigger job_events_notify
  after insert on public.job_events
  for each row execute function public.notify_job_event();

-- The service's login role: row-level security is the service's to bypass (like Supabase's
-- service_role), but it is no superuser, owns nothing and cannot change the schema. It can act
-- as `authenticated` for reads on a user's behalf. It is created without a password: set one
-- (or use peer/trust auth, as the embedded server does) before connecting with it.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'soundstage_app') then
    create role soundstage_app login noinherit bypassrls;
  end if;
end
$$;
grant authenticated to soundstage_app;
grant usage on schema public, auth, storage to soundstage_app;
grant select, insert, update, delete on all tables in schema public to soundstage_app;
grant usage, select on all sequences in schema public to soundstage_app;
grant select, insert, update, delete on auth.users, auth.refresh_tokens to soundstage_app;
grant usage, select on all sequences in schema auth to soundstage_app;
grant select, insert, update, delete on storage.objects to soundstage_app;
grant select on storage.buckets to soundstage_app;
grant execute on all functions in schema auth to soundstage_app;
grant execute on all functions in schema storage to soundstage_app;
-- Tables later migrations create (run by the same owner) are usable by the service too.
alter default privileges in schema public
  grant select, insert, update, delete on tables to soundstage_app;
alter default privileges in schema public grant usage, select on sequences to soundstage_app;
alter default privileges in schema public grant execute on functions to soundstage_app;
-- The service may read which migrations ran (health and tests); it cannot write them.
do $$
begin
  if to_regclass('supabase_migrations.schema_migrations') is not null then
    grant usage on schema supabase_migrations to soundstage_app;
    grant select on supabase_migrations.schema_migrations to soundstage_app;
  end if;
end
$$;
