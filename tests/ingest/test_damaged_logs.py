"""Damaged drive logs: keep what is intact, name what is wrong, change nothing already stored."""

from __future__ import annotations

import hashlib
import random
import struct
from pathlib import Path

import pytest
from mcap.reader import make_reader

from longtail.catalog.frames import list_manifests, load_frame_index
from longtail.ingest.ingest import ingest
from longtail.logs import iter_messages


def _ingest_into_used_store(tmp_path: Path, sim_logs: dict[str, Path], bad: Path, snapshot):  # type: ignore[no-untyped-def]
    """Ingest a good log first, then the bad one with another good log after it in the same batch."""
    root = tmp_path / "data"
    ingest([sim_logs["town"]], root, progress=False)
    before = snapshot(root)
    results = ingest([bad, sim_logs["ros2"]], root, progress=False)
    after = snapshot(root)
    # Nothing stored before changed; the batch went on past the bad log.
    assert {k: v for k, v in after.items() if k in before} == before
    assert results[1].status == "ingested"
    return results[0], root


def _frames_of(root: Path, log_id: str):  # type: ignore[no-untyped-def]
    df = load_frame_index(root)
    return df[df.log_id == log_id]


def test_truncated_log_keeps_the_frames_before_the_cut(tmp_path, sim_logs, clean_index, copy_log, snapshot) -> None:
    bad = copy_log(sim_logs["foxglove"], tmp_path / "cut.mcap")
    data = bad.read_bytes()
    bad.write_bytes(data[: int(len(data) * 0.6)])
    result, root = _ingest_into_used_store(tmp_path, sim_logs, bad, snapshot)
    assert result.status == "partial"
    assert any("cut short" in r for r in result.reasons), result.reasons
    kept = _frames_of(root, result.log_id)
    clean = clean_index.set_index("timestamp_ns")
    assert 0.4 * len(clean) < len(kept) < len(clean)
    # Exactly the clean run's frames up to the damage.
    assert set(kept.timestamp_ns) <= set(clean.index)
    assert (kept.set_index("timestamp_ns").image_sha256 == clean.loc[kept.timestamp_ns].image_sha256).all()
    assert kept.keyframe.sum() == (clean_index.keyframe & (clean_index.timestamp_ns <= kept.timestamp_ns.max())).sum()


def test_missing_summary_and_footer_reads_the_whole_data_section(tmp_path, sim_logs, clean_index, copy_log,
                                                                 snapshot) -> None:
    bad = copy_log(sim_logs["foxglove"], tmp_path / "nofooter.mcap")
    with open(bad, "rb") as f:
        summary_start = struct.unpack("<Q", f.read()[-28:-20])[0]
    bad.write_bytes(bad.read_bytes()[:summary_start])
    result, root = _ingest_into_used_store(tmp_path, sim_logs, bad, snapshot)
    assert result.status == "partial" and any("no readable summary or footer" in r for r in result.reasons)
    kept = _frames_of(root, result.log_id)
    assert kept.timestamp_ns.tolist() == clean_index.timestamp_ns.tolist()


