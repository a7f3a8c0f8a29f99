"""The renderer's ground truth matches what it draws."""

from __future__ import annotations

import math

import numpy as np
import pytest

from longtail.config import NO_SCENARIO_RATES, SimConfig
from longtail.sim.camera import make_camera
from longtail.sim.lighting import make_lighting
from longtail.sim.plan import fixed_plan
from longtail.sim.render import ID_STATIC, Renderer
from longtail.sim.world import World


def _setup(road: str, time_of_day: str = "day", weather: str = "clear", vehicle: str = "car", events=(), seed=11):
    cfg = SimConfig(minutes=0.5, scenario_rates=NO_SCENARIO_RATES)
    plan = fixed_plan(cfg, seed, road=road, vehicle=vehicle, time_of_day=time_of_day, weather=weather, events=events)
    world = World(plan, cfg)
    cam = make_camera(vehicle, cfg.width, cfg.height)
    light = make_lighting(time_of_day, weather, plan.weather_intensity, True, np.random.default_rng(seed))
    return world, Renderer(cam, light, time_of_day, weather, seed, min_box_px=cfg.min_box_px)


def _frames(world: World, renderer: Renderer, seconds: float, every: int = 10):
    for step in range(int(seconds * 50)):
        world.step(0.02)
        if step % every == 0:
            image, truths = renderer.render(world)
            yield image, truths


@pytest.mark.parametrize(("road", "time_of_day", "weather"), [("urban", "day", "clear"), ("highway", "night", "rain")])
def test_every_visible_actor_pixel_lies_inside_its_boxes(road: str, time_of_day: str, weather: str) -> None:
    world, renderer = _setup(road, time_of_day, weather)
    checked = 0
    for image, truths in _frames(world, renderer, 6.0):
        h, w = image.shape[:2]
        ids = renderer.last_ids
        for t in truths:
            x1, y1, x2, y2 = t.box
            vx1, vy1, vx2, vy2 = t.visible_box
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
            assert x1 <= vx1 < vx2 <= x2 and y1 <= vy1 < vy2 <= y2
            ys, xs = np.nonzero(ids == renderer.last_id_of[t.track_id])
            assert len(xs) > 0
            # Exact: the visible box is the tight extent of the actor's visible pixels.
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (vx1, vy1, vx2, vy2)
            if t.visible_fraction == 1.0:
                assert t.box == t.visible_box
            assert t.pixel_height == y2 - y1 >= 4
            checked += 1
    assert checked > 100


def test_removing_an_actor_changes_pixels_only_inside_its_box() -> None:
    world, renderer = _setup("urban", seed=5)
    for _ in range(150):
        world.step(0.02)
    _, truths = renderer.render(world)
    cars = [t for t in truths if t.category == "car" and t.visible_fraction == 1.0 and t.pixel_height > 25
            and t.truncation == 0.0]
    assert cars, "expected a fully visible car in view"
    target = max(cars, key=lambda t: t.pixel_height)
    base, _ = renderer.render(world)
    world.vehicles = [v for v in world.vehicles if v.id != target.track_id]
    without, after = renderer.render(world)
    assert target.track_id not in {t.track_id for t in after}
    changed = np.abs(base.astype(int) - without.astype(int)).max(axis=2) > 12
    x1, y1, x2, y2 = target.box
    inside = changed[y1:y2, x1:x2].sum()
    # Most of the car's own area changes, and almost nothing changes elsewhere (its shadow
    # reaches a little beyond the box, below and to the sides).
    assert inside > 0.6 * (x2 - x1) * (y2 - y1)
    mx, my = int(0.15 * (x2 - x1)) + 2, int(0.1 * (y2 - y1)) + 3
    grown = np.zeros_like(changed)
    grown[max(y1 - my, 0):y2 + my, max(x1 - mx, 0):x2 + mx] = True
    assert changed[~grown].sum() <= 0.01 * changed.sum()


def test_night_frames_and_unlit_pedestrians_are_darker_than_by_day() -> None:
    frame_mean, ped_lum = {}, {}
    for tod in ("day", "night"):
        world, renderer = _setup("urban", time_of_day=tod, seed=3)
        means, peds = [], []
        for image, truths in _frames(world, renderer, 8.0):
            means.append(float(image.mean()) / 255)
            peds += [t.luminance for t in truths if t.category == "pedestrian" and t.pixel_height > 10]
        frame_mean[tod], ped_lum[tod] = float(np.mean(means)), float(np.median(peds))
    assert frame_mean["night"] < 0.4 * frame_mean["day"]
    assert ped_lum["night"] < 0.8 * ped_lum["day"]


def test_occluded_pedestrian_emerges_from_behind_a_parked_vehicle() -> None:
    world, renderer = _setup("urban", events=(("occluded_pedestrian", 4.0, 9.0),), seed=21)
    fractions = []
    for _, truths in _frames(world, renderer, 9.0, every=5):
        fractions += [t.visible_fraction for t in truths if t.critical and t.category == "pedestrian"]
    assert fractions, "the pedestrian was never in view"
    # First seen partly hidden, later more of it shows.
    assert min(fractions) < 0.6
    assert max(fractions) > min(fractions) + 0.3


def test_truck_camera_sees_over_a_car_that_hides_a_pedestrian_from_a_car_camera() -> None:
    car_cam, truck_cam = make_camera("car", 640, 384), make_camera("truck", 640, 384)
    assert truck_cam.height_m > car_cam.height_m + 0.8 and truck_cam.hfov_deg < car_cam.hfov_deg

    def ray_blocked(cam, target_h: float, target_z: float, roof_h: float, roof_z: float) -> bool:
        # Height of the sight line above the road where it passes the car ahead.
        return cam.height_m + (target_h - cam.height_m) * roof_z / target_z < roof_h

    # A 1.7 m pedestrian 30 m ahead behind a 1.6 m tall SUV 10 m ahead, same bearing: from the car
    # the sight line to the head passes the SUV at 1.45 + 0.25 * 10/30 = 1.533 m (hidden); from
    # the truck at 2.6 - 0.9 * 10/30 = 2.3 m (seen).
    assert ray_blocked(car_cam, 1.7, 30.0, 1.6, 10.0)
    assert not ray_blocked(truck_cam, 1.7, 30.0, 1.6, 10.0)


def test_projection_puts_the_horizon_where_the_pitch_says() -> None:
    cam = make_camera("car", 640, 384)
    u, v = cam.project_camera(*cam.to_camera(np.array([0.0]), np.array([cam.height_m]), np.array([1e6])))
    assert v[0] == pytest.approx(cam.horizon_v(), abs=0.05)
    assert u[0] == pytest.approx(cam.cx)
    # A road point 10 m ahead lands where the camera's ground-depth inverse says.
    _, v10 = cam.project_camera(*cam.to_camera(np.array([0.0]), np.array([0.0]), np.array([10.0])))
    assert float(cam.ground_depth(v10)[0]) == pytest.approx(10.0, rel=1e-6)
    assert cam.fx == pytest.approx(320 / math.tan(math.radians(30)))


def test_static_occluders_are_not_actors() -> None:
    world, renderer = _setup("urban")
    for _ in _frames(world, renderer, 1.0):
        pass
    ids = renderer.last_ids
    assert (ids == ID_STATIC).any()
    assert set(np.unique(ids).tolist()) - {0, ID_STATIC} <= set(renderer.last_id_of.values())
