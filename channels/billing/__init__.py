"""The operator's billing/CRM: signed events out (`relay.py`, `events.py`), signed updates in (`http.py`)."""
