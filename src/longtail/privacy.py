"""Faces and licence plates blurred before frames leave the data root for people.

Frames go to people when a labeling batch is pushed to Label Studio (and in any export made for
them). They are blurred on a *copy*: the frame store keeps the originals, which training reads.
What was blurred, and by which detector, is recorded with the batch (`RegionDetector.describe`).

The default detector ships with the stack and runs offline: OpenCV's bundled Haar cascades
(``cv2.data.haarcascades``), frontal and profile faces, and the two licence-plate cascades
OpenCV ships, both trained on **Russian** plates (white, 520x112 mm, black characters), so their
recall on other countries' plates is lower (measured in bench/RESULTS.md, "Privacy"). A learned
detector replaces it by implementing `RegionDetector` (``detect`` and ``describe``) and being
passed where a detector is taken.

Regions are in the internal box convention (`longtail.boxes`): pixel edges, origin at the
top-left corner, integers here because blurring works on whole pixels.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from longtail.errors import ConfigError, InputError

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("face", "plate")
"""What is blurred: people's faces and vehicles' licence plates."""


class PrivacyConfig(BaseModel):
    """Whether and how frames are blurred before people see them (saved with every push)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    blur: bool = Field(True, description="blur faces and licence plates in frames people see; False shows originals")
    detector: Literal["opencv-haar"] = Field("opencv-haar", description="named detector preset (`make_detector`)")
    cascade_dir: str | None = Field(
        None, description="folder holding the Haar cascade files (default: OpenCV's bundled cv2.data.haarcascades)")
    scale_factor: float = Field(1.1, gt=1.0, le=2.0, description="image pyramid step of the cascade search")
    min_neighbors: int = Field(3, ge=1, le=20,
                               description="overlapping hits a region needs to count (OpenCV's default, 3)")
    upscale: float = Field(
        1.0, ge=1.0, le=4.0,
        description="search on the frame enlarged by this factor: the cascades' smallest windows are 20-24 px "
                    "(faces) and 60x20 px (plates), so smaller faces and plates are found only when enlarged "
                    "(cost grows with the square)")
    margin: float = Field(0.2, ge=0.0, le=1.0,
                          description="each detected region is grown by this share of its size on every side "
                                      "before blurring (cascade boxes are tight: hair, ears, plate frames)")


class Region(NamedTuple):
    """One blurred region of a frame."""

    kind: str
    """'face' or 'plate'."""
    x1: int
    y1: int
    x2: int
    y2: int
    """Pixel edges (internal convention), clipped to the frame."""
    source: str
    """What found it (a cascade file name, or a model's name)."""


class RegionDetector(Protocol):
    """Finds faces and licence plates in a frame. Implement it to replace the Haar cascades."""

    @property
    def id(self) -> str:
        """Short, stable name of this detector and its settings (recorded with what people saw)."""
        ...

    def detect(self, image: np.ndarray) -> list[Region]:
        """Regions of ``image`` (H x W x 3 BGR uint8) to blur, before any margin."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the detector is: ``id``, ``name``, files with their sha256, parameters."""
        ...


@dataclass(frozen=True)
class Cascade:
    """One OpenCV cascade file and what it finds."""

    kind: str
    file: str
    mirrored: bool = False
    """Also run on the mirrored frame: OpenCV's profile cascade finds faces turned one way only."""


HAAR_CASCADES: tuple[Cascade, ...] = (
    Cascade("face", "haarcascade_frontalface_default.xml"),
    Cascade("face", "haarcascade_profileface.xml"),
    Cascade("face", "haarcascade_profileface.xml", mirrored=True),
    # Both plate cascades OpenCV ships are trained on Russian plates.
    Cascade("plate", "haarcascade_russian_plate_number.xml"),
    Cascade("plate", "haarcascade_license_plate_rus_16stages.xml"),
)
"""The cascades of the ``opencv-haar`` preset."""


