"""duebot: humane, lawful collection of overdue telecom bills by voice and SMS."""

__version__ = "0.1.0"
