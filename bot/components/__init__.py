"""Custom Rasa NLU components (Rasa's own Python 3.10 environment; `bot/` is on Rasa's PYTHONPATH)."""
