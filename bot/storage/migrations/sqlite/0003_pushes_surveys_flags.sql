-- The bot reaching out: an outbox of pushes, surveys and their answers, and churn-risk flags.

-- A customer whose chat refused delivery (they blocked the bot) is skipped from then on.
ALTER TABLE customers ADD COLUMN unreachable_at TEXT;

-- Every push is written here first, in the transaction that decided it, and delivered after.
-- dedupe_key makes deciding twice harmless; status makes delivering twice impossible.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    kind TEXT NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE,
    template TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'sending', 'sent', 'unreachable', 'failed', 'uncertain')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_customer ON outbox (customer_id, kind);

CREATE TABLE surveys (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    kind TEXT NOT NULL CHECK (kind IN ('satisfaction', 'nps')),
    sale_id INTEGER REFERENCES sales (id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    score INTEGER,
    answered_at TEXT,
    reason TEXT,
    reason_state TEXT CHECK (reason_state IN ('awaiting', 'given', 'skipped')),
    CHECK (
        (kind = 'satisfaction' AND (score IS NULL OR score BETWEEN 1 AND 5))
        OR (kind = 'nps' AND (score IS NULL OR score BETWEEN 0 AND 10))
    )
);
CREATE INDEX surveys_customer ON surveys (customer_id, kind, created_at);
CREATE INDEX surveys_answered ON surveys (answered_at);

-- Raised and cleared, never deleted: the history shows when a customer was at risk and why.
CREATE TABLE risk_flags (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    flag TEXT NOT NULL CHECK (flag IN ('detractor', 'lapsing', 'lost')),
    details TEXT NOT NULL,
    raised_at TEXT NOT NULL,
    cleared_at TEXT
);
CREATE UNIQUE INDEX risk_flags_open ON risk_flags (customer_id, flag) WHERE cleared_at IS NULL;
CREATE INDEX risk_flags_customer ON risk_flags (customer_id, raised_at);
