-- One row the health check writes, to know the database still takes writes (GET /healthz).
CREATE TABLE liveness (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at TEXT NOT NULL
);
