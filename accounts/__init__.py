"""Durable business data: accounts, promises, plans, disputes, payments, opt-outs (SQLite or PostgreSQL)."""
