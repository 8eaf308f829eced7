-- The owner's view: what /stats and /export read, by period, over the whole history.

-- A customer asking for their referral link (/invite) is the nearest thing to "shared it".
CREATE TABLE invite_requests (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    requested_at TEXT NOT NULL
);
CREATE INDEX invite_requests_at ON invite_requests (requested_at);

-- Period sums over the ledger and answers by date: covering indexes, so a range is read from
-- the index alone instead of fetching every row it names from the table.
CREATE INDEX points_ledger_created ON points_ledger (created_at, reason, delta);
-- Every question asked of sales by date is about valid sales; this replaces the plain index,
-- which the planner would otherwise prefer and then read a million rows through.
DROP INDEX sales_created;
CREATE INDEX sales_valid_by_date ON sales (created_at, customer_id, amount_minor)
    WHERE voided_at IS NULL;
CREATE INDEX surveys_kind_answered ON surveys (kind, answered_at);
CREATE INDEX surveys_kind_created ON surveys (kind, created_at);
CREATE INDEX customers_created ON customers (created_at);
-- A customer's purchases in date order, for first-purchase and purchase-gap questions.
CREATE INDEX sales_customer_valid ON sales (customer_id, created_at) WHERE voided_at IS NULL;
