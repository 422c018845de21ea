"""Storage: engine, sessions, tables and the one Alembic migration tree."""
