"""duebot."""
