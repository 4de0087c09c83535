import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_file_matches_the_compose_spec():
    tool = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    result = subprocess.run([tool, "--builtin-schema", "vendor.compose-spec", str(ROOT / "docker-compose.yml")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_describes_every_service_serve_runs():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert {"redis", "evidence", "actions", "emotion", "rasa", "web", "campaign-worker"} <= set(compose["services"])


def test_compose_publishes_only_the_web_service_and_every_internal_service_authenticates():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {name for name, spec in services.items() if spec.get("ports")} == {"web"}
    rasa = services["rasa"]["command"]
    assert "--auth-token" in rasa and rasa[rasa.index("--auth-token") + 1].startswith("${DUEBOT_RASA_TOKEN:?")
    assert services["actions"]["command"][:3] == ["python", "-m", "duebot.actions.server"]
    for name in ("actions", "rasa"):
        assert services[name]["environment"]["DUEBOT_ACTIONS_TOKEN"].startswith("${DUEBOT_ACTIONS_TOKEN:?")
    assert "--requirepass" in services["redis"]["command"]
    for name in ("evidence", "campaign-worker", "actions", "rasa", "web"):
        assert services[name]["environment"]["REDIS_URL"].startswith("redis://:${DUEBOT_REDIS_PASSWORD}@")
