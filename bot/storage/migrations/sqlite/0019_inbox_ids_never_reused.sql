-- An inbox row's id is also its update id (bot/incoming.py remembers handled ones): after the
-- newest rows were pruned, SQLite would hand their ids out again, and a new message would be
-- taken for one already handled. AUTOINCREMENT never reuses an id; it starts above every id
-- the inbox or the record of handled updates has seen.
CREATE TABLE inbox_numbered (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    message_id TEXT NOT NULL,
    person TEXT NOT NULL,
    body TEXT NOT NULL,
    received_at TEXT NOT NULL,
    handled_at TEXT,
    UNIQUE (channel, message_id)
);
INSERT INTO inbox_numbered (id, channel, message_id, person, body, received_at, handled_at)
    SELECT id, channel, message_id, person, body, received_at, handled_at FROM inbox;
DELETE FROM sqlite_sequence WHERE name = 'inbox_numbered';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'inbox_numbered', MAX(seen) FROM (
        SELECT COALESCE(MAX(id), 0) AS seen FROM inbox
        UNION ALL
        SELECT COALESCE(MAX(update_id), 0) FROM processed_updates WHERE channel = 'whatsapp'
    );
DROP TABLE inbox;
ALTER TABLE inbox_numbered RENAME TO inbox;
CREATE INDEX inbox_unhandled ON inbox (channel, id) WHERE handled_at IS NULL;
CREATE INDEX inbox_person ON inbox (channel, person, received_at);
