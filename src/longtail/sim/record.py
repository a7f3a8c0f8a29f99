"""Write a drive as an MCAP log in either recording profile.

- ``foxglove``: foxglove.CompressedImage, foxglove.CameraCalibration and foxglove.LocationFix
  as protobuf, vehicle state as JSON with a jsonschema.
- ``ros2``: sensor_msgs/msg/CompressedImage, CameraInfo and NavSatFix, and
  longtail_msgs/msg/VehicleState, all CDR-encoded.

In perception mode (`longtail.sim.perception`) the detections the ADAS acted on go on
`DETECTIONS_TOPIC` (and a shadow challenger's on `SHADOW_DETECTIONS_TOPIC`), stamped with their
camera frame's time so Foxglove draws them over the image: foxglove.ImageAnnotations in the
foxglove profile, foxglove_msgs/msg/ImageAnnotations (the same schema, as Foxglove's ROS 2 package
defines it) in the ros2 profile. Each box is a closed polyline with a "category score" label.

Both are zstd-chunked with a summary, message indexes and chunk CRCs, which is what Foxglove
and `mcap`'s indexed reader expect. Nothing in the file depends on the wall clock, so a seed
gives byte-identical logs.
"""

from __future__ import annotations

import json
from typing import IO, Any

from foxglove_schemas_protobuf.CameraCalibration_pb2 import CameraCalibration
from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
from foxglove_schemas_protobuf.ImageAnnotations_pb2 import ImageAnnotations
from foxglove_schemas_protobuf.LocationFix_pb2 import LocationFix
from foxglove_schemas_protobuf.PointsAnnotation_pb2 import PointsAnnotation
from mcap.writer import CompressionType, IndexType, Writer
from mcap_protobuf.schema import build_file_descriptor_set
from mcap_ros2._dynamic import serialize_dynamic

from longtail import __version__
from longtail.schemas import (
    CAMERA_FRAME_ID,
    GPS_FRAME_ID,
    PROFILE_TOPICS,
    VEHICLE_FRAME_ID,
    VEHICLE_STATE_SCHEMA,
)
from longtail.sim.camera import CameraModel

LIBRARY = f"longtail-sim/{__version__}"

_HEADER = """std_msgs/Header header"""
_DEPS_HEADER = """
================================================================================
MSG: std_msgs/Header
builtin_interfaces/Time stamp
string frame_id
================================================================================
MSG: builtin_interfaces/Time
int32 sec
uint32 nanosec"""

ROS2_MSGDEFS: dict[str, str] = {
    "sensor_msgs/msg/CompressedImage": _HEADER + """
string format
uint8[] data""" + _DEPS_HEADER,
    "sensor_msgs/msg/CameraInfo": _HEADER + """
uint32 height
uint32 width
string distortion_model
float64[] d
float64[9] k
float64[9] r
float64[12] p
uint32 binning_x
uint32 binning_y
sensor_msgs/RegionOfInterest roi""" + _DEPS_HEADER + """
================================================================================
MSG: sensor_msgs/RegionOfInterest
uint32 x_offset
uint32 y_offset
uint32 height
uint32 width
bool do_rectify""",
    "sensor_msgs/msg/NavSatFix": _HEADER + """
sensor_msgs/NavSatStatus status
float64 latitude
float64 longitude
float64 altitude
float64[9] position_covariance
uint8 COVARIANCE_TYPE_UNKNOWN=0
uint8 COVARIANCE_TYPE_APPROXIMATED=1
uint8 COVARIANCE_TYPE_DIAGONAL_KNOWN=2
uint8 COVARIANCE_TYPE_KNOWN=3
uint8 position_covariance_type""" + _DEPS_HEADER + """
================================================================================
MSG: sensor_msgs/NavSatStatus
int8 STATUS_NO_FIX=-1
int8 STATUS_FIX=0
int8 STATUS_SBAS_FIX=1
int8 STATUS_GBAS_FIX=2
int8 status
uint16 SERVICE_GPS=1
uint16 SERVICE_GLONASS=2
uint16 SERVICE_COMPASS=4
uint16 SERVICE_GALILEO=8
uint16 service""",
    "longtail_msgs/msg/VehicleState": _HEADER + """
float64 speed_mps
float64 accel_mps2
float64 lateral_accel_mps2
float64 steering_wheel_angle_deg
float64 yaw_rate_rps
float64 brake_pressure_bar
float64 throttle_pct
string turn_signal
bool adas_engaged
bool driver_override
string adas_alert""" + _DEPS_HEADER,
}
"""Message definitions in the concatenated form ROS 2 bags store (dependencies after ===)."""

