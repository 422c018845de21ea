"""driftwarden: keeps AI agents' contract bindings honest."""

__version__ = "0.1.0"