def test_corrupted_chunk_is_skipped_and_the_rest_kept(tmp_path, sim_logs, clean_index, copy_log, snapshot) -> None:
    bad = copy_log(sim_logs["foxglove"], tmp_path / "flip.mcap")
    with open(bad, "rb") as f:
        chunks = sorted(make_reader(f).get_summary().chunk_indexes, key=lambda c: c.chunk_start_offset)
    victim = chunks[len(chunks) // 2]
    data = bytearray(bad.read_bytes())
    middle = victim.chunk_start_offset + victim.chunk_length // 2
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    bad.write_bytes(bytes(data))
    result, root = _ingest_into_used_store(tmp_path, sim_logs, bad, snapshot)
    assert result.status == "partial"
    assert any(f"chunk at byte {victim.chunk_start_offset}" in r and "corrupted" in r for r in result.reasons)
    kept = _frames_of(root, result.log_id)
    lost = clean_index[(clean_index.timestamp_ns >= victim.message_start_time)
                       & (clean_index.timestamp_ns <= victim.message_end_time)]
    assert len(lost) > 0 and not set(kept.timestamp_ns) & set(lost.timestamp_ns)
    # Every frame outside the lost chunk is kept. The chunk's vehicle signals are lost too, so a
    # state change across the gap can fire a trigger just after it: such extra frames are real
    # frames of the log, kept for that trigger's window.
    assert set(clean_index.timestamp_ns) - set(lost.timestamp_ns) <= set(kept.timestamp_ns)
    extra = kept[~kept.timestamp_ns.isin(clean_index.timestamp_ns)]
    assert (extra.triggers.map(len) > 0).all()


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "the file is empty (0 bytes)"),
    (b"timestamp,speed\n1,2\n", "not an MCAP file"),
])
def test_empty_or_foreign_file_is_quarantined(tmp_path, sim_logs, snapshot, content: bytes, reason: str) -> None:
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(content)
    result, root = _ingest_into_used_store(tmp_path, sim_logs, bad, snapshot)
    assert result.status == "quarantined" and reason in result.reasons[0] and str(bad) in result.reasons[0]
    manifest = next(m for m in list_manifests(root) if m["log_id"] == result.log_id)
    assert manifest["status"] == "quarantined" and reason in manifest["reasons"][0]


def test_timestamps_going_backwards_keep_the_monotonic_part(tmp_path, sim_logs, clean_index, rewrite,
                                                            snapshot) -> None:
    start = int(clean_index.timestamp_ns.min())
    jump = start + 20_000_000_000

    def clock_jump(topic: str, t: int, data: bytes) -> tuple[int, bytes]:
        # From 20 s in, the logger's clock jumps 5 s back for 3 s.
        return (t - 5_000_000_000, data) if jump <= t < jump + 3_000_000_000 else (t, data)

    bad = rewrite(sim_logs["foxglove"], tmp_path / "backwards.mcap", change=clock_jump)
    result, root = _ingest_into_used_store(tmp_path, sim_logs, bad, snapshot)
    assert result.status == "partial" and any("timestamps going backwards" in r for r in result.reasons)
    kept = _frames_of(root, result.log_id)
    assert kept.timestamp_ns.is_monotonic_increasing and kept.timestamp_ns.is_unique
    # The frames stamped back into the past were dropped; everything else is there.
    assert not ((kept.timestamp_ns >= jump - 5_000_000_000) & (kept.timestamp_ns < jump - 2_000_000_000)
                & ~kept.timestamp_ns.isin(clean_index.timestamp_ns)).any()
    assert len(kept) >= 0.8 * len(clean_index)


def test_log_without_camera_is_a_signals_only_drive_naming_the_topics(tmp_path, sim_logs, rewrite, snapshot) -> None:
    bad = rewrite(sim_logs["foxglove"], tmp_path / "nocam.mcap", keep=lambda t: t != "/camera/front/image")
    result, root = _ingest_into_used_store(tmp_path, sim_logs, bad, snapshot)
    assert result.status == "ingested" and result.reasons == [] and result.frames_kept == 0
    assert any(n.startswith("no camera") and "/vehicle/state" in n and "signals-only" in n and "--image-topic" in n
               for n in result.notes), result.notes
    # Its signals fire the same triggers as the log with the camera.
    assert {"hard_braking", "harsh_steering"} <= set(result.triggers_found)
    manifest = next(m for m in list_manifests(root) if m["log_id"] == result.log_id)
    assert manifest["signal_samples"] > 0 and manifest["camera"] is None


def test_truncated_log_without_camera_is_partial_with_every_reason(tmp_path, sim_logs, rewrite, snapshot) -> None:
    full = rewrite(sim_logs["foxglove"], tmp_path / "nocam.mcap", keep=lambda t: t != "/camera/front/image",
                   chunk_size=64 * 1024)
    bad = tmp_path / "nocam_cut.mcap"
    bad.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    result, _ = _ingest_into_used_store(tmp_path, sim_logs, bad, snapshot)
    assert result.status == "partial"
    assert any("cut short" in r for r in result.reasons) and any(n.startswith("no camera") for n in result.notes)
    assert 0 < result.messages_read < 40 * 50
    # The text table shows every reason and note, not the first one only.
    from longtail.cli import ingest_table

    shown = ingest_table([result])
    assert all(f"reason: {r}" in shown for r in result.reasons) and all(f"note: {n}" in shown for n in result.notes)


