"""The model registry: which detector versions exist, and which one is the champion.

Trained models are registered as versions of one MLflow registered model
(``longtail-detector``). The alias ``champion`` names the version the loop runs on: curation
embeds with its backbone and mines with its predictions, labeling is pre-labeled by it,
evaluation compares challengers against it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from longtail.catalog.root import DataRoot
from longtail.detector.model import default_tracking, mlflow_client
from longtail.errors import InputError, LongtailError

log = logging.getLogger(__name__)

REGISTERED_MODEL = "longtail-detector"
"""The registered model every training run adds a version to, by default."""

CHAMPION_ALIAS = "champion"


def tracking_uri_for(root: str | os.PathLike[str], tracking_uri: str | None = None) -> str:
    """The MLflow tracking URI: the given one, else the data root's sqlite store."""
    return tracking_uri or default_tracking(DataRoot.of(root).mlflow)[0]


def latest_model_uri(tracking_uri: str, name: str = "longtail-detector") -> str:
    """``models:/<name>/<newest version>``.

    Raises:
        InputError: when the registry has no version of ``name`` (train one first).
    """
    from mlflow.tracking import MlflowClient

    versions = MlflowClient(tracking_uri).search_model_versions(f"name='{name}'")
    if not versions:
        raise InputError(f"{tracking_uri}: no registered model {name!r}; train one with `longtail train`")
    return f"models:/{name}/{max(int(v.version) for v in versions)}"


# ---------------------------------------------------------------------------------------------
# The champion alias: promotion and rollback

PREVIOUS_TAG = "longtail.previous_champion"
"""Model-version tag: the champion this version replaced ("" for the first), so rollback can undo it."""
LOCK_FILE = ".champion.lock"


class PromotionRefusedError(LongtailError):
    """A promotion lost a race or was judged against a champion that is no longer the champion."""


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY_CHAMPION: Any = _Any()
"""``expected_champion`` for a person's promotion: whatever the champion is now."""


