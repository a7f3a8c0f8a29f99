#!/usr/bin/env bash
# Create (or reuse) Label Studio's own virtual environment and print its path.
#
# Label Studio's pins clash with Longtail's stack (it downgrades pyarrow and pytz), so it gets
# its own environment, built once per env/labelstudio.lock in $LONGTAIL_CACHE_DIR (default
# ~/.cache/longtail) and shared by every checkout. `longtail label serve` calls this script.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
python="${PYTHON:-python3}"
lock="env/labelstudio.lock"
cache_root="${LONGTAIL_CACHE_DIR:-$HOME/.cache/longtail}"
pyver="$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
FORMAT=1
key="$( (cat "$lock"; echo "python=$pyver format=$FORMAT") | sha256sum | cut -c1-16)"
target="$cache_root/labelstudio-$key"

quiet_pip() { "$@" 2> >(grep -v "is ignored" >&2); }

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock-labelstudio-$key"
flock 9

if [ ! -f "$target/.complete" ]; then
  echo "longtail: building Label Studio's environment in $target (first time for this lock, ~3 min)" >&2
  rm -rf "$target"
  "$python" -m venv "$target"
  quiet_pip "$target/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  quiet_pip "$target/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$lock" >&2
  "$target/bin/python" -m pip check >&2
  test -x "$target/bin/label-studio"
  touch "$target/.complete"
fi
echo "$target"
