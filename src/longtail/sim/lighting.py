"""Conditions of a drive turned into light: ambient colour, the ego's headlight beam, street
lamps, fog, rain and sensor noise.

All colours here are BGR (OpenCV's order); albedos elsewhere are RGB and are flipped once,
where they are shaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Lighting:
    """How a drive's time of day and weather light the scene.

    Attributes:
        ambient: BGR multiplier of albedo under ambient light (1 = full daylight).
        headlights: strength of the ego's low beams (0 by day).
        lamps_on: whether street lamps and vehicle lights are lit.
        lamp_color: BGR colour of street lamps' light (0..1).
        fog_beta: extinction coefficient, 1/m (haze by day, thick in fog).
        fog_color: BGR colour the scene fades to with distance.
        sky_top, sky_horizon: BGR sky gradient.
        emissive_gain: how bright lamps and vehicle lights appear (glare grows with it).
        noise_sigma: sensor noise standard deviation, grey levels.
        rain: rain intensity 0..1.
        wet: whether the road is wet (darker, reflective).
    """

    ambient: tuple[float, float, float]
    headlights: float
    lamps_on: bool
    lamp_color: tuple[float, float, float]
    fog_beta: float
    fog_color: tuple[float, float, float]
    sky_top: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]
    emissive_gain: float
    noise_sigma: float
    rain: float
    wet: bool


def _bgr(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    return (rgb[2], rgb[1], rgb[0])


def make_lighting(time_of_day: str, weather: str, intensity: float, urban_glow: bool, rng: np.random.Generator) -> Lighting:
    """Choose the lighting of a drive.

    Args:
        time_of_day: "day", "dusk" or "night".
        weather: "clear", "rain" or "fog".
        intensity: weather intensity 0..1 (ignored when clear).
        urban_glow: town drives have more ambient light at night.
        rng: source of the drive's small variations.
    """
    jitter = float(rng.uniform(0.9, 1.08))
    if time_of_day == "day":
        ambient = (jitter, jitter, jitter)
        sky_top, sky_hor = (70, 125, 205), (190, 215, 240)
        headlights, lamps, gain, noise = 0.0, False, 1.0, 2.5
    elif time_of_day == "dusk":
        ambient = (0.72 * jitter, 0.55 * jitter, 0.48 * jitter)
        sky_top, sky_hor = (45, 55, 115), (245, 150, 90)
        headlights, lamps, gain, noise = 0.35, True, 1.4, 4.0
    else:
        level = 0.11 if urban_glow else 0.06
        ambient = (level * 0.9 * jitter, level * jitter, level * 1.35 * jitter)
        sky_top, sky_hor = (4, 6, 14), (30, 28, 40) if urban_glow else (14, 16, 28)
        headlights, lamps, gain, noise = 1.0, True, 1.5, 6.5
    beta = 1 / 2500.0
    fog_rgb: tuple[float, float, float] = (205, 210, 218)
    rain = 0.0
    wet = False
    if weather == "fog":
        visibility = 40.0 + (1.0 - intensity) * 140.0
        beta = 3.0 / visibility
        fog_rgb = (200, 202, 205) if time_of_day == "day" else ((150, 140, 135) if time_of_day == "dusk" else (28, 28, 32))
        sky_top = sky_hor = fog_rgb
        ambient = tuple(a * 0.9 for a in ambient)  # type: ignore[assignment]
    elif weather == "rain":
        rain = intensity
        wet = True
        beta = 1.0 / (600.0 - 350.0 * intensity)
        fog_rgb = (165, 170, 175) if time_of_day == "day" else ((110, 100, 100) if time_of_day == "dusk" else (20, 20, 24))
        if time_of_day == "day":
            sky_top, sky_hor = (120, 125, 132), (175, 178, 182)
            ambient = tuple(a * 0.72 for a in ambient)  # type: ignore[assignment]
        noise += 1.0
    lamp_rgb = (1.0, 0.78, 0.5) if rng.random() < 0.5 else (0.95, 0.97, 1.0)
    return Lighting(
        ambient=_bgr(ambient),
        headlights=headlights,
        lamps_on=lamps,
        lamp_color=_bgr(lamp_rgb),
        fog_beta=beta,
        fog_color=_bgr(fog_rgb),
        sky_top=_bgr(sky_top),
        sky_horizon=_bgr(sky_hor),
        emissive_gain=gain,
        noise_sigma=noise,
        rain=rain,
        wet=wet,
    )


def headlight_beam(X: np.ndarray | float, Z: np.ndarray | float, vertical: bool) -> np.ndarray | float:
    """Relative illumination of the ego's low beams at (X, Z) metres ahead (0..~1).

    Vertical surfaces face the beam and catch more of it than the grazing road does.
    """
    Zp = np.maximum(Z, 0.1)
    theta = np.arctan2(X, Zp)
    cone = np.exp(-((theta / 0.3) ** 2))
    if vertical:
        return 0.9 * cone / (1.0 + (Zp / 26.0) ** 2)
    onset = (Zp / (Zp + 3.0)) ** 4
    return 1.1 * cone * onset / (1.0 + (Zp / 20.0) ** 2)


def fog_alpha(distance: np.ndarray | float, beta: float) -> np.ndarray | float:
    """Share of the fog colour seen through ``distance`` metres of air (0..1)."""
    return 1.0 - np.exp(-beta * np.asarray(distance))


LAMP_PEAK = 0.5
"""Light a street lamp adds right below it (in units of full daylight)."""
LAMP_SPREAD_M2 = 90.0
"""Lamp light falls off as exp(-d^2 / LAMP_SPREAD_M2) with horizontal distance d (m)."""
