-- Every channel now writes what it receives to the inbox, and an inbox row's handled_at is the
-- one record that it was handled. Telegram updates handled before this version were recorded in
-- processed_updates: they move to the inbox as handled, so that Telegram handing one out again
-- (it keeps unconfirmed updates for a day) finds it there and it is not answered twice.
INSERT INTO inbox (channel, message_id, person, body, received_at, handled_at)
    SELECT 'telegram', CAST(update_id AS TEXT), '', '{}', received_at, received_at
    FROM processed_updates WHERE channel = 'telegram'
    ON CONFLICT (channel, message_id) DO NOTHING;
DROP TABLE processed_updates;
