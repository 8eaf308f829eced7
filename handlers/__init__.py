"""Channels: each one turns its own updates into calls on the core (bot/) and renders the
replies. One package per channel; the core knows none of them."""
