"""Process-wide switches set before any third-party library is imported.

The machines Longtail runs on have no internet; libraries that phone home hang or log errors.
Every switch here is documented in ../shared/ENVIRONMENT.md. Values the user already set win.
"""

from __future__ import annotations

import logging
import os

TELEMETRY_OFF = {
    "FIFTYONE_DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PLOOMBER_STATS_ENABLED": "false",
    "PLOOMBER_VERSION_CHECK_DISABLED": "1",
    "SAGEMAKER_VALIDATE_ROLE": "false",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "SENTRY_DSN": "",
    "FRONTEND_SENTRY_DSN": "",
    "COLLECT_ANALYTICS": "false",
    "LATEST_VERSION_CHECK": "false",
    "DVC_NO_ANALYTICS": "1",  # the data root's .dvc/config also sets core.analytics false
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # not telemetry: keeps notebooks and logs clean
}


def configure_environment() -> None:
    """Switch every library's telemetry off, unless the user set the variable already."""
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)


def configure_logging(verbose: bool = False) -> None:
    """Log to stderr with timestamps; ``verbose`` turns on debug messages."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