def test_undecodable_jpegs_are_skipped_and_named(tmp_path, sim_logs, clean_index, rewrite, snapshot) -> None:
    from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage

    broken = set(clean_index[clean_index.keyframe].timestamp_ns.iloc[5:8])

    def garble(topic: str, t: int, data: bytes) -> tuple[int, bytes]:
        if topic == "/camera/front/image" and t in broken:
            msg = CompressedImage.FromString(data)
            msg.data = b"\x00not a jpeg" * 100
            return t, msg.SerializeToString()
        return t, data

    bad = rewrite(sim_logs["foxglove"], tmp_path / "garbled.mcap", change=garble)
    result, root = _ingest_into_used_store(tmp_path, sim_logs, bad, snapshot)
    assert result.status == "partial"
    assert any("3 camera frame(s) are not decodable images" in r and "no JPEG start-of-image marker" in r
               for r in result.reasons), result.reasons
    kept = _frames_of(root, result.log_id)
    assert not set(kept.timestamp_ns) & broken
    assert len(kept) >= len(clean_index) - 3


def test_log_without_signals_keeps_frames_without_features(tmp_path, sim_logs, rewrite, snapshot) -> None:
    bad = rewrite(sim_logs["foxglove"], tmp_path / "nosignals.mcap", keep=lambda t: t != "/vehicle/state")
    result, root = _ingest_into_used_store(tmp_path, sim_logs, bad, snapshot)
    # Nothing was lost: ingested, with a note that says what the log lacks.
    assert result.status == "ingested" and result.reasons == []
    assert any(n.startswith("no vehicle signals") for n in result.notes), result.notes
    kept = _frames_of(root, result.log_id)
    assert len(kept) > 0 and kept.speed_mps.isna().all() and (kept.triggers.map(len) == 0).all()
    assert result.triggers_found == {}
    assert set(result.triggers_not_evaluated) == {"hard_braking", "harsh_steering", "disengagement", "adas_alert"}
    # GNSS is still there.
    assert kept.latitude.notna().all()


@pytest.mark.slow
def test_fuzzed_logs_never_break_ingest_or_the_store(tmp_path, sim_logs, clean_index, snapshot) -> None:
    """Random truncations and byte flips of a simulated log (seeded, 30 variants)."""
    source = sim_logs["foxglove"].read_bytes()
    # Every camera frame of the source log: what a kept frame must be, bit for bit.
    clean = {m.log_time_ns: hashlib.sha256(bytes(m.message.data)).hexdigest()
             for m in iter_messages(sim_logs["foxglove"], topics=["/camera/front/image"])}
    rng = random.Random(2026)
    root = tmp_path / "data"
    ingest([sim_logs["town"]], root, progress=False)
    before = snapshot(root)
    statuses = []
    for k in range(30):
        data = bytearray(source)
        if k % 3 == 0:
            data = data[: rng.randrange(len(data))]
        for _ in range(rng.randrange(1, 6)):
            pos = rng.randrange(len(data))
            data[pos] ^= 1 << rng.randrange(8)
        variant = tmp_path / f"fuzz{k}.mcap"
        variant.write_bytes(bytes(data))
        (result,) = ingest([variant], root, progress=False)
        statuses.append(result.status)
        assert result.status in ("ingested", "partial", "quarantined")
        kept = load_frame_index(root)
        kept = kept[kept.log_id == result.log_id]
        for row in kept.itertuples():
            # A frame is either one of the clean log's frames, bit for bit, or not there at all.
            assert clean.get(row.timestamp_ns) == row.image_sha256
            assert (root / row.store_path).read_bytes()[:2] == b"\xff\xd8"
    after = snapshot(root)
    assert {k: v for k, v in after.items() if k in before} == before
    assert "partial" in statuses
