-- WhatsApp delivers by webhook and retries what it did not see acknowledged, for days, in bytes
-- that may differ: each incoming message is recorded here by its id (wamid) before the webhook
-- is answered, then handled; what a crash left unhandled is handled on the next start.
CREATE TABLE inbox (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    message_id TEXT NOT NULL,
    person TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at TEXT NOT NULL,
    handled_at TEXT,
    UNIQUE (channel, message_id)
);
CREATE INDEX inbox_unhandled ON inbox (channel, id) WHERE handled_at IS NULL;
-- When each person last wrote: WhatsApp lets a business write freely only for 24 hours after.
CREATE INDEX inbox_person ON inbox (channel, person, received_at);
