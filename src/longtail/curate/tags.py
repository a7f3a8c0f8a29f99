"""Scenario tags of a frame: from its signals (triggers), its image, and a model's predictions.

Image rules work on the statistics of `longtail.curate.descriptor` (STAT_NAMES). Thresholds were
set on the simulated fleet against its ground-truth conditions and checked on the real KITTI and
nuScenes fixtures (all daytime, clear); `tests/curate/test_tags.py` measures them on a fleet:

- ``night``: mean luma under 0.20 (night frames 0.09-0.22, dusk 0.25-0.38, day 0.31-0.68).
- ``fog``: few strong edges (under 14% of pixels) and a dark channel at least 0.6 of the mean luma
  (haze lifts the darkest colour channel towards the brightness of the scene; He et al. 2009).
- ``rain``: rain-streak anisotropy above 1.2 (rain 0.9-2.8, dry scenes 0.3-1.1), not fog.
- ``glare``: a saturated blob covering more than 0.4% of the image (low sun, headlights,
  overexposed sky).

Prediction rules (once a detector has run): ``crowded`` (at least 8 confident objects),
``small_pedestrian`` (a confident pedestrian under 20 px tall: the size detectors trained here
miss most), ``low_confidence_pedestrian`` (a pedestrian scored 0.2-0.5), ``truck_view`` (a truck's
camera, whose higher mounting changes what the road looks like).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from longtail.curate.descriptor import STAT_NAMES

IMAGE_TAGS = ("night", "fog", "rain", "glare")
PREDICTION_TAGS = ("crowded", "small_pedestrian", "low_confidence_pedestrian", "truck_view")
TRIGGER_TAG_PREFIX = "trigger:"

NIGHT_LUMA = 0.20
FOG_EDGE_DENSITY = 0.14
FOG_DARK_RATIO = 0.6
RAIN_STREAKS = 1.2
GLARE_BLOB = 0.004
CONFIDENT = 0.5
CROWDED_OBJECTS = 8
SMALL_PEDESTRIAN_PX = 20
LOW_CONFIDENCE = (0.2, 0.5)

_I = {name: i for i, name in enumerate(STAT_NAMES)}


def compute_image_tags(stats: np.ndarray) -> list[list[str]]:
    """Image tags of each frame.

    Args:
        stats: float32 (n, len(STAT_NAMES)) image statistics.

    Returns:
        One list of tags per frame, in the order of `IMAGE_TAGS`.
    """
    stats = np.atleast_2d(stats)
    luma = stats[:, _I["luma_mean"]]
    night = luma < NIGHT_LUMA
    fog = (stats[:, _I["edge_density"]] < FOG_EDGE_DENSITY) & \
        (stats[:, _I["dark_channel"]] >= FOG_DARK_RATIO * np.maximum(luma, 1e-3))
    rain = (stats[:, _I["rain_streaks"]] > RAIN_STREAKS) & ~fog
    glare = stats[:, _I["glare_blob"]] > GLARE_BLOB
    flags = np.stack([night, fog, rain, glare], axis=1)
    return [[IMAGE_TAGS[j] for j in np.flatnonzero(row)] for row in flags]


def trigger_tags(triggers: Iterable[str]) -> list[str]:
    """Tags of a frame's triggers (``trigger:hard_braking``...)."""
    return [TRIGGER_TAG_PREFIX + t for t in sorted(set(triggers))]


def compute_prediction_tags(labels: Sequence[str], scores: Sequence[float], heights_px: Sequence[float],
                            vehicle_type: str = "") -> list[str]:
    """Tags of one frame from a detector's output.

    Args:
        labels: class of each detection.
        scores: confidence of each detection, 0..1.
        heights_px: box height of each detection, px.
        vehicle_type: ``car`` or ``truck`` (the recording vehicle).
    """
    lab = np.asarray(labels, dtype=object)
    sc = np.asarray(scores, dtype=np.float64)
    hp = np.asarray(heights_px, dtype=np.float64)
    tags = []
    confident = sc >= CONFIDENT
    ped = lab == "pedestrian"
    if confident.sum() >= CROWDED_OBJECTS:
        tags.append("crowded")
    if (ped & confident & (hp < SMALL_PEDESTRIAN_PX)).any():
        tags.append("small_pedestrian")
    if (ped & (sc >= LOW_CONFIDENCE[0]) & (sc < LOW_CONFIDENCE[1])).any():
        tags.append("low_confidence_pedestrian")
    if vehicle_type == "truck":
        tags.append("truck_view")
    return tags
