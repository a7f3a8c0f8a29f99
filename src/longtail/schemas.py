"""Data contracts between stages: every artefact's fields, units, frames and ranges.

The producer validates before it writes; the consumer validates when it loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from longtail.errors import SchemaError

# ---------------------------------------------------------------------------------------------
# Drive logs (MCAP)

@dataclass(frozen=True)
class Topics:
    """Topic names of one recording profile."""

    image: str
    calibration: str
    gps: str
    vehicle_state: str


PROFILE_TOPICS: dict[str, Topics] = {
    "foxglove": Topics(
        image="/camera/front/image",
        calibration="/camera/front/calibration",
        gps="/gps",
        vehicle_state="/vehicle/state",
    ),
    "ros2": Topics(
        image="/camera/front/image/compressed",
        calibration="/camera/front/camera_info",
        gps="/gps/fix",
        vehicle_state="/vehicle/state",
    ),
}
"""Default topics of Longtail's own logs, per profile; ingest accepts others by config."""

CAMERA_FRAME_ID = "camera_front"
GPS_FRAME_ID = "gps"
VEHICLE_FRAME_ID = "base_link"

TURN_SIGNALS = ("off", "left", "right", "hazard")
ADAS_ALERTS = ("none", "fcw", "aeb", "ldw")

VEHICLE_STATE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "longtail.VehicleState",
    "description": "Ego vehicle signals as reported on the vehicle bus, SI units, vehicle frame (x forward, y left).",
    "type": "object",
    "additionalProperties": False,
    "required": [
        "timestamp", "frame_id", "speed_mps", "accel_mps2", "lateral_accel_mps2", "steering_wheel_angle_deg",
        "yaw_rate_rps", "brake_pressure_bar", "throttle_pct", "turn_signal", "adas_engaged", "driver_override",
        "adas_alert",
    ],
    "properties": {
        "timestamp": {
            "type": "object",
            "description": "Time of the sample (UNIX epoch).",
            "required": ["sec", "nsec"],
            "properties": {
                "sec": {"type": "integer", "minimum": 0},
                "nsec": {"type": "integer", "minimum": 0, "maximum": 999999999},
            },
        },
        "frame_id": {"type": "string", "description": "Frame the signals refer to."},
        "speed_mps": {"type": "number", "minimum": 0, "maximum": 80, "description": "Longitudinal speed, m/s."},
        "accel_mps2": {"type": "number", "minimum": -15, "maximum": 10,
                       "description": "Longitudinal acceleration, m/s^2 (braking negative)."},
        "lateral_accel_mps2": {"type": "number", "minimum": -15, "maximum": 15,
                               "description": "Lateral acceleration, m/s^2 (right turn positive)."},
        "steering_wheel_angle_deg": {"type": "number", "minimum": -720, "maximum": 720,
                                     "description": "Steering wheel angle, degrees (right positive)."},
        "yaw_rate_rps": {"type": "number", "minimum": -3, "maximum": 3, "description": "Yaw rate, rad/s (right positive)."},
        "brake_pressure_bar": {"type": "number", "minimum": 0, "maximum": 200, "description": "Brake pressure, bar."},
        "throttle_pct": {"type": "number", "minimum": 0, "maximum": 100, "description": "Accelerator pedal, percent."},
        "turn_signal": {"type": "string", "enum": list(TURN_SIGNALS), "description": "Turn indicator state."},
        "adas_engaged": {"type": "boolean", "description": "Driver assistance (ACC + lane keeping) engaged."},
        "driver_override": {"type": "boolean",
                            "description": "The driver is overriding the assistance (a disengagement), held 1.5 s."},
        "adas_alert": {"type": "string", "enum": list(ADAS_ALERTS),
                       "description": "Active alert: forward collision warning, emergency braking, lane departure."},
    },
}

# ---------------------------------------------------------------------------------------------
# Simulator ground truth (per drive, Parquet). Read only by the simulated labeler and evaluation.

