"""Critical scenarios: vehicle signals react as the scene warrants, and the long tail is harder
to see (smaller, darker, more hidden) than ordinary traffic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from longtail.catalog.truth import load_ground_truth
from longtail.config import NO_SCENARIO_RATES, SimConfig
from longtail.logs import iter_messages
from longtail.sim.drive import simulate_drive
from longtail.sim.plan import fixed_plan

# Far enough apart for the ego to be back at cruising speed before each event.
EVENTS_AT = ((10.0, 15.0), (40.0, 45.0), (70.0, 75.0), (100.0, 105.0))


def _run(tmp: Path, name: str, road: str, time_of_day: str = "day", seed: int = 1, fps: float = 5.0,
         size: tuple[int, int] = (256, 160)):
    cfg = SimConfig(minutes=2.0, width=size[0], height=size[1], fps=fps, scenario_rates=NO_SCENARIO_RATES)
    plan = fixed_plan(cfg, seed, road=road, time_of_day=time_of_day,
                      events=tuple((name, a, b) for a, b in EVENTS_AT))
    log, gt = tmp / f"{name}.mcap", tmp / f"{name}.parquet"
    simulate_drive(plan, cfg, log, gt)
    rows = [dict(m.message, t=(m.log_time_ns - plan.start_ns) / 1e9) for m in iter_messages(log, topics=["/vehicle/state"])]
    signals = pd.DataFrame(rows).set_index("t")
    return signals, *load_ground_truth(gt)


def _window(signals: pd.DataFrame, a: float, b: float) -> pd.DataFrame:
    return signals[(signals.index >= a) & (signals.index < b + 1.0)]


def test_emergency_braking_brakes_hard_and_warns_or_hands_over(tmp_path: Path) -> None:
    signals, _, _ = _run(tmp_path, "emergency_braking", "highway")
    for a, b in EVENTS_AT:
        w = _window(signals, a, b)
        assert w.accel_mps2.min() < -4.0, (a, w.accel_mps2.min())
        assert w.brake_pressure_bar.max() > 30.0
        assert (w.adas_alert.isin(["fcw", "aeb"]) | w.driver_override).any()
    quiet = signals[~np.any([(signals.index >= a - 1) & (signals.index < b + 8) for a, b in EVENTS_AT], axis=0)]
    assert (quiet.accel_mps2 < -4.0).mean() < 0.005, "hard braking is rare outside the scenarios"


def test_emergency_lane_change_swerves_without_indicator_and_driver_takes_over(tmp_path: Path) -> None:
    signals, _, _ = _run(tmp_path, "emergency_lane_change", "highway")
    for a, b in EVENTS_AT:
        w = _window(signals, a, b)
        assert w.steering_wheel_angle_deg.abs().max() > 10.0
        assert w.yaw_rate_rps.abs().max() > 0.08
        # A disengagement, when assistance was engaged; otherwise the driver was driving already.
        assert w.driver_override.any() or not w.adas_engaged.iloc[0]
        swerving = w[w.yaw_rate_rps.abs() > 0.05]
        assert (swerving.turn_signal == "off").all()


def test_cut_in_makes_the_ego_brake(tmp_path: Path) -> None:
    signals, _frames, objects = _run(tmp_path, "cut_in", "highway", seed=2)
    braked = [_window(signals, a, b).accel_mps2.min() < -2.0 for a, b in EVENTS_AT]
    assert sum(braked) >= 3
    cutters = objects[objects.critical]
    assert (cutters.truncation > 0).any(), "the cutting vehicle first appears cut off at the image edge"


def test_signals_are_physically_consistent(tmp_path: Path) -> None:
    signals, _, _ = _run(tmp_path, "cut_in", "urban", seed=3)
    dt = np.diff(signals.index.to_numpy())
    dv = np.diff(signals.speed_mps.to_numpy()) / dt
    smooth = pd.Series(dv).rolling(25, center=True).mean().to_numpy()
    acc = signals.accel_mps2.to_numpy()[1:]
    ok = ~np.isnan(smooth)
    assert np.corrcoef(smooth[ok], acc[ok])[0, 1] > 0.8
    turning = signals[signals.yaw_rate_rps.abs() > 0.03]
    assert (np.sign(turning.yaw_rate_rps) == np.sign(turning.steering_wheel_angle_deg)).mean() > 0.95
    assert ((signals.brake_pressure_bar > 1.0) & (signals.throttle_pct > 1.0)).mean() < 0.01


@pytest.mark.slow
def test_rare_scenarios_are_visually_harder_than_ordinary_traffic(tmp_path: Path) -> None:
    # At the default camera resolution: what the detector will see.
    _, _, night = _run(tmp_path, "night_vru", "urban", time_of_day="night", seed=4, fps=2.0, size=(640, 384))
    _, _, occluded = _run(tmp_path, "occluded_pedestrian", "urban", seed=5, fps=5.0, size=(640, 384))
    ordinary = pd.concat([night[~night.critical], occluded[~occluded.critical]])
    ordinary_vru = ordinary[ordinary.category.isin(["pedestrian", "cyclist"])]
    night_subjects = night[night.critical & night.category.isin(["pedestrian", "cyclist"])]
    occluded_subjects = occluded[occluded.critical & (occluded.category == "pedestrian")]
    assert len(night_subjects) > 20 and len(occluded_subjects) > 10 and len(ordinary_vru) > 50
    # Night-time VRUs: darker and smaller than the pedestrians and cyclists of ordinary driving.
    assert night_subjects.luminance.median() < 0.6 * ordinary_vru.luminance.median()
    assert night_subjects.pixel_height.median() < ordinary_vru.pixel_height.median()
    # Occluded pedestrians are first seen mostly hidden, then step out in front of the ego.
    first_sight = occluded_subjects.sort_values("frame_index").groupby("track_id").visible_fraction.first()
    assert len(first_sight) == len(EVENTS_AT) and (first_sight < 0.5).mean() >= 0.75
    assert occluded_subjects.visible_fraction.max() > 0.9