def bundled_cascade_dir() -> Path:
    """The folder of Haar cascades that ships inside opencv-python (``cv2.data.haarcascades``)."""
    return Path(cv2.data.haarcascades)  # type: ignore[attr-defined]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class HaarDetector:
    """Faces and licence plates found by OpenCV's Haar cascades (`HAAR_CASCADES`)."""

    name = "opencv-haar"

    def __init__(self, config: PrivacyConfig | None = None, cascades: Sequence[Cascade] = HAAR_CASCADES) -> None:
        """Load the cascades.

        Raises:
            ConfigError: naming the cascade file that is missing or that OpenCV cannot read, and the fix.
        """
        self.config = config or PrivacyConfig()
        folder = Path(self.config.cascade_dir) if self.config.cascade_dir else bundled_cascade_dir()
        self._cascades: list[tuple[Cascade, cv2.CascadeClassifier]] = []
        self._files: dict[str, dict[str, Any]] = {}
        fix = ("set privacy cascade_dir to a folder holding OpenCV's Haar cascade XML files, or leave it unset "
               f"for the ones bundled with opencv-python ({bundled_cascade_dir()})")
        loaded: dict[str, cv2.CascadeClassifier] = {}
        for cascade in cascades:
            path = folder / cascade.file
            if cascade.file not in loaded:
                if not path.is_file():
                    raise ConfigError(f"privacy detector: cascade file {path} not found; {fix}")
                try:
                    classifier = cv2.CascadeClassifier(str(path))
                    broken = classifier.empty()
                except (cv2.error, SystemError):  # OpenCV's XML parser fails with a SystemError on a cut file
                    broken = True
                if broken:
                    raise ConfigError(f"privacy detector: {path} is not a Haar cascade OpenCV can read "
                                      f"(damaged or another format); {fix}")
                loaded[cascade.file] = classifier
                self._files[cascade.file] = {"file": cascade.file, "kind": cascade.kind, "sha256": _sha256(path)}
            self._cascades.append((cascade, loaded[cascade.file]))
        self._folder = folder
        self._id = f"{self.name}-{hashlib.sha256(json.dumps(self._identity(), sort_keys=True).encode()).hexdigest()[:12]}"

    def _identity(self) -> dict[str, Any]:
        c = self.config
        return {"name": self.name, "opencv": cv2.__version__, "method": "faces on equalized grey, plates on raw grey",
                "cascades": [{**self._files[k.file], "mirrored": k.mirrored} for k, _ in self._cascades],
                "params": {"scale_factor": c.scale_factor, "min_neighbors": c.min_neighbors, "upscale": c.upscale}}

    @property
    def id(self) -> str:
        """``opencv-haar-<12 hex>``: the name and a digest of the cascades' sha256, OpenCV's version and parameters."""
        return self._id

    def describe(self) -> dict[str, Any]:
        """The detector as recorded with a batch: id, name, OpenCV version, cascade files (sha256), parameters."""
        return {"id": self.id, **self._identity(), "cascade_dir": str(self._folder),
                "note": "plate cascades are trained on Russian plates; recall on others: bench/RESULTS.md"}

    def detect(self, image: np.ndarray) -> list[Region]:
        """Faces and plates in a BGR (or grey) uint8 frame, in its own pixels."""
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        height, width = gray.shape
        factor = self.config.upscale
        if factor > 1.0:
            gray = cv2.resize(gray, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_LINEAR)
        # Faces are searched on an equalized frame, as OpenCV's face-detection tutorial does; plates on the raw
        # grey (on KITTI 000008 the plate cascades found a rear plate there and lost it after equalization).
        even = cv2.equalizeHist(gray)
        frames = {("face", False): even, ("face", True): cv2.flip(even, 1),
                  ("plate", False): gray, ("plate", True): cv2.flip(gray, 1)}
        found: list[Region] = []
        for cascade, classifier in self._cascades:
            source = frames[cascade.kind, cascade.mirrored]
            hits = classifier.detectMultiScale(source, scaleFactor=self.config.scale_factor,
                                               minNeighbors=self.config.min_neighbors)
            for x, y, w, h in np.asarray(hits, dtype=np.int64).reshape(-1, 4):
                if cascade.mirrored:
                    x = source.shape[1] - x - w
                x1, y1 = int(np.floor(x / factor)), int(np.floor(y / factor))
                x2, y2 = int(np.ceil((x + w) / factor)), int(np.ceil((y + h) / factor))
                found.append(Region(cascade.kind, x1, y1, min(x2, width), min(y2, height), cascade.file))
        return found


