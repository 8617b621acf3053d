-- jobengine schema 3: commands to a worker (such as "the stack of job N") and their answers.
CREATE TABLE commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    worker TEXT NOT NULL,
    job_id INTEGER,
    kind TEXT NOT NULL,
    created_at REAL NOT NULL,
    answered_at REAL,
    answer TEXT
);
CREATE INDEX commands_unanswered ON commands (worker, id) WHERE answered_at IS NULL
