-- Every message to someone other than the person who wrote goes through the outbox, written in
-- the transaction of the change that causes it. Some are for staff and owners (a detractor
-- alert, a new team member), who are not customers: a row's recipient is either a customer
-- (customer_id, reached wherever they are when it is sent) or a person named by channel, id
-- and language. Such a message's about_customer_id is the customer whose details it carries,
-- so that /forget empties an alert to the owner as well as the customer's own messages.
CREATE TABLE outbox_with_recipients (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER REFERENCES customers (id),
    channel TEXT,
    channel_user_id TEXT,
    language TEXT,
    about_customer_id INTEGER REFERENCES customers (id),
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
    sent_at TEXT,
    CHECK (
        (customer_id IS NOT NULL AND channel IS NULL AND channel_user_id IS NULL)
        OR (customer_id IS NULL AND channel IS NOT NULL AND channel_user_id IS NOT NULL
            AND language IS NOT NULL)
    )
);
INSERT INTO outbox_with_recipients (
    id, customer_id, kind, dedupe_key, template, payload, status, attempts, next_attempt_at,
    last_error, created_at, sent_at
)
SELECT id, customer_id, kind, dedupe_key, template, payload, status, attempts, next_attempt_at,
    last_error, created_at, sent_at
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_with_recipients RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_customer ON outbox (customer_id, kind);
-- Partial: a receipt (most rows) pays for no second index.
CREATE INDEX outbox_about ON outbox (about_customer_id) WHERE customer_id IS NULL;
