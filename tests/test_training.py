import shutil

from duebot.settings import load_settings
from duebot.training.train import model_path, training_hash


def _copy_project(tmp_path):
    settings = load_settings()
    shutil.copytree(settings.bot_dir, tmp_path / "bot", ignore=shutil.ignore_patterns(".rasa", "__pycache__"))
    shutil.copytree(settings.nlu_dir, tmp_path / "nlu_data")
    return settings.changed(DUEBOT_HOME=tmp_path, DUEBOT_DATA_DIR=tmp_path / "var")


def test_hash_is_stable_and_follows_every_training_input(tmp_path):
    settings = _copy_project(tmp_path)
    first = training_hash(settings)
    assert training_hash(settings) == first
    assert model_path(settings).name == f"duebot-{first}.tar.gz"

    nlu = settings.nlu_dir / "en" / "nlu.yml"
    nlu.write_text(nlu.read_text() + "      - hiya\n")
    second = training_hash(settings)
    assert second != first

    (settings.bot_dir / "data" / "extra.yml").write_text('version: "3.1"\n')
    assert training_hash(settings) != second


def test_actions_and_endpoints_do_not_force_a_retrain(tmp_path):
    settings = _copy_project(tmp_path)
    before = training_hash(settings)
    (settings.bot_dir / "endpoints.yml").write_text("# changed\n")
    (settings.bot_dir / "actions" / "contact.py").write_text("# changed\n")
    assert training_hash(settings) == before
