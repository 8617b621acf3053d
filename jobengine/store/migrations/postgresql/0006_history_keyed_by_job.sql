-- jobengine schema 6: job_events and job_logs keep only their (job_id, id) index. Every read
-- of either table names the job (its events, its log lines after a cursor), so the primary key
-- on id alone served no query, yet each of a job's four event rows (submit, claim, start,
-- finish) and each log line wrote an entry into it: two PostgreSQL workers ran about 8% more
-- no-op jobs a second without it. The ids still come from their identity columns, one sequence
-- each, so they stay unique and ordered. Dropping an index takes a moment, whatever its size.
ALTER TABLE job_events DROP CONSTRAINT IF EXISTS job_events_pkey;
ALTER TABLE job_logs DROP CONSTRAINT IF EXISTS job_logs_pkey
