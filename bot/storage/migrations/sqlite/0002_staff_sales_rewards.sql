-- The counter side: staff and their invitations, sales, rewards and coupons, and the audit log.

CREATE TABLE staff (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    channel_user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    language TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at TEXT NOT NULL,
    removed_at TEXT
);
-- One active membership per person; a removed member can be invited again.
CREATE UNIQUE INDEX staff_active ON staff (channel, channel_user_id) WHERE removed_at IS NULL;

CREATE TABLE staff_invites (
    token TEXT PRIMARY KEY,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_by INTEGER REFERENCES staff (id),
    used_at TEXT
);

CREATE TABLE sales (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    recorded_by TEXT NOT NULL,
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    items INTEGER NOT NULL CHECK (items >= 0),
    points INTEGER NOT NULL CHECK (points >= 0),
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    voided_at TEXT,
    voided_by TEXT,
    void_reason TEXT
);
CREATE INDEX sales_customer ON sales (customer_id, created_at);
CREATE INDEX sales_created ON sales (created_at);

-- A sale typed at the counter waits here for the staff member's confirming tap.
CREATE TABLE pending_sales (
    id INTEGER PRIMARY KEY,
    staff_channel TEXT NOT NULL,
    staff_user_id TEXT NOT NULL,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    amount_minor INTEGER,
    items INTEGER,
    created_at TEXT NOT NULL,
    sale_id INTEGER REFERENCES sales (id),
    cancelled_at TEXT
);
CREATE INDEX pending_sales_staff ON pending_sales (staff_channel, staff_user_id, id);

CREATE TABLE coupons (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    kind TEXT NOT NULL CHECK (kind IN ('birthday', 'granted', 'winback')),
    percent_off INTEGER CHECK (percent_off BETWEEN 1 AND 100),
    free_item TEXT,
    valid_until TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    redeemed_at TEXT,
    CHECK ((percent_off IS NULL) <> (free_item IS NULL))
);
CREATE INDEX coupons_customer ON coupons (customer_id);

-- A one-time code a customer shows at the counter, for a catalogue reward or for a coupon.
CREATE TABLE redemptions (
    code TEXT PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    reward_key TEXT,
    cost INTEGER NOT NULL CHECK (cost >= 0),
    coupon_id INTEGER REFERENCES coupons (id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    redeemed_at TEXT,
    redeemed_by TEXT,
    CHECK ((reward_key IS NULL) <> (coupon_id IS NULL))
);
CREATE INDEX redemptions_customer ON redemptions (customer_id);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT,
    details TEXT,
    at TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
