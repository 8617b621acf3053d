-- jobengine schema 2: what identifies a worker's process for sure, and the job types it serves.
ALTER TABLE workers ADD COLUMN types TEXT NOT NULL DEFAULT '[]';
ALTER TABLE workers ADD COLUMN boot_id TEXT;
ALTER TABLE workers ADD COLUMN start_ticks BIGINT;
ALTER TABLE workers ADD COLUMN pid_namespace TEXT;
ALTER TABLE workers ADD COLUMN clock_skew DOUBLE PRECISION