def make_detector(config: PrivacyConfig | None = None) -> RegionDetector:
    """The detector a config names (``opencv-haar``: `HaarDetector`).

    Raises:
        ConfigError: when its files are missing or unreadable.
    """
    config = config or PrivacyConfig()
    if config.detector == "opencv-haar":
        return HaarDetector(config)
    raise ConfigError(f"privacy detector {config.detector!r} is unknown; valid: ['opencv-haar']")


def grow(region: Region, margin: float, width: int, height: int) -> Region:
    """``region`` grown by ``margin`` of its width and height on every side, clipped to the frame."""
    dx, dy = round((region.x2 - region.x1) * margin), round((region.y2 - region.y1) * margin)
    return region._replace(x1=max(region.x1 - dx, 0), y1=max(region.y1 - dy, 0),
                           x2=min(region.x2 + dx, width), y2=min(region.y2 + dy, height))


def blur_regions(image: np.ndarray, regions: Sequence[Region]) -> np.ndarray:
    """A copy of ``image`` with each region blurred; every pixel outside the regions is unchanged.

    A Gaussian of sigma = a quarter of the region's longer side (at least 2 px): its kernel spans
    1.5 times the region, so eyes and plate characters merge with their surroundings. Each region
    is blurred on its own pixels only (mirrored at its edges), so nothing outside leaks in or out.
    """
    out = image.copy()
    for r in regions:
        if r.x2 <= r.x1 or r.y2 <= r.y1:
            continue
        roi = np.ascontiguousarray(out[r.y1:r.y2, r.x1:r.x2])
        sigma = max(2.0, max(r.x2 - r.x1, r.y2 - r.y1) / 4)
        out[r.y1:r.y2, r.x1:r.x2] = cv2.GaussianBlur(roi, (0, 0), sigmaX=sigma, sigmaY=sigma,
                                                      borderType=cv2.BORDER_REFLECT_101)
    return out


def blur_frame(image: np.ndarray, detector: RegionDetector, margin: float = 0.2) -> tuple[np.ndarray, list[Region]]:
    """Detect faces and plates in ``image`` and blur them.

    Args:
        image: H x W x 3 BGR uint8 frame (left as it is).
        detector: finds the regions (`make_detector`).
        margin: share of each region's size added on every side before blurring.

    Returns:
        The blurred copy, and the regions blurred (grown by ``margin``, clipped), in detection order.
    """
    height, width = image.shape[:2]
    regions = [grow(r, margin, width, height) for r in detector.detect(image)]
    return blur_regions(image, regions), regions


def encode_like(image: np.ndarray, suffix: str) -> bytes:
    """Encode a frame in the format its original file has (``.jpg``/``.jpeg`` at quality 95, ``.png``).

    Raises:
        ConfigError: for a suffix OpenCV cannot write.
    """
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if suffix.lower() in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(suffix.lower(), image, params)
    if not ok:
        raise ConfigError(f"cannot encode a blurred frame as {suffix!r}; frames must be JPEG or PNG")
    return bytes(data)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """A frame file as BGR uint8.

    Raises:
        InputError: when the file cannot be decoded as an image.
    """
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{path}: not an image OpenCV can read; the frame store may be damaged "
                          "(re-ingest the drive log)")
    return image
