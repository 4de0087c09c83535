"""The collection strategy (policies/strategies/*.yml): data the conversation follows, loaded once."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from duebot.settings import PROJECT_ROOT, load_settings

DEFAULT = PROJECT_ROOT / "policies" / "strategies" / "default.yml"


@lru_cache(maxsize=4)
def load_strategy(path: str | None = None) -> dict[str, Any]:
    source = Path(path or load_settings().campaigns.strategy or DEFAULT)
    data = yaml.safe_load(source.read_text())
    for key in ("verification", "segments", "installments", "payment_link", "promise_horizon_days"):
        if key not in data:
            raise ValueError(f"strategy {source}: missing '{key}'")
    return data


def segment_rules(strategy: dict[str, Any], segment: str) -> dict[str, Any]:
    # An unknown segment gets the most careful handling: no plan, a person reviews.
    return strategy["segments"].get(segment, {"installments": False, "human_review": True})
