"""The WhatsApp channel (the official Cloud API, through pywa): a webhook server that records
each message before acknowledging it, a worker that handles what was recorded, the handlers,
and the core's `Channel` on WhatsApp."""
