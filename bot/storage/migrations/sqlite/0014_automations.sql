-- The program acting on its own: promotional messages with a weekly cap, points expiry from
-- the day it is turned on, and the owner's follow-ups of unhappy customers.

-- Every promotional message decided for a customer (birthday, win-back, nudge, map action,
-- campaign), sent or held back by the contact cap, and why: the cap counts the queued ones
-- of the last 7 days, /customer shows the recent ones.
CREATE TABLE promotions (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE,
    outcome TEXT NOT NULL CHECK (outcome IN ('queued', 'capped')),
    decided_at TEXT NOT NULL
);
CREATE INDEX promotions_customer ON promotions (customer_id, decided_at);

-- When a rule that must not apply retroactively was turned on (points expiry), with the
-- rule as it was then: turning it off removes the row, so turning it on again starts afresh.
CREATE TABLE rule_starts (
    name TEXT PRIMARY KEY,
    rules TEXT NOT NULL,
    since TEXT NOT NULL
) WITHOUT ROWID;

-- A detractor's answer opens a follow-up for the owner; its outcome is recorded here.
CREATE TABLE follow_ups (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    survey_id INTEGER NOT NULL UNIQUE REFERENCES surveys (id),
    quadrant TEXT,
    opened_at TEXT NOT NULL,
    outcome TEXT CHECK (outcome IN ('coupon', 'called', 'resolved')),
    closed_by TEXT,
    closed_at TEXT
);
CREATE INDEX follow_ups_open ON follow_ups (customer_id) WHERE closed_at IS NULL;

