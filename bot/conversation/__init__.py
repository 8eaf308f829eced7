"""Every conversation a person has with the bot, once for every channel: a channel reads what
was said into a `Said` (said.py), hands it to `Conversation.answer` (core.py) and renders the
`Reply`s that come back (replies.py). Which flow answers is declared (router.py, flows/)."""
