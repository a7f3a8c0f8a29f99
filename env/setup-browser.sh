#!/usr/bin/env bash
# Headless Chromium for the tests that look at pages (the FiftyOne App, the HTML reports).
# Installed from the OS package registry, never downloaded by Playwright (see ENVIRONMENT.md).
# Idempotent: does nothing when a Chromium is already on PATH or LONGTAIL_CHROMIUM names one.
set -euo pipefail

if [[ -n "${LONGTAIL_CHROMIUM:-}" && -x "${LONGTAIL_CHROMIUM}" ]]; then exit 0; fi
for exe in chromium chromium-browser google-chrome; do
    if command -v "$exe" >/dev/null 2>&1; then exit 0; fi
done

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "setup-browser: Chromium is missing and this user cannot install packages;" \
             "install it (apt-get install chromium) or set LONGTAIL_CHROMIUM to a Chromium binary" >&2
        exit 1
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-browser: Chromium is missing and there is no apt-get here; install Chromium and set" \
         "LONGTAIL_CHROMIUM to its path" >&2
    exit 1
fi
echo "setup-browser: installing chromium from the OS packages" >&2
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; then
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null
fi
command -v chromium >/dev/null
