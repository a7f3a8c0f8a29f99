"""One root for every error Longtail raises on purpose.

Each error names the file or argument, the field or value, and the fix, so a user can act on
it without reading code. Errors are raised, never asserted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class LongtailError(Exception):
    """Root of every error Longtail raises deliberately."""


class ConfigError(LongtailError, ValueError):
    """A configuration value or command-line argument is invalid."""


class InputError(LongtailError):
    """An input file is missing, unreadable or malformed."""


class SchemaError(InputError):
    """A record does not match its declared schema."""


def fail_config(source: str, field: str, value: object, fix: str) -> ConfigError:
    """Build a `ConfigError` that names where the bad value came from and how to fix it.

    Args:
        source: where the value came from, e.g. ``"longtail sim --minutes"`` or a file path.
        field: the field or argument name.
        value: the offending value.
        fix: one sentence saying what would be valid.

    Returns:
        The error, for the caller to raise.
    """
    return ConfigError(f"{source}: invalid {field}={value!r}. {fix}")


def invalid_config(source: str, what: str, exc: ValidationError) -> ConfigError:
    """Build a `ConfigError` from a pydantic validation error: every bad field and why, in one line.

    Args:
        source: where the values came from, e.g. ``"longtail train"`` or a file path.
        what: the kind of config, e.g. ``"training config"``.
        exc: the validation error; a problem of the whole model (no field) is shown without one.
    """
    problems = "; ".join(".".join(map(str, e["loc"])) + ": " * bool(e["loc"]) + e["msg"].removeprefix("Value error, ")
                         for e in exc.errors())
    return ConfigError(f"{source}: invalid {what}: {problems}")
