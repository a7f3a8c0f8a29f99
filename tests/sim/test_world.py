"""The world over long drives: the ego keeps moving, and road types follow the plan."""

from __future__ import annotations

import dataclasses

import pytest

from longtail.config import SimConfig
from longtail.sim.plan import Segment, plan_drive
from longtail.sim.world import World


@pytest.mark.slow
@pytest.mark.parametrize("vehicle", ["car", "truck"])
def test_long_mixed_drive_never_stalls_and_follows_the_planned_road(vehicle: str) -> None:
    cfg = SimConfig(minutes=20, scenario_rates={"cut_in": 0.01, "emergency_braking": 0.01,
                                                "occluded_pedestrian": 0.01, "emergency_lane_change": 0.01})
    plan = plan_drive(cfg, f"{vehicle}-001", vehicle, 0, 3)
    # Highway and town alternate every 3 minutes: every transition is exercised.
    segments = tuple(Segment(a, a + 180.0, "urban" if k % 2 else "highway") for k, a in enumerate(range(0, 1200, 180)))
    plan = dataclasses.replace(plan, segments=segments)
    world = World(plan, cfg)
    stopped_for = longest_stop = 0.0
    agree = total = 0
    highway_speeds = []
    for step in range(int(plan.duration_s * 50)):
        world.step(0.02)
        stopped_for = stopped_for + 0.02 if world.ego.v < 0.5 else 0.0
        longest_stop = max(longest_stop, stopped_for)
        if step % 50 == 0:
            total += 1
            agree += world.road_type == plan.road_type_at(world.t)
            if world.road_type == "highway":
                highway_speeds.append(world.ego.v)
    # Red lights last 16 s; an emergency stop a few seconds more.
    assert longest_stop < 45.0
    # The road ahead is generated from the plan; the ego reaches it a few seconds off schedule.
    assert agree / total > 0.9
    assert sum(highway_speeds) / len(highway_speeds) > (18.0 if vehicle == "car" else 15.0)