GT_OBJECT_TYPE = pa.struct([
    ("track_id", pa.int32()),          # stable id of the actor within the drive
    ("category", pa.string()),         # car | truck | pedestrian | cyclist
    ("x1", pa.int32()), ("y1", pa.int32()), ("x2", pa.int32()), ("y2", pa.int32()),
    # ^ full extent of the rendered actor before occlusion, pixel edges: x1,y1 inclusive, x2,y2 exclusive
    ("vx1", pa.int32()), ("vy1", pa.int32()), ("vx2", pa.int32()), ("vy2", pa.int32()),
    # ^ extent of its visible pixels, same convention
    ("visible_fraction", pa.float32()),  # visible pixels / rendered pixels, 0..1
    ("truncation", pa.float32()),        # share of the projected extent outside the image, 0..1
    ("distance_m", pa.float32()),        # camera to the actor's centre, m
    ("pixel_height", pa.int32()),        # y2 - y1, px
    ("luminance", pa.float32()),         # mean luma of visible pixels, 0..1
    ("pose", pa.string()),
    # ^ vehicles: ahead | oncoming | parked | stopped | changing_lane; people: walking | standing | crossing | riding
    ("scenario", pa.string()),           # critical scenario this actor is the subject of, or ""
    ("critical", pa.bool_()),            # actor is a subject of an active critical scenario
])
GT_SCHEMA = pa.schema([
    ("drive_id", pa.string()),
    ("frame_index", pa.int32()),          # 0-based index of the camera frame in the drive
    ("timestamp_ns", pa.int64()),         # log time of the image message, ns since UNIX epoch
    ("time_of_day", pa.string()),         # day | dusk | night
    ("weather", pa.string()),             # clear | rain | fog
    ("road_type", pa.string()),           # highway | urban
    ("scenario", pa.string()),            # active critical scenario, or ""
    ("objects", pa.list_(GT_OBJECT_TYPE)),
])
CATEGORIES = ("car", "truck", "pedestrian", "cyclist")

MIN_OBJECT_HEIGHT = 0.05
"""Objects less tall than this share of the frame height are not scored: evaluation ignores them
(`longtail.evaluate.metrics`, point 3), neither found nor missed.

KITTI's benchmark scores no object under 25 px tall, on a camera with a focal length of 721 px.
The fleet's car cameras (60 degree horizontal field of view, width:height 5:3) see that same
angle as 25 * 0.866 * width / 721 px = 5% of the frame height (9.6 px at 320x192): objects
farther than a KITTI benchmark would score are ignored, all nearer ones count."""


def validate_ground_truth(table: pa.Table, source: str, width: int, height: int) -> None:
    """Check a ground-truth table against `GT_SCHEMA` and the image bounds.

    Raises:
        SchemaError: naming ``source`` and the first bad field.
    """
    if not table.schema.equals(GT_SCHEMA, check_metadata=False):
        raise SchemaError(f"{source}: ground-truth schema differs from longtail.schemas.GT_SCHEMA: {table.schema}")
    objects = table.column("objects").combine_chunks().flatten()
    if len(objects) == 0:
        return
    cols = {name: objects.field(name).to_numpy(zero_copy_only=False) for name in ("x1", "y1", "x2", "y2", "category")}
    bad = (cols["x1"] < 0) | (cols["y1"] < 0) | (cols["x2"] > width) | (cols["y2"] > height)
    bad |= (cols["x2"] <= cols["x1"]) | (cols["y2"] <= cols["y1"])
    if bad.any():
        i = int(bad.nonzero()[0][0])
        raise SchemaError(
            f"{source}: object {i} has box ({cols['x1'][i]}, {cols['y1'][i]}, {cols['x2'][i]}, {cols['y2'][i]}) "
            f"outside the {width}x{height} image or empty; boxes are pixel edges with x1<x2<={width}, y1<y2<={height}"
        )
    unknown = set(cols["category"].tolist()) - set(CATEGORIES)
    if unknown:
        raise SchemaError(f"{source}: unknown categories {sorted(unknown)}; valid are {list(CATEGORIES)}")

# ---------------------------------------------------------------------------------------------
# Frame index (ingest): one Parquet file per drive log (or imported dataset), one row per kept frame.

