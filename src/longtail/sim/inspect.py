"""Quick looks at a simulated fleet for notebooks: signals of a drive, frames with their boxes."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from longtail.catalog.truth import load_ground_truth
from longtail.errors import InputError
from longtail.logs import field, iter_messages
from longtail.schemas import PROFILE_TOPICS
from longtail.sim.drive import DriveSummary
from longtail.sim.preview import CLASS_COLORS

ALERT_CODES = {"none": 0, "ldw": 1, "fcw": 2, "aeb": 3}
SIGNALS = ("speed_mps", "accel_mps2", "steering_wheel_angle_deg", "yaw_rate_rps", "brake_pressure_bar")


def drive_signals(log: str | os.PathLike[str]) -> pd.DataFrame:
    """The vehicle-state signals of a drive log, indexed by seconds since its first sample.

    Booleans become 0/1 and the ADAS alert a code (none 0, ldw 1, fcw 2, aeb 3) so that every
    column can be plotted.
    """
    rows = []
    topics = {t.vehicle_state for t in PROFILE_TOPICS.values()}
    for msg in iter_messages(log, topics=topics):
        m = msg.message
        row: dict[str, float] = {"t_ns": msg.log_time_ns, **{k: field(m, k) for k in SIGNALS}}
        row["adas_engaged"] = float(field(m, "adas_engaged"))
        row["driver_override"] = float(field(m, "driver_override"))
        row["adas_alert"] = ALERT_CODES[field(m, "adas_alert")]
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df.index = (df.pop("t_ns") - rows[0]["t_ns"]) / 1e9
    df.index.name = "t_s"
    return df


def sample_frames(fleet: str | os.PathLike[str], drive: DriveSummary, count: int = 4) -> Image.Image:
    """A contact sheet of ``count`` evenly spaced frames of a drive with ground-truth boxes
    (critical scenario subjects in magenta)."""
    root = Path(fleet)
    frames, objects = load_ground_truth(root / drive.ground_truth)
    wanted = set(np.linspace(0, len(frames) - 1, count).round().astype(int).tolist())
    topics = {t.image for t in PROFILE_TOPICS.values()}
    tiles: list[np.ndarray] = []
    for index, msg in enumerate(iter_messages(root / drive.log, topics=topics)):
        if index not in wanted:
            continue
        image = cv2.imdecode(np.frombuffer(bytes(field(msg.message, "data")), np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{root / drive.log}: frame {index} is not a decodable JPEG")
        for o in objects[objects.frame_index == index].itertuples():
            color = (255, 0, 255) if o.critical else CLASS_COLORS.get(str(o.category), (255, 255, 255))
            cv2.rectangle(image, (int(o.x1), int(o.y1)), (int(o.x2) - 1, int(o.y2) - 1), color, 1)
        tiles.append(image)
    rows = [np.hstack(tiles[i:i + 2]) for i in range(0, len(tiles) - 1, 2)] or tiles[:1]
    return Image.fromarray(cv2.cvtColor(np.vstack(rows), cv2.COLOR_BGR2RGB))
