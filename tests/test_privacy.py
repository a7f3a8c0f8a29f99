"""Faces and licence plates blurred with OpenCV's bundled Haar cascades (`longtail.privacy`).

The face is a real photograph (scikit-image's bundled ``astronaut``: Eileen Collins, a NASA
public-domain portrait); the plate is drawn here in the Russian format the plate cascades learnt.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from longtail.errors import ConfigError
from longtail.privacy import (
    HAAR_CASCADES,
    PrivacyConfig,
    Region,
    blur_frame,
    blur_regions,
    bundled_cascade_dir,
    make_detector,
)


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def _plate_scene() -> np.ndarray:
    """A white plate with a black rim and characters, 200x44 px, on a grey bumper."""
    rng = np.random.default_rng(0)
    image = rng.normal(90, 6, (200, 400, 3)).clip(0, 255).astype(np.uint8)
    cv2.rectangle(image, (100, 80), (300, 124), (240, 240, 240), -1)
    cv2.rectangle(image, (100, 80), (300, 124), (20, 20, 20), 2)
    cv2.putText(image, "A123BC 77", (108, 115), cv2.FONT_HERSHEY_SIMPLEX, 0.95, (10, 10, 10), 2)
    return image


def _outside(shape: tuple[int, ...], regions: list[Region]) -> np.ndarray:
    mask = np.ones(shape[:2], bool)
    for r in regions:
        mask[r.y1:r.y2, r.x1:r.x2] = False
    return mask


def test_a_real_face_is_found_and_only_its_region_is_blurred(face: np.ndarray) -> None:
    original = face.copy()
    blurred, regions = blur_frame(face, make_detector(), margin=0.2)
    faces = [r for r in regions if r.kind == "face"]
    assert faces and not [r for r in regions if r.kind == "plate"]
    # Her face: between the eyes at about (230, 110) in the 512 x 512 portrait; every face region covers it.
    assert all(r.x1 < 230 < r.x2 and r.y1 < 110 < r.y2 for r in faces)
    assert np.array_equal(face, original)  # the input is left as it was
    outside = _outside(face.shape, regions)
    assert np.array_equal(blurred[outside], original[outside])  # not one pixel outside the regions changes
    for r in regions:  # and inside each, the detail is gone: far less local contrast
        before = cv2.Laplacian(original[r.y1:r.y2, r.x1:r.x2], cv2.CV_64F).var()
        after = cv2.Laplacian(blurred[r.y1:r.y2, r.x1:r.x2], cv2.CV_64F).var()
        assert after < 0.05 * before, (r, before, after)


def test_a_russian_format_plate_is_found_and_blurred() -> None:
    scene = _plate_scene()
    blurred, regions = blur_frame(scene, make_detector(), margin=0.1)
    plates = [r for r in regions if r.kind == "plate"]
    assert plates and all(r.x1 <= 100 and r.x2 >= 300 and r.y1 <= 80 and r.y2 >= 124 for r in plates)
    outside = _outside(scene.shape, regions)
    assert np.array_equal(blurred[outside], scene[outside])
    # The characters are gone: the plate's dark strokes on white merge into grey.
    chars = blurred[90:118, 110:290]
    assert chars.std() < 0.3 * scene[90:118, 110:290].std()


def test_blur_regions_changes_exactly_the_given_regions_at_the_frame_edges() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    regions = [Region("face", 0, 0, 20, 15, "test"), Region("plate", 70, 50, 80, 60, "test"),
               Region("plate", 30, 30, 30, 40, "test")]  # empty: nothing to blur
    out = blur_regions(image, regions)
    outside = _outside(image.shape, regions[:2])
    assert np.array_equal(out[outside], image[outside])
    assert not np.array_equal(out[0:15, 0:20], image[0:15, 0:20])
    assert not np.array_equal(out[50:60, 70:80], image[50:60, 70:80])


def test_the_detector_describes_its_cascades_and_settings() -> None:
    detector = make_detector(PrivacyConfig(min_neighbors=4))
    info = detector.describe()
    assert info["id"] == detector.id and detector.id.startswith("opencv-haar-")
    assert info["opencv"] == cv2.__version__ and info["params"]["min_neighbors"] == 4
    files = {c["file"]: c for c in info["cascades"]}
    assert set(files) == {c.file for c in HAAR_CASCADES}
    for name, entry in files.items():
        assert entry["sha256"] == hashlib.sha256((bundled_cascade_dir() / name).read_bytes()).hexdigest()
    assert "Russian" in info["note"]
    # Another setting is another detector; the same settings are the same one.
    assert make_detector(PrivacyConfig(min_neighbors=5)).id != detector.id
    assert make_detector(PrivacyConfig(min_neighbors=4)).id == detector.id


def test_a_missing_or_damaged_cascade_names_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"cascade file {tmp_path}/haarcascade_frontalface_default\.xml not found; "
                                          r"set privacy cascade_dir to a folder .* or leave it unset"):
        make_detector(PrivacyConfig(cascade_dir=str(tmp_path)))
    for cascade in HAAR_CASCADES:
        (tmp_path / cascade.file).write_bytes((bundled_cascade_dir() / cascade.file).read_bytes())
    make_detector(PrivacyConfig(cascade_dir=str(tmp_path)))  # a copy of the bundled files works
    (tmp_path / "haarcascade_profileface.xml").write_text("<opencv_storage><cascade>cut here")
    with pytest.raises(ConfigError, match=rf"{tmp_path}/haarcascade_profileface\.xml is not a Haar cascade OpenCV can "
                                          r"read \(damaged or another format\); set privacy cascade_dir"):
        make_detector(PrivacyConfig(cascade_dir=str(tmp_path)))


def test_config_rejects_unknown_settings_and_detectors() -> None:
    with pytest.raises(ValueError, match="blurr"):
        PrivacyConfig(blurr=False)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="opencv-haar"):
        PrivacyConfig(detector="yolo-faces")  # type: ignore[arg-type]
