-- jobengine schema 2: what identifies a worker's process for sure, and the job types it serves.
ALTER TABLE workers ADD COLUMN types TEXT NOT NULL DEFAULT '[]';
ALTER TABLE workers ADD COLUMN boot_id TEXT;
ALTER TABLE workers ADD COLUMN start_ticks BIGINT;
ALTER TABLE workers ADD COLUMN pid_namespace TEXT;
ALTER TABLE workers ADD COLUMN clock_skew REAL;
-- One timeline for every process of this host, whatever steps the wall clock takes: the wall
-- time of the boot, fixed once per boot by the first process; now = anchor + monotonic time.
CREATE TABLE host_clock (
    boot_id TEXT PRIMARY KEY,
    anchor REAL NOT NULL
)
