-- jobengine schema 1 (SQLite): jobs, their events and logs, workers, schedules.
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    args TEXT NOT NULL,
    run_at REAL NOT NULL,
    created_at REAL NOT NULL,
    queued_at REAL,
    started_at REAL,
    finished_at REAL,
    attempt INTEGER NOT NULL DEFAULT 1,
    max_attempts INTEGER NOT NULL DEFAULT 1,
    timeout REAL,
    worker TEXT,
    heartbeat REAL,
    output TEXT,
    errors TEXT,
    result TEXT,
    progress REAL,
    parent INTEGER REFERENCES jobs (id),
    rerun_of INTEGER REFERENCES jobs (id),
    schedule TEXT,
    fire_time REAL,
    cancel_requested_at REAL,
    UNIQUE (schedule, fire_time)
);
CREATE INDEX jobs_claim ON jobs (priority DESC, run_at, id) WHERE status = 'PENDING';
CREATE INDEX jobs_active_worker ON jobs (worker, status) WHERE status IN ('QUEUED', 'RUNNING', 'TO_CANCEL');
CREATE INDEX jobs_status_id ON jobs (status, id);
CREATE INDEX jobs_type_id ON jobs (type, id);
CREATE TABLE job_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL,
    at REAL NOT NULL,
    verb TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT,
    attempt INTEGER NOT NULL
);
CREATE INDEX job_events_job ON job_events (job_id, id);
CREATE TABLE job_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    at REAL NOT NULL,
    level TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX job_logs_job ON job_logs (job_id, id);
CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    heartbeat REAL NOT NULL,
    queues TEXT NOT NULL,
    concurrency INTEGER NOT NULL,
    version TEXT NOT NULL,
    state TEXT NOT NULL,
    stopped_at REAL,
    request TEXT
);
CREATE TABLE schedules (
    name TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    args TEXT NOT NULL,
    expression TEXT,
    every REAL,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    enabled INTEGER NOT NULL DEFAULT 1,
    missed TEXT NOT NULL DEFAULT 'skip',
    missed_window REAL NOT NULL DEFAULT 3600,
    overlap TEXT NOT NULL DEFAULT 'allow',
    queue TEXT,
    priority INTEGER,
    origin TEXT NOT NULL DEFAULT 'runtime',
    last_fire_time REAL,
    next_fire_time REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
)
