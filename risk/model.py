"""The risk model: a logistic regression (the explainable baseline) and, beside it, a calibrated gradient-boosted
model that scores instead only when it is clearly better on the held-out part. Versioned in the data dir.

Score = round(100 × P(recovered within the horizon)), 0–100, higher = more likely to pay. The factors behind a
score always come from the logistic regression: coefficient × the account's standardised value, summed over a
category's columns, i.e. how far this account's value moves the log-odds away from the average training account.

On disk (`$DUEBOT_DATA_DIR/risk/models/VERSION/`): model.json (features, medians, scaler, coefficients: everything
the logistic regression needs, readable, no pickle), metrics.json, reliability.png, scores.png, and gb.joblib only
when the boosted model scores (its SHA-256 is in model.json and checked before loading). `CURRENT` names the
version `duebot risk score` uses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from duebot.risk.features import BY_NAME, UNKNOWN, Feature, Inputs, excluded_for

FORMAT = "duebot-risk/1"
GB_MIN_AUC_GAIN = 0.02  # "clearly better": at least this much more held-out AUC, and a lower Brier score
CALIBRATION_BINS = 10
CURRENT = "CURRENT"


class ModelError(ValueError):
    """No model, a damaged one, or data a model cannot be trained on; the message says which."""


# ------------------------------------------------------------------ encoding

@dataclass
class Encoding:
    """Inputs → a numeric matrix: a column per number (unknown → the training median), a column per category."""

    features: tuple[Feature, ...]
    medians: dict[str, float]

    @property
    def columns(self) -> list[tuple[str, str | None]]:
        out: list[tuple[str, str | None]] = []
        for f in self.features:
            out += [(f.name, c) for c in f.categories] if f.is_category else [(f.name, None)]
        return out

    @classmethod
    def fit(cls, features: tuple[Feature, ...], inputs: Sequence[Inputs]) -> Encoding:
        medians = {}
        for f in features:
            if not f.is_category:
                known = [v for v in (f.value(i) for i in inputs) if v is not None]
                medians[f.name] = float(np.median(known)) if known else 0.0
        return cls(features, medians)

    def transform(self, inputs: Sequence[Inputs]) -> tuple[np.ndarray, np.ndarray]:
        """(X, known): X[n, columns]; known[n, features] is False where the value was not known."""
        cols = self.columns
        x = np.zeros((len(inputs), len(cols)), dtype=np.float64)
        known = np.ones((len(inputs), len(self.features)), dtype=bool)
        index = {c: j for j, c in enumerate(cols)}
        for i, row in enumerate(inputs):
            for k, f in enumerate(self.features):
                if f.is_category:
                    category = f.category(row)
                    known[i, k] = category != UNKNOWN
                    j = index.get((f.name, category))
                    if j is None:
                        j = index.get((f.name, UNKNOWN))
                    if j is not None:
                        x[i, j] = 1.0
                else:
                    value = f.value(row)
                    known[i, k] = value is not None
                    x[i, index[(f.name, None)]] = self.medians[f.name] if value is None else value
        return x, known

    def to_json(self) -> dict[str, Any]:
        return {"features": [f.name for f in self.features], "medians": self.medians,
                "categories": {f.name: list(f.categories) for f in self.features if f.is_category}}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Encoding:
        features = []
        for name in doc["features"]:
            if name not in BY_NAME:
                raise ModelError(f"the model uses feature {name!r}, which this duebot does not know")
            f = BY_NAME[name]
            if f.is_category and list(f.categories) != doc["categories"].get(name):
                raise ModelError(f"the model's categories of {name} differ from this duebot's")
            features.append(f)
        return cls(tuple(features), {k: float(v) for k, v in doc["medians"].items()})


# ------------------------------------------------------------------ the model

@dataclass(frozen=True)
class Factor:
    feature: str
    words: str  # the account's value, plainly ("3 broken promises to pay")
    effect: float  # log-odds this value adds to (>0) or takes from (<0) the average account's

    @property
    def direction(self) -> str:
        return "raises" if self.effect > 0 else "lowers"

    def text(self) -> str:
        return f"{self.words} ({self.direction} the score)"

    def to_json(self) -> dict[str, Any]:
        return {"feature": self.feature, "words": self.words, "effect": round(self.effect, 4),
                "direction": self.direction}


@dataclass(frozen=True)
class Scored:
    score: int  # 0–100, higher = more likely to pay
    probability: float
    factors: tuple[Factor, ...]

    def to_json(self) -> dict[str, Any]:
        return {"score": self.score, "probability": round(self.probability, 6),
                "factors": [f.to_json() for f in self.factors]}


def to_score(probability: float) -> int:
    return int(min(100, max(0, math.floor(100.0 * probability + 0.5))))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class RiskModel:
    doc: dict[str, Any]
    encoding: Encoding
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    gb: Any = None
    directory: Path | None = None

    @property
    def version(self) -> str:
        return str(self.doc["version"])

    @property
    def scorer(self) -> str:
        return str(self.doc["scorer"])

    @property
    def label(self) -> str:
        """What `risk_model` records beside each score: version and which model scored."""
        return f"{self.version}/{self.scorer}"

    def lr_probability(self, x: np.ndarray) -> np.ndarray:
        return _sigmoid((x - self.mean) / self.scale @ self.coef + self.intercept)

    def probability(self, x: np.ndarray) -> np.ndarray:
        if self.scorer == "gb":
            if self.gb is None:
                raise ModelError(f"model {self.version} scores with its boosted model, which is not loaded")
            return self.gb.predict_proba(x)[:, 1]
        return self.lr_probability(x)

    def explain(self, inputs: Inputs, x: np.ndarray, known: np.ndarray, top: int = 3) -> tuple[Factor, ...]:
        """The `top` largest effects of this account's known values, largest first."""
        effects = (x - self.mean) / self.scale * self.coef
        by_feature: dict[str, float] = {}
        for (name, _), effect in zip(self.encoding.columns, effects, strict=True):
            by_feature[name] = by_feature.get(name, 0.0) + float(effect)
        factors = [Factor(f.name, f.words(inputs), by_feature[f.name])
                   for k, f in enumerate(self.encoding.features) if known[k] and abs(by_feature[f.name]) >= 0.01]
        factors.sort(key=lambda fa: (-abs(fa.effect), fa.feature))
        return tuple(factors[:top])

    def score(self, inputs: Sequence[Inputs], top: int = 3) -> list[Scored]:
        if not inputs:
            return []
        x, known = self.encoding.transform(inputs)
        p = self.probability(x)
        return [Scored(to_score(float(p[i])), float(p[i]), self.explain(inputs[i], x[i], known[i], top) if top else ())
                for i in range(len(inputs))]

    def coefficients(self) -> list[dict[str, Any]]:
        """Per column, in standardised units (the effect of one standard deviation), largest first."""
        rows = [{"feature": name, "category": cat, "coef": round(float(c), 4)}
                for (name, cat), c in zip(self.encoding.columns, self.coef, strict=True)]
        return sorted(rows, key=lambda r: -abs(r["coef"]))

    # ------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        return {**self.doc, "encoding": self.encoding.to_json(),
                "lr": {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                       "intercept": self.intercept, "columns": [[n, c] for n, c in self.encoding.columns]}}

    @classmethod
    def from_json(cls, doc: dict[str, Any], directory: Path | None = None) -> RiskModel:
        if doc.get("format") != FORMAT:
            raise ModelError(f"not a {FORMAT} model (format {doc.get('format')!r})")
        encoding = Encoding.from_json(doc["encoding"])
        lr = doc["lr"]
        if [list(c) for c in encoding.columns] != [list(c) for c in lr["columns"]]:
            raise ModelError("the model's columns do not match its features")
        model = cls({k: v for k, v in doc.items() if k not in ("encoding", "lr")}, encoding,
                    np.asarray(lr["mean"], dtype=np.float64), np.asarray(lr["scale"], dtype=np.float64),
                    np.asarray(lr["coef"], dtype=np.float64), float(lr["intercept"]), None, directory)
        if model.scorer == "gb":
            model.gb = _load_gb(directory, doc.get("gb") or {})
        return model


