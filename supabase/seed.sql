-- No seed data: users sign up through Supabase Auth; buckets are created by the migrations.
select 1;
