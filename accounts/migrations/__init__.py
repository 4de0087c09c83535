"""Alembic migrations of the account store."""
