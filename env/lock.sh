#!/usr/bin/env bash
# Re-resolve the whole dependency set in one pip run and freeze it to env/requirements.lock.
# Adding a package in a second pip call silently downgrades others: always resolve as a unit.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet pip==26.3 2> >(grep -v "is ignored" >&2)
"$tmp/venv/bin/python" -m pip install --quiet -r env/requirements.in 2> >(grep -v "is ignored" >&2)
"$tmp/venv/bin/python" -m pip check
"$tmp/venv/bin/python" -m pip freeze --all | grep -v '^-e ' > env/requirements.lock
echo "env/requirements.lock: $(wc -l < env/requirements.lock) packages"
