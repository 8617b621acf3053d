-- jobengine schema 5: the index that makes each (schedule, fire time) fire once holds only the
-- jobs of a schedule. As a table constraint it held every job, and every claim, start and
-- finish (each a new row version, its indexes written again) added an entry of two NULLs to it:
-- two PostgreSQL workers ran 5-9% more no-op jobs a second without them. Building it reads the
-- jobs table once: a few seconds per million jobs, during which writes wait.
ALTER TABLE jobs DROP CONSTRAINT IF EXISTS jobs_schedule_fire_time_key;
CREATE UNIQUE INDEX IF NOT EXISTS jobs_schedule_fire_time ON jobs (schedule, fire_time) WHERE schedule IS NOT NULL
