"""Tamper-evident evidence log."""