LABEL_TYPE = pa.struct([
    ("category", pa.string()),        # Longtail category (car | truck | pedestrian | cyclist), "" when unmapped
    ("source_class", pa.string()),    # the class as the source dataset names it
    ("x1", pa.float32()), ("y1", pa.float32()), ("x2", pa.float32()), ("y2", pa.float32()),
    # ^ internal box convention (longtail.boxes): continuous pixel edges, x2/y2 exclusive
    ("ignore", pa.bool_()),           # an ignore region (KITTI DontCare): neither a miss nor a false positive
    ("occluded", pa.int8()),          # source occlusion level (KITTI 0..3), -1 when unknown
    ("truncated", pa.float32()),      # source truncation 0..1, -1 when unknown
])
FRAME_INDEX_SCHEMA = pa.schema([
    ("frame_id", pa.string()),        # sha256(log_id, camera, timestamp_ns), 32 hex chars
    ("log_id", pa.string()),          # sha256 of the drive log file (or of an imported dataset's files)
    ("source", pa.string()),          # what recorded it: longtail-sim | fleet | kitti | nuscenes
    ("vehicle_id", pa.string()),
    ("vehicle_type", pa.string()),    # car | truck | "" when unknown
    ("drive_id", pa.string()),
    ("camera", pa.string()),          # camera topic or name
    ("timestamp_ns", pa.int64()),     # capture time, ns since the UNIX epoch
    ("width", pa.int32()), ("height", pa.int32()),   # image size, px
    ("image_format", pa.string()),    # jpeg | png
    ("image_sha256", pa.string()),    # content address of the image bytes
    ("store_path", pa.string()),      # path of the image relative to the data root
    ("image_bytes", pa.int64()),
    ("keyframe", pa.bool_()),         # picked at the keyframe rate (else kept for a trigger window)
    ("speed_mps", pa.float32()),      # signal features aligned to the frame (NaN without signals)
    ("accel_mps2", pa.float32()),
    ("decel_mps2", pa.float32()),     # smoothed deceleration, positive when braking
    ("jerk_mps3", pa.float32()),
    ("lateral_accel_mps2", pa.float32()),
    ("yaw_rate_rps", pa.float32()),
    ("steering_angle_deg", pa.float32()),
    ("steering_rate_dps", pa.float32()),
    ("brake_pressure_bar", pa.float32()),
    ("throttle_pct", pa.float32()),
    ("adas_engaged", pa.bool_()),
    ("driver_override", pa.bool_()),
    ("adas_alert", pa.string()),
    ("turn_signal", pa.string()),
    ("latitude", pa.float64()), ("longitude", pa.float64()),  # degrees, NaN without GPS
    ("triggers", pa.list_(pa.string())),  # triggers whose window covers this frame
    ("labels", pa.list_(LABEL_TYPE)),     # boxes that came with the frame (imported datasets), else empty
])

SIGNAL_INDEX_SCHEMA = pa.schema([
    ("log_id", pa.string()),
    ("timestamp_ns", pa.int64()),     # sample time, ns since the UNIX epoch (at most 10 per second)
    ("speed_mps", pa.float32()),      # vehicle signals in Longtail's units (NaN when the log lacks one)
    ("accel_mps2", pa.float32()),     # measured, or derived from speed (manifest: signals)
    ("decel_mps2", pa.float32()),     # causal, time-smoothed deceleration, positive when braking
    ("lateral_accel_mps2", pa.float32()),
    ("yaw_rate_rps", pa.float32()),
    ("steering_angle_deg", pa.float32()),
    ("brake_pressure_bar", pa.float32()),
    ("throttle_pct", pa.float32()),
    ("adas_engaged", pa.bool_()),
    ("driver_override", pa.bool_()),
    ("adas_alert", pa.string()),
    ("turn_signal", pa.string()),
    ("latitude", pa.float64()), ("longitude", pa.float64()),  # degrees, NaN without GNSS
    ("triggers", pa.list_(pa.string())),  # triggers whose window covers this sample
])
"""Signal index (ingest): one Parquet file per drive log with vehicle signals, camera or not
(DATA/index/signals/<log_id>.parquet), for fleet statistics and monitoring."""

