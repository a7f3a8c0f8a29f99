"""The fleet test's truth-arm cache: a second fleet test with the same configuration and seeds
reuses the truth drives (identical rows, logs restored, nothing driven), a changed configuration
or a damaged entry drives them again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longtail.sim import fleet_test
from longtail.sim.fleet_cache import DRIVES_FILE, sim_source_digest
from longtail.sim.fleet_test import FleetTestConfig, run_fleet_test
from longtail.storage import sha256_file

TINY = FleetTestConfig(minutes=0.2, max_drives=2, n_boot=100)


def _count_arm_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    driven: list[str] = []
    real = fleet_test.run_arm

    def counting(cfg, plans, out, *args, **kwargs):  # type: ignore[no-untyped-def]
        driven.append(out.name)
        return real(cfg, plans, out, *args, **kwargs)

    monkeypatch.setattr(fleet_test, "run_arm", counting)
    return driven


def test_a_second_fleet_test_reuses_the_truth_arm_and_a_changed_config_does_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    driven = _count_arm_runs(monkeypatch)
    cache = tmp_path / "cache"
    first = run_fleet_test(TINY, {}, tmp_path / "one", progress=False, cache=cache)
    assert driven == ["truth"]
    entries = [p for p in cache.iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1 and (entries[0] / DRIVES_FILE).is_file()

    second = run_fleet_test(TINY, {}, tmp_path / "two", progress=False, cache=cache)
    assert driven == ["truth"], "the second run drove the truth arm again"
    assert second["drives"]["truth"] == first["drives"]["truth"]
    assert second["rates"] == first["rates"]
    for d in second["drives"]["truth"]:  # the logs the rows name are there, byte for byte
        assert sha256_file(tmp_path / "two" / d["log"]) == d["sha256"]
        assert (tmp_path / "two" / "truth" / "ground_truth" / f"{d['drive_id']}.parquet").is_file()

    changed = TINY.model_copy(update={"ttc_s": 2.0})
    run_fleet_test(changed, {}, tmp_path / "three", progress=False, cache=cache)
    assert driven == ["truth", "truth"], "a changed configuration reused the cache"
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 2


def test_a_damaged_entry_is_driven_again_and_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    driven = _count_arm_runs(monkeypatch)
    cache = tmp_path / "cache"
    first = run_fleet_test(TINY, {}, tmp_path / "one", progress=False, cache=cache)
    entry = next(p for p in cache.iterdir() if not p.name.startswith("."))
    log = entry / Path(first["drives"]["truth"][0]["log"]).name
    log.unlink()  # the entry's files are links: replace, do not write through, as a damaged disk would
    log.write_bytes(b"damaged")
    again = run_fleet_test(TINY, {}, tmp_path / "two", progress=False, cache=cache)
    assert driven == ["truth", "truth"]
    assert again["drives"]["truth"] == first["drives"]["truth"]
    assert sha256_file(log) == first["drives"]["truth"][0]["sha256"]
    assert json.loads((entry / DRIVES_FILE).read_text()) == first["drives"]["truth"]


def test_the_source_digest_changes_with_the_simulator_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import longtail.sim.fleet_cache as fc

    package = tmp_path / "longtail"
    (package / "sim").mkdir(parents=True)
    (package / "catalog").mkdir()
    (package / "config.py").write_text("A = 1\n")
    (package / "sim" / "world.py").write_text("B = 1\n")
    monkeypatch.setattr(fc, "_PACKAGE", package)
    before = sim_source_digest()
    (package / "sim" / "world.py").write_text("B = 2\n")
    assert sim_source_digest() != before
    assert len(sim_source_digest()) == 64
