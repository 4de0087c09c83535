"""The excluded-attribute check: the score must not move with what it must not use (docs/risk.md).

For every column of a data file the model does not read (gender, ethnicity, region, name, phone…):

1. invariance: shuffle the column across rows, and set it to each of (up to three of) its values in turn; every
   row is parsed and scored again through the same path as always. Every score must be exactly the same.
2. retraining: the logistic regression trained on the shuffled file must have exactly the same coefficients.
3. parity (columns with a few values): each group's score distribution against the rest's (Kolmogorov–Smirnov),
   mean score, share below the warning threshold, and its observed recovery rate (blank values are "not recorded"
   and form no group: enterprise lines have no age, for one). A group whose distribution
   differs by more than `tolerance` with p < 0.001 fails: on real data that means a feature carries the attribute
   (a proxy) and needs review, even though the attribute itself is never read. For contrast, the same measure is
   reported for `segment`, a feature the model does use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from duebot.risk.data import KEY, LABEL, History
from duebot.risk.features import INPUTS, parse_inputs
from duebot.risk.model import RiskModel, fit_lr, to_score

MAX_GROUPS = 20
P_VALUE = 0.001


def _scores(model: RiskModel, raw: Sequence[dict[str, str]]) -> np.ndarray:
    inputs = [parse_inputs(row) for row in raw]
    x, _ = model.encoding.transform(inputs)
    return np.array([to_score(float(p)) for p in model.probability(x)])


def _with(raw: Sequence[dict[str, str]], column: str, values: Sequence[str]) -> list[dict[str, str]]:
    return [{**row, column: v} for row, v in zip(raw, values, strict=True)]


def parity(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, warning_below: float) -> list[dict[str, Any]]:
    from scipy.stats import ks_2samp

    out = []
    names = groups.astype(str)
    recorded = names != ""  # a blank is "not recorded", not a group of people: left out of every comparison
    scores, labels, names = scores[recorded], labels[recorded], names[recorded]
    for value in sorted(set(names.tolist())):
        mask = names == value
        inside, rest = scores[mask], scores[~mask]
        if len(inside) == 0 or len(rest) == 0:
            continue
        ks = ks_2samp(inside, rest)
        out.append({"group": value, "n": int(mask.sum()), "mean_score": round(float(inside.mean()), 2),
                    "below_warning": round(float((inside < warning_below).mean()), 4),
                    "observed_recovery": round(float(labels[mask].mean()), 4),
                    "ks": round(float(ks.statistic), 4), "p_value": float(f"{ks.pvalue:.3g}")})
    return out


def excluded_attribute_check(model: RiskModel, history: History, *, warning_below: float, tolerance: float = 0.05,
                             seed: int = 0, plots: Path | None = None) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    raw = history.raw
    labels = np.asarray(history.labels)
    base = _scores(model, raw)
    base_inputs = [parse_inputs(row) for row in raw]
    features = model.encoding.features
    _, _, _, base_coef, base_intercept = fit_lr(features, base_inputs, labels)
    used = {name for f in features for name in f.reads}
    read = set(INPUTS) | {LABEL, KEY}
    columns = [c for c in history.columns if c not in read or (c in INPUTS and c not in used)]
    results = []
    for column in columns:
        values = np.array([row.get(column, "") for row in raw], dtype=object)
        distinct = sorted(set(values.tolist()))
        if len(distinct) < 2:
            continue
        shuffled = _with(raw, column, list(rng.permutation(values)))
        moved = int(np.abs(_scores(model, shuffled) - base).max())
        for value in distinct[:3]:
            moved = max(moved, int(np.abs(_scores(model, _with(raw, column, [value] * len(raw))) - base).max()))
        _, _, _, coef, intercept = fit_lr(features, [parse_inputs(row) for row in shuffled], labels)
        coef_change = float(max(np.abs(coef - base_coef).max(), abs(intercept - base_intercept)))
        entry: dict[str, Any] = {"attribute": column, "reason": model.doc["excluded"].get(column, "not a feature"),
                                 "max_score_change": moved, "max_coefficient_change": coef_change}
        if len(distinct) <= MAX_GROUPS:
            groups = parity(base, labels, values, warning_below)
            entry["groups"] = groups
            entry["max_ks"] = max(g["ks"] for g in groups)
            entry["parity_ok"] = all(g["ks"] <= tolerance or g["p_value"] >= P_VALUE for g in groups)
            if plots is not None:
                from duebot.risk.plots import group_plot

                plots.mkdir(parents=True, exist_ok=True)
                group_plot(plots / f"check-{column}.png", column,
                           {str(v) or "(blank)": base[values == v] for v in distinct},
                           f"score distribution by {column} (not a feature)")
        entry["ok"] = moved == 0 and coef_change == 0.0 and entry.get("parity_ok", True)
        results.append(entry)
    segments = np.array([row.get("segment", "") for row in raw], dtype=object)
    contrast = parity(base, labels, segments, warning_below)
    return {"model": model.label, "rows": len(raw), "tolerance": tolerance, "p_value": P_VALUE,
            "attributes": results, "ok": all(r["ok"] for r in results),
            "contrast": {"attribute": "segment (a feature: the score should move with it)",
                         "max_ks": max((g["ks"] for g in contrast), default=0.0), "groups": contrast}}