def _load_gb(directory: Path | None, meta: dict[str, Any]) -> Any:
    import joblib

    if directory is None or not meta.get("file"):
        raise ModelError("the model scores with a boosted model but names no file for it")
    path = directory / meta["file"]
    if not path.is_file():
        raise ModelError(f"{path}: missing")
    if hashlib.sha256(path.read_bytes()).hexdigest() != meta.get("sha256"):
        raise ModelError(f"{path}: its SHA-256 differs from model.json's: not loading it")
    return joblib.load(path)


# ------------------------------------------------------------------ metrics

def evaluate(y: np.ndarray, p: np.ndarray, warning_below: float) -> dict[str, Any]:
    """AUC, Brier, log loss, accuracy at 0.5, calibration bins and the score distribution of one held-out set."""
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    scores = np.array([to_score(float(v)) for v in p])
    bins = []
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    for b in range(CALIBRATION_BINS):
        mask = which == b
        n = int(mask.sum())
        bins.append({"from": round(float(edges[b]), 2), "to": round(float(edges[b + 1]), 2), "n": n,
                     "predicted": round(float(p[mask].mean()), 4) if n else None,
                     "observed": round(float(y[mask].mean()), 4) if n else None})
    hist, _ = np.histogram(scores, bins=np.arange(0, 111, 10))
    hist[-2] += hist[-1]  # 100 belongs to the last band
    return {
        "n": int(len(y)), "base_rate": round(float(y.mean()), 4),
        "auc": round(float(roc_auc_score(y, p)), 4),
        "brier": round(float(brier_score_loss(y, p)), 4),
        "log_loss": round(float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6))), 4),
        "accuracy_at_0.5": round(float(((p >= 0.5) == (y == 1)).mean()), 4),
        "calibration": bins,
        "scores": {
            "mean": round(float(scores.mean()), 2),
            "quantiles": {q: int(np.percentile(scores, int(q[1:]), method="nearest"))
                          for q in ("p10", "p25", "p50", "p75", "p90")},
            "below_warning": round(float((scores < warning_below).mean()), 4),
            "histogram": {f"{lo}-{lo + 9 if lo < 90 else 100}": int(n)
                          for lo, n in zip(range(0, 100, 10), hist[:-1], strict=True)},
        },
    }


