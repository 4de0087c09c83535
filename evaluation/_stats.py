"""Latency statistics for every benchmark: one percentile and one summary of a sample, so that a p50 or a p95 in
one benchmark's output means what it means in another's."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1), interpolating linearly between the closest ranks (numpy's default method);
    NaN for no values."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within [0, 1], got {q}")
    ordered = sorted(values)
    if not ordered:
        return math.nan
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: Iterable[float]) -> dict[str, float]:
    """n, p50, p95, mean, min and max of a sample, in its own unit (NaN figures for an empty one)."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0, "p50": math.nan, "p95": math.nan, "mean": math.nan, "min": math.nan, "max": math.nan}
    return {"n": len(ordered), "p50": percentile(ordered, 0.5), "p95": percentile(ordered, 0.95),
            "mean": math.fsum(ordered) / len(ordered), "min": ordered[0], "max": ordered[-1]}
