"""Fixtures for ingest tests: simulated drive logs, and rewritten or damaged copies of them.

Every log is written in the test session with the real writer; no binary fixture is committed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from mcap.reader import make_reader
from mcap.writer import CompressionType, Writer

from longtail.catalog.frames import load_frame_index
from longtail.config import NO_SCENARIO_RATES, SimConfig
from longtail.sim.drive import simulate_drive
from longtail.sim.plan import fixed_plan

# A drive whose scenarios make every trigger fire: hard braking, an emergency swerve, alerts.
EVENTS = (("emergency_braking", 8.0, 13.0), ("emergency_lane_change", 25.0, 30.0))


@pytest.fixture(scope="session")
def sim_logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 40-second highway drive recorded in both profiles, and a quiet town drive."""
    out = tmp_path_factory.mktemp("logs")
    logs = {}
    for profile in ("foxglove", "ros2"):
        cfg = SimConfig(minutes=40 / 60, width=320, height=192, profile=profile, scenario_rates=NO_SCENARIO_RATES)
        plan = fixed_plan(cfg, 5, road="highway", events=EVENTS)
        log = out / f"highway_{profile}.mcap"
        simulate_drive(plan, cfg, log, out / f"highway_{profile}.parquet")
        logs[profile] = log
    cfg = SimConfig(minutes=0.25, width=320, height=192, scenario_rates=NO_SCENARIO_RATES)
    simulate_drive(fixed_plan(cfg, 6, road="urban"), cfg, out / "town.mcap", out / "town.parquet")
    logs["town"] = out / "town.mcap"
    return logs


@pytest.fixture(scope="session")
def clean_index(sim_logs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The frame index of the foxglove highway log ingested cleanly (the reference)."""
    from longtail.ingest.ingest import ingest

    root = tmp_path_factory.mktemp("clean")
    ingest([sim_logs["foxglove"]], root, progress=False)
    return load_frame_index(root)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


@pytest.fixture
def rewrite() -> Callable[..., Path]:
    """Rewrite a log message by message: ``rewrite(src, dst, keep=..., change=...)``.

    ``keep(topic) -> bool`` drops channels; ``chunk_size`` (bytes) sets the chunks;
    ``change(topic, log_time, data) -> (log_time, data)`` alters messages. Metadata and schemas
    are carried over; the output is a valid, indexed MCAP.
    """

    def run(src: Path, dst: Path, keep: Callable[[str], bool] = lambda t: True,
            change: Callable[[str, int, bytes], tuple[int, bytes]] | None = None, chunk_size: int = 1024 * 1024) -> Path:
        with open(src, "rb") as f, open(dst, "wb") as out:
            reader = make_reader(f)
            summary = reader.get_summary()
            assert summary is not None
            writer = Writer(out, compression=CompressionType.ZSTD, chunk_size=chunk_size)
            writer.start(profile=reader.get_header().profile, library="longtail-tests")
            schema_ids = {sid: writer.register_schema(s.name, s.encoding, s.data) for sid, s in summary.schemas.items()}
            channel_ids = {cid: writer.register_channel(c.topic, c.message_encoding, schema_ids.get(c.schema_id, 0))
                           for cid, c in summary.channels.items() if keep(c.topic)}
            for meta in reader.iter_metadata():
                writer.add_metadata(meta.name, dict(meta.metadata))
            for _schema, channel, message in reader.iter_messages(log_time_order=False):
                if channel.id not in channel_ids:
                    continue
                t, data = message.log_time, message.data
                if change is not None:
                    t, data = change(channel.topic, t, data)
                writer.add_message(channel_ids[channel.id], t, data, t)
            writer.finish()
        return dst

    return run


@pytest.fixture
def copy_log() -> Callable[[Path, Path], Path]:
    """Copy a log to a new path (to damage the copy)."""
    return _copy


def _store_snapshot(root: Path) -> dict[str, bytes]:
    out = {}
    for sub in ("frames", os.path.join("index", "frames")):
        for p in sorted((root / sub).rglob("*")) if (root / sub).exists() else []:
            if p.is_file():
                out[str(p.relative_to(root))] = p.read_bytes()
    return out


@pytest.fixture
def snapshot() -> Callable[[Path], dict[str, bytes]]:
    """``snapshot(root)``: every file under frames/ and index/frames/ with its bytes."""
    return _store_snapshot
