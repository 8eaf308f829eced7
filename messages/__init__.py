"""Jinja2 templates, one folder per language; loaded by bot.messages."""
