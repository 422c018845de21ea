"""Notifications: per-org endpoints and the durable outbox."""
