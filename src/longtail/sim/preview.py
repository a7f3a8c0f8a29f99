"""A gallery of what the simulated fleet sees: one frame per condition and critical scenario.

Each scene is a short drive with its conditions and one scenario forced; the frame shown is
the one where the scenario's subject is most telling (largest on screen, or, for an occluded
pedestrian, while it is still partly hidden).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import cv2
import numpy as np

from longtail.config import NO_SCENARIO_RATES, SimConfig
from longtail.sim.camera import make_camera
from longtail.sim.lighting import make_lighting
from longtail.sim.plan import fixed_plan
from longtail.sim.render import ObjectTruth, Renderer
from longtail.sim.world import World
from longtail.storage import atomic_write_bytes

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Scene:
    """One gallery entry: conditions, road, vehicle, and an optional scenario."""

    name: str
    time_of_day: str
    weather: str
    road: str
    vehicle: str = "car"
    scenario: str | None = None
    at_s: float = 12.0


SCENES: tuple[Scene, ...] = (
    Scene("day_urban", "day", "clear", "urban"),
    Scene("day_highway", "day", "clear", "highway"),
    Scene("dusk_urban", "dusk", "clear", "urban"),
    Scene("night_urban", "night", "clear", "urban"),
    Scene("rain_highway", "day", "rain", "highway", vehicle="truck"),
    Scene("fog_urban", "day", "fog", "urban"),
    Scene("cut_in", "day", "clear", "highway", scenario="cut_in"),
    Scene("occluded_pedestrian", "day", "clear", "urban", scenario="occluded_pedestrian"),
    Scene("night_vru", "night", "clear", "urban", scenario="night_vru"),
    Scene("emergency_braking", "dusk", "rain", "highway", scenario="emergency_braking"),
    Scene("emergency_lane_change", "day", "clear", "highway", scenario="emergency_lane_change"),
    Scene("night_highway_truck", "night", "clear", "highway", vehicle="truck"),
)

CLASS_COLORS = {"car": (60, 220, 60), "truck": (230, 160, 40), "pedestrian": (40, 40, 240), "cyclist": (40, 220, 240)}


def draw_boxes(image: np.ndarray, truths: list[ObjectTruth]) -> np.ndarray:
    """A copy of ``image`` with ground-truth boxes (critical subjects drawn thicker, in magenta)."""
    out = image.copy()
    for t in truths:
        x1, y1, x2, y2 = t.box
        color = (255, 0, 255) if t.critical else CLASS_COLORS.get(t.category, (255, 255, 255))
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), color, 2 if t.critical else 1)
    return out


def _score(scene: Scene, truths: list[ObjectTruth]) -> float:
    subjects = [t for t in truths if t.critical]
    if not subjects:
        return -1.0
    if scene.scenario == "occluded_pedestrian":
        # Best while the pedestrian is still partly hidden behind the parked vehicle.
        peds = [t for t in subjects if t.category == "pedestrian"]
        return max((t.pixel_height + (1000.0 if 0.1 < t.visible_fraction < 0.9 else 0.0) for t in peds), default=-1.0)
    if scene.scenario in ("emergency_braking", "cut_in"):
        # Best at mid distance (about a third of the image tall): the lead, its lights and the road.
        return max(1000.0 - abs(t.pixel_height - 130) for t in subjects)
    return float(max(t.pixel_height for t in subjects))


def render_scene(scene: Scene, seed: int, width: int = 640, height: int = 384) -> tuple[np.ndarray, list[ObjectTruth]]:
    """Simulate ``scene`` and return its most telling frame and the frame's ground truth."""
    cfg = SimConfig(minutes=0.5, width=width, height=height, scenario_rates=NO_SCENARIO_RATES)
    events = ((scene.scenario, scene.at_s, scene.at_s + 5.0),) if scene.scenario else ()
    plan = fixed_plan(cfg, seed, road=scene.road, vehicle=scene.vehicle, time_of_day=scene.time_of_day,
                      weather=scene.weather, events=events)
    world = World(plan, cfg)
    camera = make_camera(scene.vehicle, width, height)
    rng = np.random.default_rng(seed)
    lighting = make_lighting(scene.time_of_day, scene.weather, plan.weather_intensity, True, rng)
    renderer = Renderer(camera, lighting, scene.time_of_day, scene.weather, seed)
    dt = 1.0 / cfg.signal_hz
    best: tuple[float, np.ndarray, list[ObjectTruth]] | None = None
    end = scene.at_s + 5.0 if scene.scenario else scene.at_s
    t = 0.0
    step = 0
    while t < end + 1e-9:
        if step % 5 == 0 and (t >= scene.at_s or not scene.scenario) and t >= min(scene.at_s, end) - 1e-9:
            image, truths = renderer.render(world)
            score = _score(scene, truths) if scene.scenario else 0.0
            if best is None or score > best[0]:
                best = (score, image, truths)
        world.step(dt)
        t += dt
        step += 1
    assert best is not None
    return best[1], best[2]


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for a {image.shape} image")
    return bytes(data.tobytes())


def render_gallery(out: str | os.PathLike[str], seed: int = 7, boxes: bool = True) -> list[Path]:
    """Render every scene of `SCENES` to ``out``/<name>.jpg and a contact sheet ``gallery.jpg``.

    Returns:
        The paths written, the contact sheet last.
    """
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    tiles = []
    for k, scene in enumerate(SCENES):
        image, truths = render_scene(scene, seed + k)
        shown = draw_boxes(image, truths) if boxes else image
        path = root / f"{scene.name}.jpg"
        atomic_write_bytes(path, _jpeg(shown, 88))
        paths.append(path)
        tile = cv2.resize(shown, (320, 192), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, scene.name.replace("_", " "), (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, scene.name.replace("_", " "), (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                    cv2.LINE_AA)
        tiles.append(tile)
        log.info("rendered %s (%d objects)", scene.name, len(truths))
    rows = [np.hstack(tiles[i:i + 4]) for i in range(0, len(tiles), 4)]
    sheet = np.vstack(rows)
    sheet_path = root / "gallery.jpg"
    atomic_write_bytes(sheet_path, _jpeg(sheet, 85))
    paths.append(sheet_path)
    return paths
