"""Emotion detection for the collection conversation (issue 11).

A sentence encoder (MiniLM by default) turns a subscriber's line into an embedding; a small trained head
classifies it as neutral, angry or distressed and flags legal threats. `duebot serve` runs it as its own HTTP
service on loopback (Rasa's environment cannot take torch); a Rasa NLU component (bot/components/) calls it.
"""
