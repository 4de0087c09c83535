"""The score does not move with attributes it must not use (gender, ethnicity, religion, region, name, phone…)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from duebot.risk.check import excluded_attribute_check, parity
from duebot.risk.data import History
from duebot.risk.features import parse_inputs
from duebot.risk.model import RiskModel
from tests.risk.helpers import history, trained


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> History:
    return history(tmp_path_factory.mktemp("risk-check"))


@pytest.fixture(scope="module")
def model(data: History) -> RiskModel:
    return trained(data).model


def test_changing_an_excluded_attribute_of_one_account_changes_nothing(data: History, model: RiskModel) -> None:
    row = data.raw[0]
    base = model.score([parse_inputs(row)])[0]
    for changed in ({"gender": "male" if row["gender"] != "male" else "female"}, {"ethnicity": "group_d"},
                    {"religion": "religion_c"}, {"region": "rural"}, {"language": "en"}, {"name": "Someone Else"},
                    {"phone": "+1 202 555 0199"}, {"id_last4": "0000"}, {"age_band": "51+"}):
        assert model.score([parse_inputs({**row, **changed})])[0] == base, changed


def test_excluded_attribute_check_passes_and_has_the_power_to_see_a_used_feature(
        data: History, model: RiskModel, tmp_path: Path) -> None:
    result = excluded_attribute_check(model, data, warning_below=60, plots=tmp_path)
    by_name = {r["attribute"]: r for r in result["attributes"]}
    assert {"gender", "ethnicity", "religion", "region", "language", "name", "phone", "id_last4",
            "age_band"} <= set(by_name)
    for name, r in by_name.items():
        assert r["max_score_change"] == 0 and r["max_coefficient_change"] == 0.0, name
        assert r["ok"], r
    assert result["ok"]
    # groups of the protected attributes score alike (the synthetic data draw them independently)
    for name in ("gender", "ethnicity", "religion", "region"):
        large = [g for g in by_name[name]["groups"] if g["n"] >= 300]  # small groups: sampling noise, p-value judges
        assert max(g["ks"] for g in large) < 0.08, large
        means = [g["mean_score"] for g in large]
        assert max(means) - min(means) < 3.0, name
    # region changes outcomes in the synthetic data (a latent effect no feature carries), not scores
    region = {g["group"]: g for g in by_name["region"]["groups"]}
    assert region["rural"]["observed_recovery"] < region["tier1"]["observed_recovery"]
    # the same measure on a feature the model uses sees it plainly
    assert result["contrast"]["max_ks"] > 0.3
    assert (tmp_path / "check-gender.png").stat().st_size > 5_000


def test_parity_flags_a_score_that_follows_a_group() -> None:
    rng = np.random.default_rng(1)
    groups = np.array(["a", "b"] * 2000, dtype=object)
    fair = rng.integers(0, 101, 4000)
    leaky = np.where(groups == "a", fair // 2, fair)
    labels = rng.integers(0, 2, 4000)
    assert max(g["ks"] for g in parity(fair, labels, groups, 60)) < 0.06
    assert max(g["ks"] for g in parity(leaky, labels, groups, 60)) > 0.2