DETECTIONS_TOPIC = "/camera/front/detections"
"""Detections of the acting perception, one message per perceived camera frame."""
SHADOW_DETECTIONS_TOPIC = "/camera/front/detections/shadow"
"""Detections of a challenger running in shadow mode beside the acting perception."""
ANNOTATIONS_ROS2 = "foxglove_msgs/msg/ImageAnnotations"
_SEP = "\n" + "=" * 80 + "\n"
ANNOTATIONS_MSGDEF = _SEP.join([
    "foxglove_msgs/CircleAnnotation[] circles\nfoxglove_msgs/PointsAnnotation[] points\n"
    "foxglove_msgs/TextAnnotation[] texts",
    "MSG: foxglove_msgs/CircleAnnotation\nbuiltin_interfaces/Time timestamp\nfoxglove_msgs/Point2 position\n"
    "float64 diameter\nfloat64 thickness\nfoxglove_msgs/Color fill_color\nfoxglove_msgs/Color outline_color",
    "MSG: foxglove_msgs/PointsAnnotation\nbuiltin_interfaces/Time timestamp\nuint8 UNKNOWN=0\nuint8 POINTS=1\n"
    "uint8 LINE_LOOP=2\nuint8 LINE_STRIP=3\nuint8 LINE_LIST=4\nuint8 type\nfoxglove_msgs/Point2[] points\n"
    "foxglove_msgs/Color outline_color\nfoxglove_msgs/Color[] outline_colors\nfoxglove_msgs/Color fill_color\n"
    "float64 thickness",
    "MSG: foxglove_msgs/TextAnnotation\nbuiltin_interfaces/Time timestamp\nfoxglove_msgs/Point2 position\n"
    "string text\nfloat64 font_size\nfoxglove_msgs/Color text_color\nfoxglove_msgs/Color background_color",
    "MSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec",
    "MSG: foxglove_msgs/Point2\nfloat64 x\nfloat64 y",
    "MSG: foxglove_msgs/Color\nfloat64 r\nfloat64 g\nfloat64 b\nfloat64 a",
])
"""foxglove_msgs/msg/ImageAnnotations with its dependencies, as Foxglove's ROS 2 package defines it."""
CATEGORY_RGBA: dict[str, tuple[float, float, float, float]] = {
    "car": (0.2, 0.6, 1.0, 1.0), "truck": (0.6, 0.3, 1.0, 1.0),
    "pedestrian": (1.0, 0.3, 0.2, 1.0), "cyclist": (1.0, 0.8, 0.1, 1.0),
}
"""Outline colour of each category's boxes (r, g, b, a in 0..1); other categories are white."""


def _stamp(ns: int) -> tuple[int, int]:
    return ns // 1_000_000_000, ns % 1_000_000_000


def _box_corners(b: dict[str, Any]) -> list[tuple[float, float]]:
    x1, y1, x2, y2 = (float(b[k]) for k in ("x1", "y1", "x2", "y2"))
    return [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]


def _label(b: dict[str, Any]) -> str:
    return f"{b['category']} {float(b['score']):.2f}"


def _annotations_protobuf(ns: int, boxes: list[dict[str, Any]], shadow: bool) -> bytes:
    """foxglove.ImageAnnotations of ``boxes``: a closed outline and a label per box."""
    msg = ImageAnnotations()
    for b in boxes:
        rgba = CATEGORY_RGBA.get(str(b["category"]), (1.0, 1.0, 1.0, 1.0))
        outline = msg.points.add(type=PointsAnnotation.Type.LINE_LOOP, thickness=1.5 if shadow else 2.0)
        outline.timestamp.FromNanoseconds(ns)
        for x, y in _box_corners(b):
            outline.points.add(x=x, y=y)
        outline.outline_color.r, outline.outline_color.g, outline.outline_color.b, outline.outline_color.a = rgba
        text = msg.texts.add(text=_label(b), font_size=10.0)
        text.timestamp.FromNanoseconds(ns)
        text.position.x, text.position.y = float(b["x1"]), float(b["y1"])
        text.text_color.r, text.text_color.g, text.text_color.b, text.text_color.a = rgba
        text.background_color.a = 0.6
    return msg.SerializeToString()


