"""Perception mode: the ADAS acts on the boxes it is given, not on the simulator's truth.

Hand-built scenes on an empty town road: a stopped car or a standing pedestrian in the ego's lane,
and a perception that returns its box (as drawn, from the renderer's ground truth), returns
nothing, or returns a phantom box on an empty road.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from longtail.config import NO_SCENARIO_RATES, SimConfig
from longtail.errors import InputError
from longtail.sim.camera import make_camera
from longtail.sim.drive import DriveSession
from longtail.sim.ego import ACC_DECEL_LIMIT
from longtail.sim.perception import GroundObject, in_path, place_on_ground
from longtail.sim.plan import fixed_plan

CFG = SimConfig(minutes=0.15, width=320, height=192, fps=10.0, scenario_rates=NO_SCENARIO_RATES)


def _box_at(distance: float, lateral: float, width: float, height: float, category: str) -> dict[str, Any]:
    """The box of an object standing on the road ``distance`` m ahead (the camera's own geometry)."""
    cam = make_camera("car", CFG.width, CFG.height)
    below = math.atan2(cam.height_m, distance) - cam.pitch_rad  # angle of the ground contact below the axis
    bottom = cam.cy + cam.fy * math.tan(below)
    zc = distance * math.cos(cam.pitch_rad) + cam.height_m * math.sin(cam.pitch_rad)
    centre = cam.cx + cam.fx * lateral / zc
    half, tall = cam.fx * width / 2 / zc, cam.fy * height / zc
    return {"category": category, "x1": centre - half, "y1": bottom - tall, "x2": centre + half, "y2": bottom,
            "score": 0.9}


def _drive(tmp: Path, obstacle: str | None, perception: str) -> dict[str, Any]:
    """Run the scene; ``perception`` is "sees" (the obstacle's drawn box), "misses" (nothing) or
    "phantom" (a car's box 25 m ahead whatever is there)."""
    plan = dataclasses.replace(fixed_plan(CFG, 10, road="urban"), traffic_level=0.0)
    steps: list[dict[str, float]] = []
    session = DriveSession(plan, CFG, tmp / "scene.mcap", tmp / "scene.parquet", perceive_every=2,
                           on_step=lambda w: steps.append({
                               "engaged": w.ego.adas_engaged, "a_cmd": w.ego.a_cmd, "a_truth": w.driver.a_truth,
                               "alert": w.ego.adas_alert, "gap": w.traffic.leader_gap(
                                   w.ego.s, w.ego.x, w.spec["width"], lights=False)[0]}))
    world = session.world
    world.lights.clear()
    world.walkers.clear()
    world.cyclists.clear()
    world.vehicles[:] = [v for v in world.vehicles if v.parked]
    world.ego.adas_engaged = True
    rng = np.random.default_rng(0)
    target = None
    if obstacle == "car":
        target = world.traffic.make_vehicle(world.ego.s + 80.0, world.ego.x, 0.0, rng, 0.0)
        target.broken_down = True
        world.vehicles.append(target)
    elif obstacle == "pedestrian":
        target = world.traffic.make_walker(world.ego.s + 60.0, world.ego.x, 0.0, 0.0, rng, dark=False)
        world.walkers.append(target)
    seen = 0
    with session:
        while session.next_frame() is not None:
            if perception == "sees":
                boxes = [{"category": t.category, "x1": t.box[0], "y1": t.box[1], "x2": t.box[2], "y2": t.box[3],
                          "score": 0.9} for t in session.truths if target is not None and t.track_id == target.id]
                seen += bool(boxes)
            elif perception == "phantom":
                boxes = [_box_at(25.0, 0.0, 1.8, 1.5, "car")]
            else:
                boxes = []
            session.deliver(boxes)
    return {"steps": steps, "missed": world.driver.missed_hazards, "seen": seen}


def _adas_braking(steps: list[dict[str, Any]]) -> float:
    """Hardest deceleration the ADAS commanded while engaged, m/s^2 (positive)."""
    return -min([s["a_cmd"] for s in steps if s["engaged"]], default=0.0)


@pytest.mark.parametrize("obstacle", ["car", "pedestrian"])
def test_adas_brakes_for_a_detected_obstacle_and_the_driver_need_not_act(tmp_path: Path, obstacle: str) -> None:
    run = _drive(tmp_path, obstacle, "sees")
    steps = run["steps"]
    assert run["seen"] > 10
    assert _adas_braking(steps) > 1.0
    assert run["missed"] == 0
    assert min(s["gap"] for s in steps) > 0.5  # stopped short of it
    assert steps[-1]["engaged"]


@pytest.mark.parametrize("obstacle", ["car", "pedestrian"])
def test_a_missed_obstacle_is_not_braked_for_and_the_driver_takes_over_unwarned(tmp_path: Path, obstacle: str) -> None:
    steps = (run := _drive(tmp_path, obstacle, "misses"))["steps"]
    takeover = next(i for i, s in enumerate(steps) if not s["engaged"])
    assert _adas_braking(steps[:takeover]) < 0.5
    assert all(s["alert"] == "none" for s in steps[:takeover])
    assert run["missed"] == 1
    # The road demanded hard braking well before the driver noticed (1.0-1.5 s at 50 Hz).
    demanded = next(i for i, s in enumerate(steps) if s["a_truth"] < -ACC_DECEL_LIMIT)
    assert 50 <= takeover - demanded <= 76


def test_a_phantom_box_makes_the_adas_brake_on_an_empty_road(tmp_path: Path) -> None:
    steps = _drive(tmp_path, None, "phantom")["steps"]
    phantom = [s for s in steps if s["engaged"] and s["a_cmd"] <= -3.0 and s["a_truth"] > -1.0]
    assert phantom
    assert any(s["alert"] in ("fcw", "aeb") for s in steps)


def test_boxes_are_placed_on_the_flat_road_where_the_camera_sees_them() -> None:
    cam = make_camera("car", CFG.width, CFG.height)
    for distance, lateral in ((10.0, 0.0), (30.0, -3.5), (60.0, 2.0)):
        (obj,) = place_on_ground([_box_at(distance, lateral, 1.8, 1.5, "car")], cam)
        assert obj.distance_m == pytest.approx(distance, rel=1e-6)
        assert obj.lateral_m == pytest.approx(lateral, abs=1e-6)
        assert obj.half_width_m == pytest.approx(0.9, rel=1e-6)
    # A box ending above the horizon touches no road.
    assert place_on_ground([{"category": "car", "x1": 10, "y1": 0, "x2": 20, "y2": 5, "score": 0.9}], cam) == []


def test_in_path_follows_the_curve_of_the_ego_path() -> None:
    car_width = 1.9
    ahead = GroundObject("car", 40.0, 0.0, 0.9, 0.9)
    beside = GroundObject("car", 40.0, 3.5, 0.9, 0.9)
    assert in_path(ahead, car_width, 0.0) and not in_path(beside, car_width, 0.0)
    # On a right-hand curve of radius 229 m the path is 3.5 m to the right at 40 m.
    assert in_path(beside, car_width, 2 * 3.5 / 40.0**2) and not in_path(ahead, car_width, 2 * 3.5 / 40.0**2)


def test_an_inverted_box_is_refused_naming_the_frame(tmp_path: Path) -> None:
    plan = fixed_plan(CFG, 5, road="urban")
    session = DriveSession(plan, CFG, tmp_path / "bad.mcap", tmp_path / "bad.parquet", perceive_every=2)
    with pytest.raises(InputError, match=r"frame 0.*inverted"), session:
        session.next_frame()
        session.deliver([{"category": "car", "x1": 9, "y1": 5, "x2": 5, "y2": 9, "score": 0.5}])
    assert not (tmp_path / "bad.mcap").exists()