# ------------------------------------------------------------------ training

@dataclass
class Trained:
    model: RiskModel
    metrics: dict[str, Any]
    held_out: dict[str, np.ndarray] = field(default_factory=dict)  # y, p_lr, p_gb (for plots)


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    return mean, scale


def fit_lr(features: tuple[Feature, ...], inputs: Sequence[Inputs], y: np.ndarray, c: float = 1.0
           ) -> tuple[Encoding, np.ndarray, np.ndarray, np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    encoding = Encoding.fit(features, inputs)
    x, _ = encoding.transform(inputs)
    mean, scale = _standardise(x)
    lr = LogisticRegression(C=c, max_iter=2000)
    lr.fit((x - mean) / scale, y)
    return encoding, mean, scale, lr.coef_[0].astype(np.float64), float(lr.intercept_[0])


def fit_gb(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier

    gb = CalibratedClassifierCV(HistGradientBoostingClassifier(random_state=seed, max_iter=300, early_stopping=True),
                                method="isotonic", cv=3)
    gb.fit(x, y)
    return gb


def train(inputs: Sequence[Inputs], labels: Sequence[int], *, features: tuple[Feature, ...], holdout: float,
          seed: int, horizon_days: int, warning_below: float, data: dict[str, Any], boosted: bool = True,
          step: Callable[[str], None] = lambda _: None) -> Trained:
    """Fit on the training part, measure on the held-out part (stratified, `holdout` of the rows, `seed`)."""
    from sklearn.model_selection import train_test_split

    y = np.asarray(labels, dtype=np.int64)
    if len(y) < 50:
        raise ModelError(f"{len(y)} usable rows: too few to train and hold out a part (at least 50)")
    if y.min() == y.max():
        raise ModelError("every row has the same outcome: nothing to learn")
    if not 0.05 <= holdout <= 0.5:
        raise ModelError("the held-out part must be between 5% and 50% of the rows")
    idx = np.arange(len(y))
    train_idx, test_idx = train_test_split(idx, test_size=holdout, random_state=seed, stratify=y)
    train_in = [inputs[i] for i in train_idx]
    test_in = [inputs[i] for i in test_idx]
    step("logistic regression")
    encoding, mean, scale, coef, intercept = fit_lr(features, train_in, y[train_idx])
    doc = {"format": FORMAT, "version": "", "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "horizon_days": horizon_days, "warning_below": warning_below, "scorer": "lr", "gb": None, "seed": seed,
           "holdout": holdout, "data": data, "excluded": excluded_for(features),
           "score": "round(100 x P(recovered within horizon_days)); higher = more likely to pay"}
    model = RiskModel(doc, encoding, mean, scale, coef, intercept)
    x_train, _ = encoding.transform(train_in)
    x_test, _ = encoding.transform(test_in)
    p_lr = model.lr_probability(x_test)
    metrics: dict[str, Any] = {"rows": {"train": int(len(train_idx)), "held_out": int(len(test_idx))},
                               "lr": evaluate(y[test_idx], p_lr, warning_below)}
    held = {"y": y[test_idx], "p_lr": p_lr}
    if boosted:
        step("gradient boosting (calibrated)")
        gb = fit_gb(x_train, y[train_idx], seed)
        p_gb = gb.predict_proba(x_test)[:, 1]
        metrics["gb"] = evaluate(y[test_idx], p_gb, warning_below)
        held["p_gb"] = p_gb
        lr_m, gb_m = metrics["lr"], metrics["gb"]
        better = gb_m["auc"] - lr_m["auc"] >= GB_MIN_AUC_GAIN and gb_m["brier"] < lr_m["brier"]
        metrics["choice"] = {
            "scorer": "gb" if better else "lr",
            "rule": f"the boosted model scores only with held-out AUC at least {GB_MIN_AUC_GAIN} above the "
                    "logistic regression's and a lower Brier score",
            "auc_gain": round(gb_m["auc"] - lr_m["auc"], 4), "brier_change": round(gb_m["brier"] - lr_m["brier"], 4)}
        if better:
            model.gb = gb
            model.doc["scorer"] = "gb"
    else:
        metrics["choice"] = {"scorer": "lr", "rule": "boosted model not trained (--no-boosted)"}
    metrics["scored_by"] = model.scorer
    metrics["coefficients"] = model.coefficients()
    return Trained(model, metrics, held)


# ------------------------------------------------------------------ the versioned store

def new_version(models_dir: Path, data_sha: str) -> str:
    base = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{data_sha[:8]}"
    version, n = base, 1
    while (models_dir / version).exists():
        n += 1
        version = f"{base}-{n}"
    return version


def save(trained: Trained, models_dir: Path, *, make_current: bool = True) -> Path:
    """Write the model, its metrics and plots under a new version; point CURRENT at it."""
    import joblib

    from duebot.risk.plots import reliability_plot, score_plot

    model = trained.model
    models_dir.mkdir(parents=True, exist_ok=True)
    version = new_version(models_dir, model.doc["data"]["sha256"])
    directory = models_dir / version
    directory.mkdir()
    model.doc["version"] = version
    model.directory = directory
    if model.scorer == "gb":
        path = directory / "gb.joblib"
        joblib.dump(model.gb, path)
        model.doc["gb"] = {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    metrics = {"version": version, **trained.metrics}
    held = trained.held_out
    threshold = float(model.doc.get("warning_below", 60))
    reliability_plot(directory / "reliability.png", held["y"],
                     {k: v for k, v in (("logistic regression", held.get("p_lr")),
                                        ("gradient boosting (calibrated)", held.get("p_gb"))) if v is not None})
    chosen = held["p_gb"] if model.scorer == "gb" else held["p_lr"]
    score_plot(directory / "scores.png", held["y"], np.array([to_score(float(v)) for v in chosen]), threshold,
               f"held-out scores, model {version} ({model.scorer})")
    metrics["plots"] = ["reliability.png", "scores.png"]
    (directory / "model.json").write_text(json.dumps(model.to_json(), indent=1) + "\n")
    (directory / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    if make_current:
        tmp = models_dir / f".{CURRENT}.tmp"
        tmp.write_text(version + "\n")
        tmp.replace(models_dir / CURRENT)
    return directory


def current_version(models_dir: Path) -> str | None:
    path = models_dir / CURRENT
    if not path.is_file():
        return None
    return path.read_text().strip() or None


def load_model(models_dir: Path, version: str | None = None) -> RiskModel:
    """A saved model: `version`, else the CURRENT one."""
    version = version or current_version(models_dir)
    if version is None:
        raise ModelError(f"no risk model in {models_dir}: train one with `duebot risk train --data FILE`")
    if "/" in version or version.startswith("."):
        raise ModelError(f"not a model version: {version!r}")
    path = models_dir / version / "model.json"
    if not path.is_file():
        raise ModelError(f"no model {version!r} in {models_dir}")
    return RiskModel.from_json(json.loads(path.read_text()), path.parent)


def list_models(models_dir: Path) -> list[dict[str, Any]]:
    current = current_version(models_dir)
    out = []
    for path in sorted(models_dir.glob("*/metrics.json")):
        metrics = json.loads(path.read_text())
        out.append({"version": path.parent.name, "current": path.parent.name == current,
                    "scored_by": metrics.get("scored_by"), "auc_lr": metrics.get("lr", {}).get("auc"),
                    "auc_gb": metrics.get("gb", {}).get("auc"), "brier_lr": metrics.get("lr", {}).get("brier")})
    return out
