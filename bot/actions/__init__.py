"""duebot's custom Rasa actions (rasa-sdk), served by `duebot serve` as the action server.

Importing the package registers every action (see registry.py); rasa-sdk finds them as Action subclasses.
"""

from duebot.actions import conversation  # noqa: F401 - registers the actions
