"""AI agents registered by an org."""
