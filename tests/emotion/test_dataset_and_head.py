"""The emotion lines, the trained head (real MiniLM embeddings) and its evaluation, without any server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from duebot.emotion import dataset, store
from duebot.emotion.cli import app
from duebot.emotion.evaluate import evaluate, scores
from duebot.emotion.legal import mentions_legal_threat
from duebot.settings import Settings, load_settings

ROOT = load_settings().root
TRAIN = ROOT / "nlu_data" / "emotion" / "en.yml"
HELDOUT = ROOT / "evaluation" / "emotion_heldout" / "en.yml"


def test_the_held_out_set_shares_no_line_with_training():
    train = {e.text.lower() for e in dataset.load(TRAIN)}
    heldout = dataset.load(HELDOUT)
    assert not train & {e.text.lower() for e in heldout}
    assert len(train) >= 300 and len(heldout) >= 90
    for label in dataset.LABELS:
        assert sum(e.label == label for e in heldout) >= 25, label
    assert sum(e.legal_threat for e in heldout) >= 5


def test_a_line_listed_twice_or_an_unknown_label_is_refused(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("neutral: [ok]\nangry: [OK]\n")
    with pytest.raises(ValueError, match="twice"):
        dataset.load(path)
    path.write_text("happy: [yay]\n")
    with pytest.raises(ValueError, match="unknown keys"):
        dataset.load(path)


def test_legal_threat_phrases():
    assert mentions_legal_threat("I'm going to take you to court")
    assert mentions_legal_threat("reporting this to the CFPB")
    assert not mentions_legal_threat("I can pay on Friday")
    assert not mentions_legal_threat("she works at the court house")


def test_scores_are_macro_f1_over_the_three_labels():
    result = scores(["neutral", "angry", "distressed", "angry"], ["neutral", "angry", "angry", "angry"])
    assert result["per_class"]["distressed"]["f1"] == 0.0
    assert result["per_class"]["angry"]["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["macro_f1"] == pytest.approx((1 + 0.8 + 0) / 3, abs=1e-4)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Settings:
    """A copy of the emotion data with its own models folder, so the test trains a head of its own."""
    root = tmp_path_factory.mktemp("emotion")
    shutil.copytree(TRAIN.parent, root / "nlu_data" / "emotion")
    return load_settings().changed(DUEBOT_HOME=root, DUEBOT_DATA_DIR=root / "var")


@pytest.fixture(scope="module")
def trained(project: Settings) -> Path:
    path, trained = store.train(project)
    assert trained and (path / store.HEAD_FILE).exists()
    return path


def test_the_head_is_named_by_its_inputs_and_retrained_only_when_they_change(project, trained):
    assert store.train(project) == (trained, False)
    meta = json.loads((trained / "meta.json").read_text())
    assert meta["examples"] == len(dataset.load(TRAIN)) and meta["labels"] == list(dataset.LABELS)
    data = project.nlu_dir / "emotion" / "en.yml"
    original = data.read_text()
    try:
        data.write_text(original.replace("neutral:\n", "neutral:\n  - righto\n", 1))
        assert store.head_dir(project) != trained
    finally:
        data.write_text(original)
    assert store.head_dir(project) == trained
    assert store.head_dir(project, encoder="some/other-model") != trained


def test_held_out_macro_f1_beats_the_goal_and_the_lexicon_baseline(project, trained):
    report = evaluate(store.load_model(project, train_if_missing=False), HELDOUT)
    assert report["model"]["macro_f1"] >= 0.85, report["errors"]
    assert report["model"]["macro_f1"] > report["baseline_vader_lexicon"]["macro_f1"] + 0.1
    assert report["legal_threat"]["recall"] >= 0.8


def test_predictions_carry_what_the_policy_reads(project, trained):
    model = store.load_model(project, train_if_missing=False)
    calm, furious, grieving, lawyer = model.predict_many(
        ["sure, friday works", "STOP CALLING ME you useless crooks", "my husband died and I can't cope",
         "call again and you'll hear from my lawyer"])
    assert calm["label"] == "neutral" and calm["negative"] < 0.4 and not calm["legal_threat"]
    assert furious["label"] == "angry" and furious["negative"] >= 0.7
    assert grieving["label"] == "distressed" and grieving["scores"]["distressed"] >= 0.6
    assert lawyer["legal_threat"]
    assert set(calm) >= {"label", "score", "scores", "negative", "legal_threat"}
    assert sum(calm["scores"].values()) == pytest.approx(1.0, abs=1e-3)


def test_eval_command_writes_the_report(project, trained, tmp_path, monkeypatch):
    monkeypatch.setenv("DUEBOT_HOME", str(project.root))
    monkeypatch.setenv("DUEBOT_DATA_DIR", str(project.data_dir))
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["eval", "--data", str(HELDOUT), "--report", str(out)])
    assert result.exit_code == 0, result.output
    assert "VADER" in result.output and "macro-F1" in result.output
    report = json.loads(out.read_text())
    assert set(report["model"]["per_class"]) == set(dataset.LABELS)


def test_the_service_answers_over_http(project, trained):
    from fastapi.testclient import TestClient

    from duebot.emotion.service import create_app

    client = TestClient(create_app(store.load_model(project, train_if_missing=False)))
    assert client.get("/health").json()["status"] == "ok"
    body = client.post("/emotion", json={"text": "this is a total rip off, I'm furious"}).json()
    assert body["label"] == "angry" and 0 <= body["negative"] <= 1
    assert client.post("/emotion", json={}).status_code == 422
