-- Running a real shop: codes that outlive a change of rules, the rules each start ran with,
-- and repeated requests counted instead of stored one by one.

-- The reward a code was issued for, as it was then (JSON): removing or renaming the reward in
-- the program file later does not change what the customer was promised.
ALTER TABLE redemptions ADD COLUMN reward_snapshot TEXT;

-- The program file each start ran with, so that check-config can say what a new one changes.
CREATE TABLE program_history (
    id INTEGER PRIMARY KEY,
    rules TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);

-- /invite requests: one row per customer and day, with a count, however often they ask.
CREATE TABLE invite_requests_daily (
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    day TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    times INTEGER NOT NULL CHECK (times > 0),
    PRIMARY KEY (customer_id, day)
) WITHOUT ROWID;
INSERT INTO invite_requests_daily (customer_id, day, requested_at, times)
    SELECT customer_id, substr(requested_at, 1, 10), MIN(requested_at), COUNT(*)
    FROM invite_requests GROUP BY customer_id, substr(requested_at, 1, 10);
DROP TABLE invite_requests;
ALTER TABLE invite_requests_daily RENAME TO invite_requests;
CREATE INDEX invite_requests_at ON invite_requests (requested_at);
