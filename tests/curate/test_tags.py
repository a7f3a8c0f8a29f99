"""The image descriptor and scenario tags: synthetic images worked out by hand, real fixtures, simulated weather."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from longtail.catalog.frames import list_manifests, load_frame_index
from longtail.config import NO_SCENARIO_RATES, SimConfig
from longtail.curate.descriptor import DIM, STAT_NAMES, describe_image
from longtail.curate.tags import compute_image_tags, compute_prediction_tags
from longtail.ingest.ingest import ingest
from longtail.sim.drive import simulate_drive
from longtail.sim.plan import fixed_plan

S = {n: i for i, n in enumerate(STAT_NAMES)}


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def _scene(h: int = 384, w: int = 640, seed: int = 0) -> np.ndarray:
    """A road-like picture: sky, textured road, lane lines, buildings with windows, vehicles."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float64)
    img[: h // 2] = (150, 180, 220)
    img[h // 2:] = (90, 90, 95)
    for x0 in range(0, w, 80):  # buildings with a grid of dark windows
        top = int(rng.integers(h // 8, h // 3))
        img[top:h // 2, x0:x0 + 70] = rng.integers(60, 200, 3)
        for y in range(top + 6, h // 2 - 10, 16):
            for x in range(x0 + 6, x0 + 62, 14):
                img[y:y + 8, x:x + 8] = 30
    img[h // 2:, w // 2 - 3:w // 2 + 3] = 240
    for _ in range(8):
        x, y = rng.integers(0, w - 60), rng.integers(h // 2, h - 60)
        img[y:y + 40, x:x + 60] = rng.integers(20, 230, 3)
    img += rng.normal(0, 10, img.shape)  # sensor noise and asphalt grain
    return np.clip(img, 0, 255)


def test_descriptor_is_unit_length_and_tells_scenes_apart() -> None:
    a, b = describe_image(_jpeg(_scene(seed=1))), describe_image(_jpeg(_scene(seed=2)))
    assert a.descriptor.shape == (DIM,) and a.descriptor.dtype == np.float32
    assert np.linalg.norm(a.descriptor) == pytest.approx(1.0, abs=1e-5)
    same = describe_image(_jpeg(_scene(seed=1)))
    assert float(a.descriptor @ same.descriptor) == pytest.approx(1.0, abs=1e-6)
    assert float(a.descriptor @ b.descriptor) < 0.99
    with pytest.raises(ValueError, match=r"frame\.jpg: cannot decode the image"):
        describe_image(b"\xff\xd8 not a jpeg", "frame.jpg")


def test_synthetic_conditions_get_their_tags() -> None:
    day = _scene()
    night = day * 0.06  # dark, but for the headlight beam on the road and street lamps
    night[250:, 160:480] = day[250:, 160:480] * 0.5
    for x in range(40, 640, 120):
        night[60:72, x:x + 12] = 255
    fog = 0.25 * day + 0.75 * 200.0  # contrast crushed towards a bright grey
    rain = day.copy()
    rng = np.random.default_rng(5)
    for _ in range(400):  # thin bright near-vertical streaks
        x, y = rng.integers(0, 639), rng.integers(0, 360)
        rain[y:y + 20, x] = np.minimum(rain[y:y + 20, x] + 90, 255)
    glare = night.copy()
    glare[150:190, 300:360] = 255  # oncoming headlights: a saturated blob of 1% of the image
    stats = np.stack([describe_image(_jpeg(x)).stats for x in (day, night, fog, rain, glare)])
    tags = compute_image_tags(stats)
    assert tags[0] == []
    assert tags[1] == ["night"]
    assert tags[2] == ["fog"]
    assert tags[3] == ["rain"]
    assert tags[4] == ["night", "glare"]


def test_real_daytime_fixtures_are_not_night_fog_or_rain(real_data: Path) -> None:
    images = sorted(real_data.glob("kitti/training/image_2/*.png")) + \
        sorted(real_data.glob("nuscenes_sample/samples/*/*.jpg"))
    assert len(images) >= 10
    tags = compute_image_tags(np.stack([describe_image(p.read_bytes(), str(p)).stats for p in images]))
    assert not any({"night", "fog", "rain"} & set(t) for t in tags), list(zip(images, tags, strict=True))


def test_rain_fog_and_night_on_simulated_640px_frames(tmp_path: Path) -> None:
    cfg = SimConfig(minutes=0.25, scenario_rates=NO_SCENARIO_RATES)
    conditions = [("day", "clear"), ("day", "rain"), ("dusk", "rain"), ("night", "clear"), ("day", "fog"),
                  ("dusk", "clear")]
    for k, (tod, weather) in enumerate(conditions):
        plan = fixed_plan(cfg, 200 + k, road="urban" if k % 2 else "highway", time_of_day=tod, weather=weather)
        simulate_drive(plan, cfg, tmp_path / "logs" / f"{k}-{tod}-{weather}.mcap", tmp_path / f"{k}.parquet")
    ingest([tmp_path / "logs"], tmp_path / "data", progress=False)
    index = load_frame_index(tmp_path / "data")
    cond = {m["log_id"]: Path(m["path"]).stem.split("-")[1:] for m in list_manifests(tmp_path / "data")}
    stats = np.stack([describe_image((tmp_path / "data" / p).read_bytes()).stats for p in index.store_path])
    tags = compute_image_tags(stats)
    tod = np.array([cond[i][0] for i in index.log_id])
    weather = np.array([cond[i][1] for i in index.log_id])
    has = {t: np.array([t in x for x in tags]) for t in ("night", "fog", "rain")}
    rain_recall = has["rain"][weather == "rain"].mean()
    rain_false = has["rain"][weather != "rain"].mean()
    print(f"rain recall {rain_recall:.2f}, false-positive rate {rain_false:.2f}")
    assert (has["night"] == (tod == "night")).mean() >= 0.95
    assert (has["fog"] == (weather == "fog")).mean() >= 0.95
    assert rain_recall >= 0.6 and rain_false <= 0.1


def test_prediction_tags_by_hand() -> None:
    assert compute_prediction_tags([], [], [], "car") == []
    tags = compute_prediction_tags(["pedestrian", "pedestrian", "car"], [0.9, 0.3, 0.8], [15.0, 60.0, 40.0], "truck")
    assert tags == ["small_pedestrian", "low_confidence_pedestrian", "truck_view"]
    assert compute_prediction_tags(["car"] * 8, [0.6] * 8, [30.0] * 8) == ["crowded"]
    assert compute_prediction_tags(["car"] * 8, [0.4] * 8, [30.0] * 8) == []
