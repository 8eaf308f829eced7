-- The owner's campaigns: a message (and an optional coupon) to an audience, written, previewed
-- and confirmed in the chat. Each recipient's message is an outbox row keyed by campaign and
-- customer, and a `promotions` row (the weekly cap); the numbers of /campaigns come from those.
CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY,
    created_by TEXT NOT NULL,
    text TEXT,
    audience TEXT,
    coupon_percent INTEGER CHECK (coupon_percent IS NULL OR coupon_percent BETWEEN 1 AND 100),
    status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'sent', 'cancelled')),
    recipients INTEGER,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX campaigns_drafts ON campaigns (created_by, status);