LOG_STATUSES = ("ingested", "partial", "quarantined")
"""Manifest statuses, one meaning each: ``ingested``: every message was read (``notes`` may say
what the log lacks: a camera, vehicle signals); ``partial``: damage, something was lost
(``reasons`` say what); ``quarantined``: nothing usable (no frame and no signal)."""


def validate_frame_index(table: pa.Table, source: str) -> None:
    """Check a frame index table against `FRAME_INDEX_SCHEMA` and its invariants.

    Raises:
        SchemaError: naming ``source`` and the first bad field.
    """
    if not table.schema.equals(FRAME_INDEX_SCHEMA, check_metadata=False):
        raise SchemaError(f"{source}: frame index schema differs from longtail.schemas.FRAME_INDEX_SCHEMA: "
                          f"{table.schema.names}")
    ids = table.column("frame_id").to_pylist()
    if len(set(ids)) != len(ids):
        raise SchemaError(f"{source}: duplicate frame_id values; each frame must appear once")
    for name in ("width", "height", "image_bytes"):
        values = table.column(name).to_pylist()
        if any(v is None or v <= 0 for v in values):
            raise SchemaError(f"{source}: field {name} must be > 0 for every frame")


# ---------------------------------------------------------------------------------------------
# Labeling batch (DATA/batches/<batch_id>/): frames.parquet, then manifest.json written last.

LABELING_BATCH_FRAMES_SCHEMA = pa.schema([
    ("frame_id", pa.string()),
    ("image_sha256", pa.string()),
    ("store_path", pa.string()),        # image path relative to the data root
    ("log_id", pa.string()),            # drive log it came from (lineage)
    ("drive_id", pa.string()),
    ("timestamp_ns", pa.int64()),
    ("rank", pa.int32()),               # order of choice, 0 first
    ("score", pa.float32()),            # the selector's total score at choice time (NaN for baselines)
    ("priority", pa.float32()),         # trigger priority 0..1
    ("uncertainty", pa.float32()),      # model uncertainty 0..1 (0 before any model)
    ("fm_similarity", pa.float32()),    # similarity to an open failure mode 0..1
    ("fm_name", pa.string()),           # the failure mode it resembles most, or ""
    ("diversity", pa.float32()),        # k-center distance to the covered set, normalised 0..1
    ("quota", pa.string()),             # scenario tag whose quota this frame filled, or ""
    ("tags", pa.list_(pa.string())),    # scenario tags at selection time
    ("triggers", pa.list_(pa.string())),
    ("reason", pa.string()),            # why it was chosen, in words
])
LABELING_BATCH_KEYS = ("batch_id", "digest", "created_at", "budget", "selector", "config", "config_digest",
                       "dataset", "pool", "failure_modes", "frames", "frames_file", "lineage")


def validate_labeling_batch(manifest: dict[str, Any], table: pa.Table, source: str) -> None:
    """Check a labeling batch manifest and its frames table against each other.

    Raises:
        SchemaError: naming ``source`` and the first bad field.
    """
    missing = [k for k in LABELING_BATCH_KEYS if k not in manifest]
    if missing:
        raise SchemaError(f"{source}: labeling batch manifest lacks field(s) {missing}")
    if not table.schema.equals(LABELING_BATCH_FRAMES_SCHEMA, check_metadata=False):
        raise SchemaError(f"{source}: frames table schema differs from LABELING_BATCH_FRAMES_SCHEMA: {table.schema.names}")
    ids = table.column("frame_id").to_pylist()
    if ids != list(manifest["frames"]):
        raise SchemaError(f"{source}: field frames of the manifest does not match frames.parquet")
    if len(set(ids)) != len(ids):
        raise SchemaError(f"{source}: a frame appears twice in the batch")
    if len(ids) != manifest["budget"]:
        raise SchemaError(f"{source}: {len(ids)} frames for a budget of {manifest['budget']}")


