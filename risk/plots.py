"""The risk model's PNG plots: reliability (calibration) and score distributions."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np


def _pyplot():  # noqa: ANN202 - matplotlib's module
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def reliability_plot(path: Path, y: np.ndarray, models: Mapping[str, np.ndarray], bins: int = 10) -> None:
    """Predicted probability against the observed recovery rate, per bin of predictions, one line per model."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfectly calibrated")
    edges = np.linspace(0, 1, bins + 1)
    for name, p in models.items():
        which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
        xs, ys, ns = [], [], []
        for b in range(bins):
            mask = which == b
            if mask.sum() >= 5:
                xs.append(p[mask].mean())
                ys.append(y[mask].mean())
                ns.append(mask.sum())
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xlabel("predicted probability of recovery")
    ax.set_ylabel("observed recovery rate (held-out)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("Reliability (held-out part)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def score_plot(path: Path, y: np.ndarray, scores: np.ndarray, threshold: float, title: str) -> None:
    """Score histogram of recovered and not-recovered accounts, with the warning threshold."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    edges = np.arange(0, 106, 5)
    ax.hist(scores[y == 1], bins=edges, alpha=0.6, label="recovered")
    ax.hist(scores[y == 0], bins=edges, alpha=0.6, label="not recovered")
    ax.axvline(threshold, color="black", ls="--", lw=1, label=f"warning below {threshold:g}")
    ax.set_xlabel("risk score (0-100, higher = more likely to pay)")
    ax.set_ylabel("accounts")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def group_plot(path: Path, attribute: str, groups: Mapping[str, np.ndarray], title: str) -> None:
    """Score distributions per value of an excluded attribute (cumulative, so overlaps are visible)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, scores in sorted(groups.items()):
        xs = np.sort(scores)
        ax.step(xs, np.arange(1, len(xs) + 1) / len(xs), where="post", label=f"{name} (n={len(xs)})")
    ax.set_xlabel("risk score")
    ax.set_ylabel("share of accounts at or below")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, title=attribute, title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
