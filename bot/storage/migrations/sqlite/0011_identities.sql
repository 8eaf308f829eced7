-- One customer, several apps: each identity (a Telegram chat, a WhatsApp number) the customer
-- writes from points at the one customer row, whose own channel columns name the identity used
-- last, where pushes go. A link between two is offered from the new app and confirmed from
-- the one the customer already uses (link_offers).
CREATE TABLE customer_identities (
    channel TEXT NOT NULL,
    channel_user_id TEXT NOT NULL,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    added_at TEXT NOT NULL,
    PRIMARY KEY (channel, channel_user_id)
) WITHOUT ROWID;
CREATE INDEX customer_identities_customer ON customer_identities (customer_id);
INSERT INTO customer_identities (channel, channel_user_id, customer_id, added_at)
SELECT channel, channel_user_id, id, created_at FROM customers WHERE channel_user_id IS NOT NULL;

CREATE TABLE link_offers (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    channel TEXT NOT NULL,
    channel_user_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    accepted_at TEXT
);
CREATE INDEX link_offers_customer ON link_offers (customer_id, created_at);