def _annotations_ros2(ns: int, boxes: list[dict[str, Any]], shadow: bool) -> dict[str, Any]:
    """foxglove_msgs/msg/ImageAnnotations of ``boxes`` as a dict for the CDR encoder."""
    sec, nsec = _stamp(ns)
    stamp = {"sec": sec, "nanosec": nsec}
    clear = {"r": 0.0, "g": 0.0, "b": 0.0, "a": 0.0}
    points, texts = [], []
    for b in boxes:
        r, g, bl, a = CATEGORY_RGBA.get(str(b["category"]), (1.0, 1.0, 1.0, 1.0))
        color = {"r": r, "g": g, "b": bl, "a": a}
        points.append({"timestamp": stamp, "type": 2, "points": [{"x": x, "y": y} for x, y in _box_corners(b)],
                       "outline_color": color, "outline_colors": [], "fill_color": clear,
                       "thickness": 1.5 if shadow else 2.0})
        texts.append({"timestamp": stamp, "position": {"x": float(b["x1"]), "y": float(b["y1"])}, "text": _label(b),
                      "font_size": 10.0, "text_color": color, "background_color": {**clear, "a": 0.6}})
    return {"circles": [], "points": points, "texts": texts}


class DriveRecorder:
    """Writes one drive's messages to an open binary stream.

    Args:
        stream: where the MCAP bytes go.
        profile: "foxglove" or "ros2".
        camera: the camera, for calibration messages.
        metadata: name -> {key: value} records (vehicle, drive, simulator).
    """

    def __init__(self, stream: IO[bytes], profile: str, camera: CameraModel, metadata: dict[str, dict[str, str]]) -> None:
        self.profile = profile
        self.topics = PROFILE_TOPICS[profile]
        self.camera = camera
        self._writer = Writer(
            stream,
            chunk_size=1 << 20,
            compression=CompressionType.ZSTD,
            index_types=IndexType.ALL,
            use_chunking=True,
            use_statistics=True,
            use_summary_offsets=True,
            enable_crcs=True,
            enable_data_crcs=True,
        )
        self._writer.start(profile="ros2" if profile == "ros2" else "", library=LIBRARY)
        self._seq: dict[int, int] = {}
        self._ch_detections: dict[bool, int] = {}
        if profile == "foxglove":
            self._register_foxglove()
        else:
            self._register_ros2()
        for name, record in metadata.items():
            self._writer.add_metadata(name, record)

    def _register_foxglove(self) -> None:
        w = self._writer

        def proto(cls: Any) -> int:
            return w.register_schema(cls.DESCRIPTOR.full_name, "protobuf",
                                     build_file_descriptor_set(cls).SerializeToString())

        self._ch_image = w.register_channel(self.topics.image, "protobuf", proto(CompressedImage))
        self._ch_calib = w.register_channel(self.topics.calibration, "protobuf", proto(CameraCalibration))
        self._ch_gps = w.register_channel(self.topics.gps, "protobuf", proto(LocationFix))
        state_schema = w.register_schema(
            VEHICLE_STATE_SCHEMA["title"], "jsonschema", json.dumps(VEHICLE_STATE_SCHEMA, sort_keys=True).encode()
        )
        self._ch_state = w.register_channel(self.topics.vehicle_state, "json", state_schema)

    def _register_ros2(self) -> None:
        w = self._writer
        self._enc = {}
        ids = {}
        for name, text in ROS2_MSGDEFS.items():
            ids[name] = w.register_schema(name, "ros2msg", text.encode())
            self._enc[name] = serialize_dynamic(name, text)[name]
        self._ch_image = w.register_channel(self.topics.image, "cdr", ids["sensor_msgs/msg/CompressedImage"])
        self._ch_calib = w.register_channel(self.topics.calibration, "cdr", ids["sensor_msgs/msg/CameraInfo"])
        self._ch_gps = w.register_channel(self.topics.gps, "cdr", ids["sensor_msgs/msg/NavSatFix"])
        self._ch_state = w.register_channel(self.topics.vehicle_state, "cdr", ids["longtail_msgs/msg/VehicleState"])

    def _add(self, channel: int, ns: int, data: bytes) -> None:
        seq = self._seq.get(channel, 0)
        self._seq[channel] = seq + 1
        self._writer.add_message(channel_id=channel, log_time=ns, publish_time=ns, data=data, sequence=seq)

    @staticmethod
    def _header(ns: int, frame_id: str) -> dict[str, Any]:
        sec, nsec = _stamp(ns)
        return {"stamp": {"sec": sec, "nanosec": nsec}, "frame_id": frame_id}

    def image(self, ns: int, jpeg: bytes) -> None:
        """Record a JPEG camera frame taken at ``ns`` (UNIX ns)."""
        if self.profile == "foxglove":
            msg = CompressedImage(frame_id=CAMERA_FRAME_ID, data=jpeg, format="jpeg")
            msg.timestamp.FromNanoseconds(ns)
            data = msg.SerializeToString()
        else:
            data = self._enc["sensor_msgs/msg/CompressedImage"](
                {"header": self._header(ns, CAMERA_FRAME_ID), "format": "jpeg", "data": jpeg}
            )
        self._add(self._ch_image, ns, data)

    def calibration(self, ns: int) -> None:
        """Record the camera's intrinsic calibration (distortion-free pinhole)."""
        cam = self.camera
        if self.profile == "foxglove":
            msg = CameraCalibration(
                frame_id=CAMERA_FRAME_ID, width=cam.width, height=cam.height, distortion_model="plumb_bob",
                D=[0.0] * 5, K=cam.intrinsics, R=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], P=cam.projection,
            )
            msg.timestamp.FromNanoseconds(ns)
            data = msg.SerializeToString()
        else:
            data = self._enc["sensor_msgs/msg/CameraInfo"]({
                "header": self._header(ns, CAMERA_FRAME_ID), "height": cam.height, "width": cam.width,
                "distortion_model": "plumb_bob", "d": [0.0] * 5, "k": cam.intrinsics,
                "r": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], "p": cam.projection, "binning_x": 0, "binning_y": 0,
                "roi": {"x_offset": 0, "y_offset": 0, "height": 0, "width": 0, "do_rectify": False},
            })
        self._add(self._ch_calib, ns, data)

    def gps(self, ns: int, lat: float, lon: float, alt: float, sigma_m: float) -> None:
        """Record a GPS fix: degrees, degrees, metres, and the horizontal standard deviation (m)."""
        var = sigma_m**2
        cov = [var, 0.0, 0.0, 0.0, var, 0.0, 0.0, 0.0, 4 * var]
        if self.profile == "foxglove":
            msg = LocationFix(frame_id=GPS_FRAME_ID, latitude=lat, longitude=lon, altitude=alt,
                              position_covariance=cov,
                              position_covariance_type=LocationFix.PositionCovarianceType.DIAGONAL_KNOWN)
            msg.timestamp.FromNanoseconds(ns)
            data = msg.SerializeToString()
        else:
            data = self._enc["sensor_msgs/msg/NavSatFix"]({
                "header": self._header(ns, GPS_FRAME_ID), "status": {"status": 0, "service": 1},
                "latitude": lat, "longitude": lon, "altitude": alt, "position_covariance": cov,
                "position_covariance_type": 2,
            })
        self._add(self._ch_gps, ns, data)

    def vehicle_state(self, ns: int, state: dict[str, Any]) -> None:
        """Record a vehicle-state sample (fields of `longtail.schemas.VEHICLE_STATE_SCHEMA`)."""
        if self.profile == "foxglove":
            sec, nsec = _stamp(ns)
            record = {"timestamp": {"sec": sec, "nsec": nsec}, "frame_id": VEHICLE_FRAME_ID, **state}
            data = json.dumps(record, separators=(",", ":")).encode()
        else:
            data = self._enc["longtail_msgs/msg/VehicleState"]({"header": self._header(ns, VEHICLE_FRAME_ID), **state})
        self._add(self._ch_state, ns, data)

    def detections(self, ns: int, boxes: list[dict[str, Any]], shadow: bool = False) -> None:
        """Record the detections made on the camera frame taken at ``ns`` (UNIX ns).

        Args:
            ns: the frame's time; the annotations carry it so that they line up with the image.
            boxes: box dicts ``category, x1, y1, x2, y2, score`` in pixel edges.
            shadow: a shadow challenger's detections (`SHADOW_DETECTIONS_TOPIC`), not the acting ones.
        """
        channel = self._ch_detections.get(shadow)
        if channel is None:
            channel = self._register_detections(SHADOW_DETECTIONS_TOPIC if shadow else DETECTIONS_TOPIC)
            self._ch_detections[shadow] = channel
        if self.profile == "foxglove":
            data = _annotations_protobuf(ns, boxes, shadow)
        else:
            data = self._enc[ANNOTATIONS_ROS2](_annotations_ros2(ns, boxes, shadow))
        self._add(channel, ns, data)

    def _register_detections(self, topic: str) -> int:
        """Register a detections channel on first use, so logs without perception stay byte-identical."""
        w = self._writer
        if self.profile == "foxglove":
            schema = w.register_schema(ImageAnnotations.DESCRIPTOR.full_name, "protobuf",
                                       build_file_descriptor_set(ImageAnnotations).SerializeToString())
            return w.register_channel(topic, "protobuf", schema)
        if ANNOTATIONS_ROS2 not in self._enc:
            self._enc[ANNOTATIONS_ROS2] = serialize_dynamic(ANNOTATIONS_ROS2, ANNOTATIONS_MSGDEF)[ANNOTATIONS_ROS2]
            self._annotations_schema = w.register_schema(ANNOTATIONS_ROS2, "ros2msg", ANNOTATIONS_MSGDEF.encode())
        return w.register_channel(topic, "cdr", self._annotations_schema)

    def finish(self) -> None:
        """Write the summary, indexes and footer."""
        self._writer.finish()