# ---------------------------------------------------------------------------------------------
# Labels (label stage): one label set per labeling batch, DATA/labels/<batch_id>/.
#   labels.parquet  one row per frame of the batch (LABEL_SET_SCHEMA)
#   qa.json         the QA report (counts per check, held frames with reasons)
#   manifest.json   written last: batch_id, digest (sha256 of labels.parquet), source, cost, qa summary,
#                   lineage (logs, batch digest, pre-label model)

BOX_TYPE = pa.struct([
    ("category", pa.string()),          # car | truck | pedestrian | cyclist
    ("x1", pa.float32()), ("y1", pa.float32()), ("x2", pa.float32()), ("y2", pa.float32()),
    # ^ internal box convention (longtail.boxes): continuous pixel edges, x2/y2 exclusive
    ("score", pa.float32()),            # detector confidence for pre-labels; 1.0 for human labels
])
LABEL_SET_SCHEMA = pa.schema([
    ("frame_id", pa.string()),
    ("image_sha256", pa.string()),
    ("store_path", pa.string()),        # image path relative to the data root
    ("log_id", pa.string()),
    ("drive_id", pa.string()),
    ("timestamp_ns", pa.int64()),
    ("width", pa.int32()), ("height", pa.int32()),
    ("boxes", pa.list_(BOX_TYPE)),      # the labels as submitted (human or simulated labeler)
    ("prelabels", pa.list_(BOX_TYPE)),  # what the labeler started from (empty without a model)
    ("accepted", pa.bool_()),           # passed QA: may enter a dataset version
    ("qa_reasons", pa.list_(pa.string())),  # why QA held the frame back (empty when accepted)
    ("annotator", pa.string()),         # who labeled: a Label Studio user, or "oracle"
])
LABEL_SET_KEYS = ("batch_id", "digest", "created_at", "source", "frames", "accepted", "held", "cost", "qa",
                  "lineage")

# ---------------------------------------------------------------------------------------------
# Monitoring (monitor stage): DATA/monitor/triggers/<batch_id>.parquet, then the batch's record
# DATA/monitor/batches/<batch_id>.json written last. Curation reads the triggers
# (`longtail.catalog.monitoring.load_monitor_triggers`) and adds them to the frames' own.

MONITOR_TRIGGERS = ("shadow_disagreement", "distribution_shift", "prediction_shift")
"""Triggers the monitor fires on frames: a challenger in shadow disagrees with the champion on a
critical object; a frame among those most unlike the training drives when drift breached; a frame
behind a breach of the prediction histograms."""

MONITOR_TRIGGERS_SCHEMA = pa.schema([
    ("frame_id", pa.string()),
    ("log_id", pa.string()),
    ("trigger", pa.string()),           # one of MONITOR_TRIGGERS
    ("detail", pa.string()),            # why, in words (e.g. "pedestrian seen by the champion only")
    ("score", pa.float32()),            # strength: disagreeing objects, domain-classifier score, ... (>= 0)
    ("batch_id", pa.string()),          # the monitoring batch that fired it
])

MONITOR_RECORD_KEYS = ("batch_id", "format", "created_at", "logs", "frames", "km", "champion", "challenger",
                       "reference", "config", "drift", "predictions", "mix", "rates", "shadow", "breaches",
                       "triggers_file")
"""Fields of DATA/monitor/batches/<batch_id>.json."""


def validate_monitor_triggers(table: pa.Table, source: str) -> None:
    """Check a monitor-triggers table against `MONITOR_TRIGGERS_SCHEMA`.

    Raises:
        SchemaError: naming ``source`` and the first bad field.
    """
    if not table.schema.equals(MONITOR_TRIGGERS_SCHEMA, check_metadata=False):
        raise SchemaError(f"{source}: schema differs from longtail.schemas.MONITOR_TRIGGERS_SCHEMA: {table.schema.names}")
    unknown = set(table.column("trigger").to_pylist()) - set(MONITOR_TRIGGERS)
    if unknown:
        raise SchemaError(f"{source}: field trigger holds {sorted(unknown)}; valid are {list(MONITOR_TRIGGERS)}")
