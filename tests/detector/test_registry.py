"""The champion alias: promotion is atomic, a stale decision is refused, rollback restores the previous champion."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from longtail.detector.registry import (
    PREVIOUS_TAG,
    REGISTERED_MODEL,
    PromotionRefusedError,
    champion_version,
    promote,
    rollback,
)
from longtail.errors import InputError


def _registry(tmp_path: Path, versions: int) -> str:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    client.create_registered_model(REGISTERED_MODEL)
    for i in range(versions):
        client.create_model_version(REGISTERED_MODEL, source=str(tmp_path / f"model-{i}"))
    return uri


def _race(uri: str, lock_dir: str, version: str, barrier: multiprocessing.synchronize.Barrier) -> str:
    barrier.wait()
    try:
        promote(uri, version, lock_dir=lock_dir, expected_champion=None, reason=f"race {version}")
    except PromotionRefusedError as exc:
        return f"refused: {exc}"
    return "promoted"


def test_racing_promotions_leave_exactly_one_champion_and_tell_the_loser_why(tmp_path: Path) -> None:
    uri = _registry(tmp_path, 2)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Manager().Barrier(2)
    with ctx.Pool(2) as pool:
        outcomes = pool.starmap(_race, [(uri, str(tmp_path), "1", barrier), (uri, str(tmp_path), "2", barrier)])
    assert sorted(o.split(":")[0] for o in outcomes) == ["promoted", "refused"]
    winner = "1" if outcomes[0] == "promoted" else "2"
    loser = "2" if winner == "1" else "1"
    assert champion_version(uri) == winner
    refusal = next(o for o in outcomes if o.startswith("refused"))
    assert f"version {loser} was judged against no champion, but the champion is now version {winner}" in refusal


def test_a_decision_made_against_an_old_champion_is_refused(tmp_path: Path) -> None:
    uri = _registry(tmp_path, 3)
    promote(uri, 1, lock_dir=tmp_path, expected_champion=None)
    promote(uri, 2, lock_dir=tmp_path, expected_champion="1")
    with pytest.raises(PromotionRefusedError, match="judged against version 1, but the champion is now version 2"):
        promote(uri, 3, lock_dir=tmp_path, expected_champion="1")
    assert champion_version(uri) == "2"


def test_rollback_restores_the_previous_champion_and_records_why(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    uri = _registry(tmp_path, 3)
    with pytest.raises(InputError, match="has no champion"):
        rollback(uri, lock_dir=tmp_path)
    promote(uri, 1, lock_dir=tmp_path, expected_champion=None, reason="first")
    promote(uri, 3, lock_dir=tmp_path, expected_champion="1", reason="better", evidence={"longtail.decision": "x"})
    tags = MlflowClient(uri).get_model_version(REGISTERED_MODEL, "3").tags
    assert tags[PREVIOUS_TAG] == "1" and tags["longtail.promotion_reason"] == "better"
    assert tags["longtail.decision"] == "x"
    out = rollback(uri, lock_dir=tmp_path, reason="fleet regression")
    assert out == {"name": REGISTERED_MODEL, "version": "1", "rolled_back": "3", "at": out["at"]}
    assert champion_version(uri) == "1"
    assert "fleet regression" in MlflowClient(uri).get_model_version(REGISTERED_MODEL, "3").tags["longtail.rollback_reason"]
    with pytest.raises(InputError, match="version 1 was the first champion"):
        rollback(uri, lock_dir=tmp_path)


def test_promoting_the_champion_again_changes_nothing(tmp_path: Path) -> None:
    uri = _registry(tmp_path, 1)
    assert promote(uri, 1, lock_dir=tmp_path, expected_champion=None)["changed"]
    again = promote(uri, 1, lock_dir=tmp_path, expected_champion=None)
    assert not again["changed"] and champion_version(uri) == "1"
    with pytest.raises(InputError, match="no version 7"):
        promote(uri, 7, lock_dir=tmp_path)


def test_promote_and_rollback_commands_for_people(tmp_path: Path) -> None:
    from longtail.cli import main

    root = tmp_path / "data"
    uri = _registry(root / "mlflow", 2)
    assert uri == f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    assert main(["promote", "1", "--root", str(root), "--reason", "first"]) == 0
    assert main(["promote", "2", "--root", str(root), "--reason", "better"]) == 0
    assert champion_version(uri) == "2"
    assert main(["rollback", "--root", str(root), "--reason", "phantom braking"]) == 0
    assert champion_version(uri) == "1"
    assert main(["rollback", "--root", str(root), "--reason", "again"]) == 2  # the first champion: refused
