"""The Mandarin NLU: its data (valid for Rasa, the same intents and entities as English, entity spans on jieba
token boundaries, a held-out set apart from training), per-language model naming, and the trained model's score."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from duebot.settings import Settings, load_settings
from duebot.training.train import config_path, model_path, rasa_env, training_hash, training_inputs

ENTITY = re.compile(r"\[([^\]]+)\]\((\w+)\)")
ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "evaluation" / "nlu_heldout" / "zh.yml"
FRESH = ROOT / "evaluation" / "nlu_heldout" / "zh_fresh.yml"  # written after the first model, never tuned on
DUEBOT = ROOT / ".venv" / "bin" / "duebot"


def _examples(files: list[Path]) -> dict[str, list[str]]:
    """intent -> its example lines, still annotated."""
    out: dict[str, list[str]] = {}
    for path in files:
        for item in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            if "intent" in item:
                lines = [line.strip()[2:] for line in item["examples"].splitlines() if line.strip()]
                out.setdefault(item["intent"], []).extend(lines)
    return out


def _plain(line: str) -> str:
    return ENTITY.sub(r"\1", line)


def _lang_files(settings: Settings, lang: str) -> list[Path]:
    return sorted((settings.nlu_dir / lang).glob("*.yml"))


def test_zh_has_every_english_intent_and_entity_and_enough_examples():
    settings = load_settings()
    en, zh = _examples(_lang_files(settings, "en")), _examples(_lang_files(settings, "zh"))
    assert set(zh) == set(en)
    domain = yaml.safe_load((settings.bot_dir / "domain.yml").read_text())
    used = {m.group(2) for lines in zh.values() for line in lines for m in ENTITY.finditer(line)}
    assert used == {"amount", "date", "digits"} and used <= set(domain["entities"])
    assert set(domain["intents"]) == set(zh)
    thin = {intent: len(lines) for intent, lines in zh.items() if len(lines) < 45}
    assert thin == {}, f"too few examples: {thin}"
    seen: dict[str, str] = {}
    for intent, lines in zh.items():
        for line in lines:
            text = _plain(line)
            assert seen.setdefault(text, intent) == intent, f"{text!r} is both {seen[text]} and {intent}"


@pytest.mark.parametrize("path, least", [(HELDOUT, 8), (FRESH, 5)])
def test_heldout_sets_are_apart_from_training_and_cover_every_intent(path, least):
    settings = load_settings()
    train = {_plain(line) for lines in _examples(_lang_files(settings, "zh")).values() for line in lines}
    other = {_plain(line) for p in {HELDOUT, FRESH} - {path} for lines in _examples([p]).values() for line in lines}
    heldout = _examples([path])
    assert set(heldout) == set(_examples(_lang_files(settings, "zh")))
    overlap = [_plain(line) for lines in heldout.values() for line in lines if _plain(line) in train | other]
    assert overlap == []
    assert all(len(lines) >= least for lines in heldout.values())


@pytest.mark.rasa
def test_zh_rasa_data_validates():
    settings = load_settings()
    result = subprocess.run(
        [str(settings.rasa_bin), "data", "validate", "--domain", "domain.yml", "--data", "data",
         str(settings.nlu_dir / "zh"), "--config", config_path(settings, "zh").name],
        cwd=settings.bot_dir, env=rasa_env(), capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    warnings = re.findall(r"UserWarning: (.*)", output)
    unused = re.compile(r"The utterance 'utter_\w+' is not used in any story or rule\.")  # uttered by actions
    assert [w for w in warnings if not unused.fullmatch(w)] == []


# Runs in Rasa's environment with the model's own jieba user dictionary: an entity span that does not start and
# end on a token boundary is silently lost (or cut) when DIET learns entities.
ALIGNMENT = textwrap.dedent("""
    import glob, json, re, sys
    import jieba
    for path in sorted(glob.glob(sys.argv[1] + "/*")):
        jieba.load_userdict(path)
    entity = re.compile(r"\\[([^\\]]+)\\]\\((\\w+)\\)")
    bad = []
    for path in sys.argv[2:]:
        for line in open(path, encoding="utf-8"):
            raw = line.strip()[2:]
            if not line.strip().startswith("- ") or "](" not in raw:
                continue
            text, spans, pos = "", [], 0
            for m in entity.finditer(raw):
                text += raw[pos:m.start()]
                spans.append((len(text), len(text) + len(m.group(1))))
                text += m.group(1)
                pos = m.end()
            text += raw[pos:]
            starts = {s for _, s, _ in jieba.tokenize(text)}
            ends = {e for _, _, e in jieba.tokenize(text)}
            bad += [text[s:e] + " in " + text for s, e in spans if s not in starts or e not in ends]
    print(json.dumps(bad, ensure_ascii=False))
