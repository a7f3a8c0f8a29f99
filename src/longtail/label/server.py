"""A local Label Studio server per data root, with credentials the project manages.

Label Studio's pins clash with Longtail's stack, so it runs from its own environment
(env/setup-labelstudio.sh, built once per env/labelstudio.lock). Its database (sqlite) and
uploaded media live in DATA/labelstudio/; the admin account and API token are generated on the
first start and kept in DATA/labelstudio/credentials.json (mode 0600). Label Studio reads the
token only when it creates the account, so the token must exist before the first start; the
legacy ``Token`` header that FiftyOne's backend sends is switched on.

A user with their own Label Studio sets ``LONGTAIL_LABELSTUDIO_URL`` and
``LONGTAIL_LABELSTUDIO_API_KEY`` and Longtail never starts one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from longtail._process import free_port, pid_alive
from longtail._runtime import TELEMETRY_OFF
from longtail.catalog.root import DataRoot
from longtail.errors import LongtailError
from longtail.storage import atomic_write_json

log = logging.getLogger(__name__)

URL_ENV = "LONGTAIL_LABELSTUDIO_URL"
KEY_ENV = "LONGTAIL_LABELSTUDIO_API_KEY"


class LabelStudioError(LongtailError):
    """Label Studio could not be started, reached, or answered with an error."""


@dataclass(frozen=True)
class Connection:
    """Where a Label Studio answers and the API token to use."""

    url: str
    api_key: str


def studio_dir(root: str | os.PathLike[str]) -> Path:
    """DATA/labelstudio."""
    return DataRoot.of(root).labelstudio.resolve()


def _credentials(root: str | os.PathLike[str]) -> dict[str, str]:
    path = studio_dir(root) / "credentials.json"
    if path.exists():
        creds = json.loads(path.read_text())
        if {"username", "password", "token"} <= set(creds):
            return dict(creds)
        raise LabelStudioError(f"{path}: lacks username, password or token; delete DATA/labelstudio to start afresh "
                               "(its projects are lost) or restore the file")
    path.parent.mkdir(parents=True, exist_ok=True)
    creds = {"username": "labeler@longtail.local", "password": secrets.token_urlsafe(18),
             "token": secrets.token_hex(20)}
    atomic_write_json(path, creds)
    path.chmod(0o600)
    return creds


def health(url: str, timeout: float = 2.0) -> bool:
    """True when Label Studio answers /health at ``url``."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def _state(root: str | os.PathLike[str]) -> dict[str, int | str] | None:
    path = studio_dir(root) / "server.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def environment() -> Path:
    """Label Studio's own virtual environment, built on first use."""
    script = Path(__file__).resolve().parents[3] / "env" / "setup-labelstudio.sh"
    if not script.exists():
        raise LabelStudioError(f"{script} not found: `longtail label serve` runs from a Longtail checkout; "
                               f"or run your own Label Studio and set {URL_ENV} and {KEY_ENV}")
    proc = subprocess.run([str(script)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise LabelStudioError(f"{script} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


def running(root: str | os.PathLike[str]) -> Connection | None:
    """The data root's Label Studio when it answers, else None."""
    state = _state(root)
    if state and pid_alive(int(state["pid"])) and health(str(state["url"])):
        return Connection(str(state["url"]), _credentials(root)["token"])
    return None


def connect(root: str | os.PathLike[str]) -> Connection:
    """The Label Studio to talk to: the user's (environment) or the data root's running one.

    Raises:
        LabelStudioError: when none answers, with how to start one.
    """
    if os.environ.get(URL_ENV):
        url = os.environ[URL_ENV].rstrip("/")
        key = os.environ.get(KEY_ENV, "")
        if not key:
            raise LabelStudioError(f"{URL_ENV} is set but {KEY_ENV} is not: set it to your Label Studio API token")
        if not health(url):
            raise LabelStudioError(f"Label Studio at {url} ({URL_ENV}) does not answer /health; is it up?")
        return Connection(url, key)
    conn = running(root)
    if conn is None:
        raise LabelStudioError(f"no Label Studio is running for {Path(root).resolve()}: start it with "
                               f"`longtail label serve --root {root}` (or set {URL_ENV} and {KEY_ENV})")
    return conn


def start(root: str | os.PathLike[str], port: int | None = None, timeout_s: float = 240.0) -> Connection:
    """Start the data root's Label Studio (or return the running one).

    Raises:
        LabelStudioError: when it does not come up, with the end of its log.
    """
    if os.environ.get(URL_ENV):
        return connect(root)  # the user's own Label Studio: never start another
    conn = running(root)
    if conn is not None:
        return conn
    venv = environment()
    folder = studio_dir(root)
    creds = _credentials(root)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update(TELEMETRY_OFF)
    env.update({
        "LABEL_STUDIO_USERNAME": creds["username"], "LABEL_STUDIO_PASSWORD": creds["password"],
        "LABEL_STUDIO_USER_TOKEN": creds["token"], "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true", "LABEL_STUDIO_BASE_DATA_DIR": str(folder / "data"),
        "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "COLLECT_ANALYTICS": "false", "LATEST_VERSION_CHECK": "false",
        "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}", "VIRTUAL_ENV": str(venv),
        # Serve the frame store in place (no copy of each image in Label Studio, no upload limits):
        # FiftyOne's backend then imports tasks as /data/local-files URLs.
        **local_files_env(root),
        "DATA_UPLOAD_MAX_NUMBER_FILES": "100000",
    })
    for key in ("PYTHONPATH", "PYTHONHOME"):
        env.pop(key, None)
    logfile = folder / "server.log"
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(
            [str(venv / "bin" / "label-studio"), "start", "--no-browser", "--internal-host", "127.0.0.1",
             "--port", str(port), "--data-dir", str(folder / "data")],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while not health(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.terminate()
            tail = logfile.read_text(errors="replace")[-2000:]
            raise LabelStudioError(f"Label Studio did not answer at {url} within {timeout_s:.0f} s "
                                   f"(exit {proc.poll()}); its log {logfile} ends with:\n{tail}")
        time.sleep(0.5)
    atomic_write_json(folder / "server.json", {"pid": proc.pid, "port": port, "url": url})
    log.info("Label Studio for %s at %s (pid %d; log %s)", root, url, proc.pid, logfile)
    return Connection(url, creds["token"])


def local_files_env(root: str | os.PathLike[str]) -> dict[str, str]:
    """What tells FiftyOne's backend that the data root's own Label Studio serves its files in place.

    The document root is the data root's parent: FiftyOne connects the *parent* of the frames'
    common folder (DATA/frames -> DATA) as local storage, and Label Studio requires that to lie
    strictly below the document root. Label Studio serves these files to logged-in users only.
    """
    return {"LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
            "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(Path(root).resolve().parent)}


def stop(root: str | os.PathLike[str], timeout_s: float = 30.0) -> bool:
    """Stop the data root's Label Studio; False when none was running."""
    state = _state(root)
    if not state or not pid_alive(int(state["pid"])):
        return False
    pid = int(state["pid"])
    try:
        os.killpg(pid, signal.SIGTERM)  # label-studio runs a few processes in its own session
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap when it is our child
        time.sleep(0.2)
    if pid_alive(pid):
        os.killpg(pid, signal.SIGKILL)
    (studio_dir(root) / "server.json").unlink(missing_ok=True)
    log.info("stopped Label Studio of %s", root)
    return True
