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
