"""Emotion detection for the collection conversation (issues 11 and 21).

An English line: a sentence encoder (MiniLM by default) turns it into an embedding and a small trained head
classifies it as neutral, angry or distressed and flags legal threats. A Chinese line (any Han character): character
n-grams plus a multilingual-e5-small embedding under the same kind of head (zh.py). `duebot serve` runs it as its own
HTTP service on loopback (Rasa's environment cannot take torch); a Rasa NLU component (bot/components/) calls it.
"""