def champion_version(tracking_uri: str, name: str = REGISTERED_MODEL) -> str | None:
    """The version number behind ``models:/<name>@champion``, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow_client(tracking_uri).get_model_version_by_alias(name, CHAMPION_ALIAS).version)
    except MlflowException:
        return None


@contextlib.contextmanager
def _champion_lock(lock_dir: str | os.PathLike[str]) -> Iterator[None]:
    """An exclusive lock around read-check-set of the alias (MLflow has no compare-and-set).

    A file lock in the data root's MLflow folder serialises every process of this machine (the
    pipeline, a person's `longtail promote`). With a remote tracking server, processes on other
    machines are not covered by it; the check after setting the alias still reports a lost race.
    """
    import fcntl

    Path(lock_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(lock_dir) / LOCK_FILE, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def promote(tracking_uri: str, version: str | int, *, lock_dir: str | os.PathLike[str],
            expected_champion: str | _Any | None = ANY_CHAMPION, name: str = REGISTERED_MODEL,
            reason: str = "", evidence: dict[str, str] | None = None, actor: str = "pipeline") -> dict[str, Any]:
    """Make ``version`` the champion, atomically.

    1. Under an exclusive lock, read the champion now.
    2. If the decision was made against another champion (``expected_champion``: the version it
       was evaluated against, None for "no champion"), refuse: two racing promotions leave
       exactly one champion, and the loser is told which version won and what to do.
    3. Tag the version with the champion it replaces, when, by whom and why (plus ``evidence``
       tags, e.g. the decision and its intervals), then move the alias.
    4. Read the alias back: a concurrent writer outside the lock is reported, not hidden.

    Args:
        tracking_uri: the MLflow tracking and registry URI.
        version: the model version to promote.
        lock_dir: where the lock file lives (the data root's MLflow folder).
        expected_champion: the champion the decision was made against; `ANY_CHAMPION` for a
            person's explicit promotion.
        name: the registered model.
        reason: why, in words (the gate's headline, or a person's note).
        evidence: extra tags for the version (``longtail.*`` keys, string values).
        actor: who promoted ("pipeline" or a person's name).

    Returns:
        ``{"name", "version", "previous", "changed", "promoted_at"}``.

    Raises:
        PromotionRefusedError: the champion changed since the decision (step 2), or the alias moved
            to another version meanwhile (step 4).
        InputError: no such model version.
    """
    from mlflow.exceptions import MlflowException

    version = str(version)
    client = mlflow_client(tracking_uri)
    try:
        client.get_model_version(name, version)
    except MlflowException:
        raise InputError(f"{tracking_uri}: no version {version} of registered model {name!r}; "
                         f"`longtail evaluate` lists the registry's versions") from None
    with _champion_lock(lock_dir):
        current = champion_version(tracking_uri, name)
        if current == version:
            return {"name": name, "version": version, "previous": current, "changed": False, "promoted_at": None}
        if not isinstance(expected_champion, _Any) and current != expected_champion:
            judged = f"version {expected_champion}" if expected_champion else "no champion"
            raise PromotionRefusedError(
                f"{name} version {version} was judged against {judged}, but the champion is now version {current} "
                f"(promoted meanwhile); evaluate version {version} against version {current} and decide again")
        stamp = _now()
        tags = {PREVIOUS_TAG: current or "", "longtail.promoted_at": stamp, "longtail.promoted_by": actor,
                "longtail.promotion_reason": reason[:4000], **(evidence or {})}
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        client.set_registered_model_alias(name, CHAMPION_ALIAS, version)
    now = champion_version(tracking_uri, name)
    if now != version:
        raise PromotionRefusedError(f"{name}: the champion alias moved to version {now} right after version {version} was "
                               "promoted (another machine promoted without this data root's lock); check the registry")
    log.info("champion of %s: version %s (was %s): %s", name, version, current or "none", reason)
    return {"name": name, "version": version, "previous": current, "changed": True, "promoted_at": stamp}


def rollback(tracking_uri: str, *, lock_dir: str | os.PathLike[str], name: str = REGISTERED_MODEL,
             reason: str = "", actor: str = "person") -> dict[str, Any]:
    """Give the champion alias back to the version the current champion replaced.

    Returns:
        ``{"name", "version" (the champion now), "rolled_back" (the one it replaced)}``.

    Raises:
        InputError: there is no champion, or it was the first one (nothing to go back to).
    """
    client = mlflow_client(tracking_uri)
    with _champion_lock(lock_dir):
        current = champion_version(tracking_uri, name)
        if current is None:
            raise InputError(f"{tracking_uri}: {name} has no champion; nothing to roll back")
        previous = client.get_model_version(name, current).tags.get(PREVIOUS_TAG, "")
        if not previous:
            raise InputError(f"{name} version {current} was the first champion; there is no earlier one to roll "
                             f"back to (promote another version with `longtail promote`)")
        stamp = _now()
        client.set_model_version_tag(name, current, "longtail.rolled_back_at", stamp)
        client.set_model_version_tag(name, current, "longtail.rollback_reason", f"{actor}: {reason}"[:4000])
        client.set_registered_model_alias(name, CHAMPION_ALIAS, previous)
    log.warning("champion of %s rolled back from version %s to %s: %s", name, current, previous, reason)
    return {"name": name, "version": previous, "rolled_back": current, "at": stamp}


def champion_model_uri(root: str | os.PathLike[str], tracking_uri: str | None = None,
                       name: str = REGISTERED_MODEL) -> str | None:
    """``models:/<name>/<version>`` of the champion (the number, not the alias, so lineage names the
    model that was used), or None before the first champion or when no model was ever trained here."""
    if tracking_uri is None and not (DataRoot.of(root).mlflow / "mlflow.db").exists():
        return None  # no model was ever trained in this data root
    version = champion_version(tracking_uri_for(root, tracking_uri), name)
    return None if version is None else f"models:/{name}/{version}"


def load_champion(root: str | os.PathLike[str], tracking_uri: str | None = None, name: str = REGISTERED_MODEL
                  ) -> tuple[Any, dict[str, Any]] | None:
    """The champion detector of a data root's registry and its meta, or None before the first champion.

    Returns:
        (the model in eval mode, its model.json plus ``version``, ``model_uri`` and ``key``, the
        name curation's caches use: ``<name>@v<version>``).
    """
    uri = champion_model_uri(root, tracking_uri, name)
    if uri is None:
        return None
    from longtail.detector.model import load_model_from_mlflow

    model, meta = load_model_from_mlflow(uri, tracking_uri_for(root, tracking_uri))
    version = uri.rsplit("/", 1)[1]
    meta.update(version=version, model_uri=uri, key=f"{name}@v{version}")
    return model, meta


CHALLENGER_ALIAS = "challenger"


def challenger_model_uri(root: str | os.PathLike[str], tracking_uri: str | None = None,
                         name: str = REGISTERED_MODEL) -> str | None:
    """``models:/<name>/<version>`` of the challenger that runs in shadow beside the champion, or None.

    The challenger is the version behind the ``challenger`` alias when a person set one;
    otherwise the newest registered version that is newer than the champion (a version older than
    the champion was replaced by it or never beat it). None without a champion, or when the
    champion is the newest version and no alias is set.
    """
    from mlflow.exceptions import MlflowException

    champion = champion_model_uri(root, tracking_uri, name)
    if champion is None:
        return None
    uri = tracking_uri_for(root, tracking_uri)
    client = mlflow_client(uri)
    try:
        aliased = str(client.get_model_version_by_alias(name, CHALLENGER_ALIAS).version)
    except MlflowException:
        aliased = None
    champ = int(champion.rsplit("/", 1)[1])
    if aliased is not None:
        return None if int(aliased) == champ else f"models:/{name}/{aliased}"
    newer = [int(v.version) for v in client.search_model_versions(f"name='{name}'") if int(v.version) > champ]
    return f"models:/{name}/{max(newer)}" if newer else None


def load_registered(root: str | os.PathLike[str], model_uri: str, tracking_uri: str | None = None,
                    name: str = REGISTERED_MODEL) -> tuple[Any, dict[str, Any]]:
    """A registered version (``models:/<name>/<version>``) and its meta, as `load_champion` returns them."""
    from longtail.detector.model import load_model_from_mlflow

    model, meta = load_model_from_mlflow(model_uri, tracking_uri_for(root, tracking_uri))
    version = model_uri.rsplit("/", 1)[1]
    meta.update(version=version, model_uri=model_uri, key=f"{name}@v{version}")
    return model, meta
