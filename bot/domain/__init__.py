"""The loyalty rules. Nothing here knows which chat channel a person uses."""
