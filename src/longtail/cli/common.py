"""What every subcommand shares: turning validation errors into flag-named messages, parsing pairs."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import ValidationError

from longtail.errors import ConfigError, LongtailError

log = logging.getLogger("longtail")

FIELD_FLAGS = {
    "scenario_rates": "--rate",
    "time_of_day": "--time-of-day",
    "weather": "--weather",
}


def _flag(field: str) -> str:
    return FIELD_FLAGS.get(field, "--" + field.replace("_", "-"))


def config_error(command: str, exc: ValidationError) -> ConfigError:
    """Turn a pydantic validation error into one message naming the command-line flags."""
    parts = []
    for err in exc.errors():
        loc = err.get("loc") or ("",)
        field = str(loc[0])
        value = err.get("input")
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        flag = _flag(field) if field else "arguments"
        shown = f" (got {value!r})" if field and not isinstance(value, dict) else ""
        parts.append(f"{flag}: {msg}{shown}")
    return ConfigError(f"longtail {command}: " + "; ".join(parts))


def _pairs(flag: str, values: Sequence[str] | None) -> dict[str, float]:
    """Parse repeated or comma-separated ``NAME=NUMBER`` arguments."""
    out: dict[str, float] = {}
    for raw in values or []:
        for item in raw.split(","):
            if not item.strip():
                continue
            name, sep, num = item.partition("=")
            if not sep:
                raise ConfigError(f"{flag} {item!r}: expected NAME=NUMBER, e.g. {flag} cut_in=0.01")
            try:
                out[name.strip()] = float(num)
            except ValueError:
                raise ConfigError(f"{flag} {item!r}: {num!r} is not a number; e.g. {flag} {name.strip()}=0.01") from None
    return out


def _latest_version(root: str) -> str:
    from longtail.catalog.versions import list_versions

    versions = list_versions(root)
    if not versions:
        raise LongtailError(f"no dataset version in {root}/datasets; make one with `longtail label version --root {root}`")
    return str(versions[-1]["version_id"])


