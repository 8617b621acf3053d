-- jobengine schema 4: indexes for the dashboard's reads over a long history. Jobs that ended,
-- by when (the Overview's per-minute chart, /metrics' totals and durations read only the latest
-- minutes); a job's children and reruns (the job page). Building them reads the jobs table once:
-- a few seconds per million jobs, during which writes wait.
CREATE INDEX jobs_finished ON jobs (finished_at, status, started_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_parent ON jobs (parent, id) WHERE parent IS NOT NULL;
CREATE INDEX jobs_rerun_of ON jobs (rerun_of, id) WHERE rerun_of IS NOT NULL
