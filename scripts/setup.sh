#!/usr/bin/env bash
# Idempotent set-up from nothing on Debian 12: system packages, the two Python environments, a trained model.
# A second run only checks: each environment carries a stamp of the requirement files it was built from.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
stamp() { cat "$@" | sha256sum | cut -c1-16; }
quiet_pip() { "$@" 2>&1 | grep -v -e "Location 'file:" -e "DEPRECATION" || true; test "${PIPESTATUS[0]}" -eq 0; }

# --- system packages --------------------------------------------------------------------------------
APT_PACKAGES=(redis-server kamailio baresip-core flite espeak-ng sox sip-tester chromium chromium-driver fonts-noto-cjk)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- the project's environment (Python 3.11) --------------------------------------------------------
find_python() {  # first interpreter of the given minor version that really runs (pyenv shims may not)
  local minor=$1 candidate
  for candidate in "$(command -v "python$minor" || true)" "$HOME"/.pyenv/versions/"$minor".*/bin/"python$minor" \
                   /usr/bin/"python$minor" /usr/local/bin/"python$minor"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c 'import venv' 2>/dev/null && { echo "$candidate"; return 0; }
  done
  return 1
}

PROJECT_PY=${DUEBOT_PYTHON:-$(find_python 3.11 || find_python 3.12 || true)}
[ -n "$PROJECT_PY" ] || { echo "setup: Python 3.11 or 3.12 is required" >&2; exit 1; }
want=$(stamp pyproject.toml)
if [ "$(cat .venv/.duebot-stamp 2>/dev/null)" != "$want" ]; then
  say "building .venv with $PROJECT_PY"
  [ -x .venv/bin/python ] || "$PROJECT_PY" -m venv .venv
  quiet_pip .venv/bin/pip install -q --upgrade pip
  quiet_pip .venv/bin/pip install -q -e '.[test]'
  .venv/bin/pip check
  echo "$want" > .venv/.duebot-stamp
fi

# --- Rasa's own environment --------------------------------------------------------------------------
# Rasa 3.6 pins TensorFlow 2.12, SQLAlchemy 1.4, numpy<1.25 …: kept apart so they never constrain duebot.
RASA_PY=${DUEBOT_RASA_PYTHON:-$(find_python 3.10 || true)}
if [ -n "$RASA_PY" ]; then
  RASA_PINS=requirements/rasa-py3.10.txt
  PIP_EXTRA=()
else
  # Fallback: Rasa declares Python <3.11, so 3.11 needs every version pinned (its numpy/scipy/dask
  # requirements carry python_version<"3.11" markers) and matplotlib 3.5.3 built against Debian's libraries.
  RASA_PY=$PROJECT_PY
  RASA_PINS=requirements/rasa-py3.11.txt
  PIP_EXTRA=(--ignore-requires-python)
  for pkg in libfreetype-dev libqhull-dev pkg-config; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || {
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        libfreetype-dev libqhull-dev pkg-config >/dev/null; break; }
  done
  export MPLSETUPCFG=$PWD/requirements/mplsetup.cfg
fi
want=$(stamp "$RASA_PINS")
if [ "$(cat .venv-rasa/.duebot-stamp 2>/dev/null)" != "$want" ]; then
  say "building .venv-rasa (Rasa 3.6.21) with $RASA_PY from $RASA_PINS — a few minutes the first time"
  [ -x .venv-rasa/bin/python ] || "$RASA_PY" -m venv .venv-rasa
  quiet_pip .venv-rasa/bin/pip install -q "${PIP_EXTRA[@]}" -r "$RASA_PINS"
  .venv-rasa/bin/pip check
  echo "$want" > .venv-rasa/.duebot-stamp
fi

# --- a trained model per language (en, zh) for the current training data (skipped when its hash has one) --
.venv/bin/duebot train
say "ready"
