-- Customers, their consent history, registration drafts, the points ledger and update dedupe.
-- Times are UTC in SQLite's own 'YYYY-MM-DD HH:MM:SS' text form, so date functions apply.

CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    channel_user_id TEXT,                  -- NULL once the customer's data is erased
    member_code TEXT NOT NULL UNIQUE,
    referral_code TEXT NOT NULL UNIQUE,
    name TEXT,
    phone TEXT,
    birthday_day INTEGER CHECK (birthday_day BETWEEN 1 AND 31),
    birthday_month INTEGER CHECK (birthday_month BETWEEN 1 AND 12),
    birthday_year INTEGER,
    language TEXT NOT NULL,
    promotions_consent INTEGER NOT NULL CHECK (promotions_consent IN (0, 1)),
    surveys_enabled INTEGER NOT NULL DEFAULT 1 CHECK (surveys_enabled IN (0, 1)),
    referred_by INTEGER REFERENCES customers (id),
    created_at TEXT NOT NULL,
    erased_at TEXT,
    UNIQUE (channel, channel_user_id)
);
CREATE INDEX customers_phone ON customers (phone);
CREATE INDEX customers_referred_by ON customers (referred_by);

-- Permission marketing needs proof of when consent was given or withdrawn: one row per change.
CREATE TABLE consent_log (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    topic TEXT NOT NULL CHECK (topic IN ('promotions', 'surveys')),
    granted INTEGER NOT NULL CHECK (granted IN (0, 1)),
    recorded_at TEXT NOT NULL
);
CREATE INDEX consent_log_customer ON consent_log (customer_id);

-- A registration in progress survives a restart of the bot.
CREATE TABLE registration_drafts (
    channel TEXT NOT NULL,
    channel_user_id TEXT NOT NULL,
    step TEXT NOT NULL,
    language TEXT NOT NULL,
    suggested_name TEXT,
    name TEXT,
    phone TEXT,
    birthday_day INTEGER,
    birthday_month INTEGER,
    birthday_year INTEGER,
    referrer_id INTEGER REFERENCES customers (id),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (channel, channel_user_id)
);

CREATE TABLE points_ledger (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    delta INTEGER NOT NULL CHECK (delta <> 0),
    reason TEXT NOT NULL CHECK (
        reason IN ('purchase', 'reward', 'referral', 'birthday', 'adjustment', 'reversal', 'expiry')
    ),
    actor TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    note TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX points_ledger_customer ON points_ledger (customer_id, id);

CREATE TRIGGER points_ledger_no_update BEFORE UPDATE ON points_ledger
BEGIN
    SELECT RAISE(ABORT, 'points_ledger is append-only');
END;

CREATE TRIGGER points_ledger_no_delete BEFORE DELETE ON points_ledger
BEGIN
    SELECT RAISE(ABORT, 'points_ledger is append-only');
END;

-- Telegram may deliver an update again after a crash; each is handled once.
CREATE TABLE processed_updates (
    channel TEXT NOT NULL,
    update_id INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (channel, update_id)
) WITHOUT ROWID;
