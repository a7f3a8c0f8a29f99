"""Pinhole cameras (front, and a wide front one) for cars and trucks, and projection of road-frame points.

Coordinates: the vehicle frame has X to the right, Y up and Z forward, in metres, origin on
the ground below the camera. Image coordinates are pixels with u to the right and v down,
(0, 0) at the top-left corner of the top-left pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from longtail.errors import ConfigError

# Truck cabs put the camera about a metre higher and look further down the road with a
# narrower lens; the higher viewpoint sees over the cars ahead.
CAMERA_PRESETS: dict[str, dict[str, float]] = {
    "car": {"height_m": 1.45, "hfov_deg": 60.0, "pitch_deg": 2.0, "headlight_height_m": 0.7},
    "truck": {"height_m": 2.6, "hfov_deg": 52.0, "pitch_deg": 4.5, "headlight_height_m": 1.0},
}

CAMERA_MOUNTS: dict[str, dict[str, float]] = {
    "front": {},
    "wide": {"hfov_deg": 100.0},
}
"""Cameras a vehicle can carry, as changes to its front camera preset. ``wide`` is a wide-angle
front camera beside the main one (same height and pitch, a 100 degree lens), as recorded for
close-range cut-ins and crossing pedestrians; every mount looks forward (the renderer draws
what lies ahead of the vehicle)."""

NEAR_Z = 0.8
"""Closest depth, metres, at which geometry is drawn; nearer polygons are clipped."""


@dataclass(frozen=True)
class CameraModel:
    """A distortion-free pinhole camera mounted on the vehicle, pitched down.

    Attributes:
        width, height: image size, px.
        fx, fy: focal lengths, px.
        cx, cy: principal point, px.
        height_m: camera height above the road, m.
        pitch_rad: static downward pitch, rad.
        hfov_deg: horizontal field of view, degrees.
        headlight_height_m: height of the vehicle's own headlights, m.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    height_m: float
    pitch_rad: float
    hfov_deg: float
    headlight_height_m: float

    @property
    def intrinsics(self) -> list[float]:
        """Row-major 3x3 intrinsic matrix K."""
        return [self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0]

    @property
    def projection(self) -> list[float]:
        """Row-major 3x4 projection matrix P = [K | 0]."""
        return [self.fx, 0.0, self.cx, 0.0, 0.0, self.fy, self.cy, 0.0, 0.0, 0.0, 1.0, 0.0]

    def horizon_v(self, extra_pitch: float = 0.0) -> float:
        """Image row of the horizon, px, for the static pitch plus ``extra_pitch`` (rad)."""
        return self.cy - self.fy * math.tan(self.pitch_rad + extra_pitch)

    def to_camera(
        self, x: np.ndarray, y: np.ndarray, z: np.ndarray, yaw: float = 0.0, extra_pitch: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rotate vehicle-frame points into the camera frame (x right, y down, z along the axis).

        Args:
            x, y, z: vehicle-frame coordinates relative to the point below the camera, m.
            yaw: heading of the vehicle relative to the frame of the points, rad (right +).
            extra_pitch: pitch on top of the static one (nose-down +), rad.

        Returns:
            Camera-frame coordinates (xc, yc, zc), m.
        """
        cy_, sy_ = math.cos(yaw), math.sin(yaw)
        xr = x * cy_ - z * sy_
        zr = x * sy_ + z * cy_
        d = y - self.height_m
        pitch = self.pitch_rad + extra_pitch
        cp, sp = math.cos(pitch), math.sin(pitch)
        zc = zr * cp - d * sp
        yc = -d * cp - zr * sp
        return xr, yc, zc

    def project_camera(self, xc: np.ndarray, yc: np.ndarray, zc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project camera-frame points (zc > 0) to pixels (u, v)."""
        inv = 1.0 / zc
        return self.cx + self.fx * xc * inv, self.cy + self.fy * yc * inv

    def ground_depth(self, v: np.ndarray) -> np.ndarray:
        """Forward distance, m, of the road point seen at image row ``v`` (inf above the horizon)."""
        angle = self.pitch_rad + np.arctan((v - self.cy) / self.fy)
        with np.errstate(divide="ignore"):
            depth = np.where(angle > 1e-4, self.height_m / np.tan(np.maximum(angle, 1e-4)), np.inf)
        return depth


def make_camera(vehicle_type: str, width: int, height: int, mount: str = "front") -> CameraModel:
    """Build a camera of a ``car`` or ``truck`` for an image of ``width`` x ``height`` px.

    Args:
        vehicle_type: ``car`` or ``truck`` (`CAMERA_PRESETS`).
        width, height: image size, px.
        mount: which camera (`CAMERA_MOUNTS`); default the front camera.

    Raises:
        ConfigError: for an unknown vehicle type or mount.
    """
    if vehicle_type not in CAMERA_PRESETS:
        raise ConfigError(f"unknown vehicle type {vehicle_type!r}; valid types are {sorted(CAMERA_PRESETS)}")
    if mount not in CAMERA_MOUNTS:
        raise ConfigError(f"unknown camera {mount!r}; valid cameras are {list(CAMERA_MOUNTS)}")
    preset = {**CAMERA_PRESETS[vehicle_type], **CAMERA_MOUNTS[mount]}
    fx = (width / 2) / math.tan(math.radians(preset["hfov_deg"]) / 2)
    return CameraModel(
        width=width,
        height=height,
        fx=fx,
        fy=fx,
        cx=width / 2,
        cy=height / 2,
        height_m=preset["height_m"],
        pitch_rad=math.radians(preset["pitch_deg"]),
        hfov_deg=preset["hfov_deg"],
        headlight_height_m=preset["headlight_height_m"],
    )
