"""The risk score (issue 22, seed 000 §3.3): how likely an overdue account is to be paid, 0-100, with its reasons.

features.py what the model may and may not read · data.py the labelled history file · synth.py a synthetic one
from the seeds · model.py training, metrics, versions, scores and explanations · fromstore.py accounts → inputs ·
scores.py the `risk_scores` table the planner reads · check.py the excluded-attribute check · cli.py `duebot risk`.
docs/risk.md explains all of it.
"""
