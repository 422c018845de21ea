"""Contract definitions, bindings and drift."""
