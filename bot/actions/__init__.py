"""duebot's custom Rasa actions (rasa-sdk), served by `duebot serve` as the action server."""
