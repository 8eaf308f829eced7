-- WhatsApp limits the people a business may start a conversation with (an approved template,
-- outside the 24 hours) per rolling day, by the number's messaging tier: the outbox notes
-- which messages went as a template, and when, to keep under it.
ALTER TABLE outbox ADD COLUMN sent_as_template TEXT;
ALTER TABLE outbox ADD COLUMN template_sent_at TEXT;
CREATE INDEX outbox_template_sends ON outbox (template_sent_at) WHERE template_sent_at IS NOT NULL;