""")


@pytest.mark.rasa  # jieba as Rasa's environment has it
def test_zh_entity_spans_fall_on_jieba_tokens():
    settings = load_settings()
    config = yaml.safe_load(config_path(settings, "zh").read_text())
    tokenizer = next(c for c in config["pipeline"] if c["name"] == "JiebaTokenizer")
    dictionary = (settings.bot_dir / tokenizer["dictionary_path"]).resolve()
    assert dictionary.is_dir() and any(dictionary.iterdir())
    files = [str(p) for p in _lang_files(settings, "zh")]
    result = subprocess.run([str(settings.rasa_venv / "bin" / "python"), "-c", ALIGNMENT, str(dictionary), *files],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def _copy_project(tmp_path: Path) -> Settings:
    settings = load_settings()
    shutil.copytree(settings.bot_dir, tmp_path / "bot", ignore=shutil.ignore_patterns(".rasa", "__pycache__"))
    shutil.copytree(settings.nlu_dir, tmp_path / "nlu_data")
    return settings.changed(DUEBOT_HOME=tmp_path, DUEBOT_DATA_DIR=tmp_path / "var")


def test_each_language_has_its_own_hash_and_model_name(tmp_path):
    settings = _copy_project(tmp_path)
    en, zh = training_hash(settings, "en"), training_hash(settings, "zh")
    assert en != zh
    assert model_path(settings).name == f"duebot-{en}.tar.gz"  # English keeps its name from before languages
    assert model_path(settings, language="zh").name == f"duebot-zh-{zh}.tar.gz"
    names = {p.relative_to(settings.root).as_posix() for p in training_inputs(settings, "zh")}
    assert "bot/config-zh.yml" in names and "bot/config.yml" not in names
    assert "nlu_data/zh/jieba/userdict.txt" in names and not any(n.startswith("nlu_data/en/") for n in names)

    nlu = settings.nlu_dir / "zh" / "nlu.yml"
    nlu.write_text(nlu.read_text(encoding="utf-8") + "      - 哈喽\n", encoding="utf-8")
    assert (training_hash(settings, "en"), training_hash(settings, "zh") != zh) == (en, True)
    zh = training_hash(settings, "zh")
    (settings.nlu_dir / "zh" / "jieba" / "userdict.txt").write_text("分期付款 9000 n\n", encoding="utf-8")
    assert (training_hash(settings, "en"), training_hash(settings, "zh") != zh) == (en, True)
    zh = training_hash(settings, "zh")
    config_path(settings, "zh").write_text(config_path(settings, "zh").read_text() + "# changed\n")
    assert (training_hash(settings, "en"), training_hash(settings, "zh") != zh) == (en, True)
    zh = training_hash(settings, "zh")
    (settings.bot_dir / "domain.yml").write_text((settings.bot_dir / "domain.yml").read_text() + "\n# shared\n")
    assert training_hash(settings, "en") != en and training_hash(settings, "zh") != zh


def test_an_unknown_language_is_refused(tmp_path):
    settings = _copy_project(tmp_path)
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        model_path(settings, language="fr")
    result = subprocess.run([str(DUEBOT), "eval", "nlu", "--lang", "fr",
                             "--data", str(HELDOUT), "--report", str(tmp_path / "r.json")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown language 'fr'" in result.stdout + result.stderr
    assert not (tmp_path / "r.json").exists()


@pytest.mark.rasa("zh")
def test_trained_zh_model_scores_the_heldout_set(tmp_path):
    """The real model `duebot train` made (setup trains it), scored by the real `duebot eval nlu --lang zh`."""
    settings = load_settings()
    report = tmp_path / "zh.json"
    result = subprocess.run([str(DUEBOT), "eval", "nlu", "--lang", "zh", "--data", str(HELDOUT),
                             "--report", str(report)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    summary = json.loads(report.read_text(encoding="utf-8"))
    assert summary["language"] == "zh" and summary["model"] == model_path(settings, "zh").name
    assert summary["macro_f1"] >= 0.90, summary["per_intent"]
    # the turns that must never be missed: stopping contact and reaching a person
    assert summary["per_intent"]["opt_out"]["recall"] >= 0.9
    assert summary["per_intent"]["request_human"]["recall"] >= 0.9
