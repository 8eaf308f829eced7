-- A channel may report a message's fate later (WhatsApp's status webhooks: failed, for
-- instance outside the 24 hours): the channel's own id for what was sent finds its row.
ALTER TABLE outbox ADD COLUMN channel_message_id TEXT;
CREATE INDEX outbox_channel_message ON outbox (channel_message_id)
    WHERE channel_message_id IS NOT NULL;
