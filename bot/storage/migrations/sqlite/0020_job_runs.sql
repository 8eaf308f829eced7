-- Which scheduled job ran on which local day: a start catches up only the jobs whose hour has
-- passed today and that have not run today (a restart at noon sends no second win-back).
CREATE TABLE job_runs (
    job TEXT NOT NULL,
    day TEXT NOT NULL,
    ran_at TEXT NOT NULL,
    PRIMARY KEY (job, day)
);
