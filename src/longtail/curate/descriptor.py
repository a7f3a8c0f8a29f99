"""A hand-built image descriptor and image statistics, for curation before any model exists.

The descriptor is a GIST-like global layout descriptor (Oliva & Torralba, "Modeling the shape
of the scene", IJCV 2001), built from three blocks on a 128x64 thumbnail:

1. Gradient orientation histograms (as in HOG, Dalal & Triggs 2005): unsigned orientation in
   8 bins, magnitude-weighted, on a 4x4 grid of cells -> 128 values. This captures the scene's
   layout: lane lines, vehicles, buildings, the horizon.
2. Colour layout: mean luma and the two chroma channels (BT.601 YCbCr) on a 4x4 grid -> 48
   values. This separates day, dusk and night, fog and clear sky, town and highway.
3. A 16-bin luma histogram of the whole image -> 16 values (exposure, glare, darkness).

Each block is L1-normalised and square-rooted (the Hellinger kernel, as in RootSIFT, Arandjelovic
& Zisserman 2012), weighted, and the 192 values L2-normalised: the cosine similarity of two
descriptors is their dot product. Decoding uses libjpeg's DCT scaling (`Image.draft`), so a
640x384 JPEG is decoded at 160x96 at a fraction of the cost of a full decode.

The same thumbnail gives the image statistics that scenario tags are derived from
(`longtail.curate.tags`): luminance, contrast, the dark channel (He, Sun & Tang, "Single image
haze removal using dark channel prior", CVPR 2009: haze and fog lift the minimum colour
channel), thin vertical ridges (rain streaks), and the size of saturated blobs (glare).
"""

from __future__ import annotations

import io
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image

DESCRIPTOR_KEY = "gist-hog-color-v1"
"""Name and version of the descriptor: the embedding cache is keyed by it."""

THUMB_W, THUMB_H = 128, 64
GRID = 4
ORIENTATIONS = 8
DIM = GRID * GRID * ORIENTATIONS + GRID * GRID * 3 + 16
BLOCK_WEIGHTS = (1.0, 0.8, 0.5)
STREAK_WIDTH = 320
STREAK_MIN_WIDTH = 512
"""Rain streaks are measured on images at least this wide (else NaN: no rain tag)."""
"""Relative weight of the gradient, colour-layout and histogram blocks in the descriptor."""

STAT_NAMES = ("luma_mean", "luma_p95", "contrast", "dark_channel", "rain_streaks", "edge_density",
              "saturated", "glare_blob")
"""Image statistics: luma mean, 95th percentile and standard deviation (0..1); median dark
channel (0..1); rain-streak anisotropy (thin vertical ridges over thin horizontal ones, ~0.5 for
ordinary scenes, above 1 with rain streaks; NaN for images under 512 px wide); share of strong edges; share of saturated pixels;
area of the largest saturated blob as a share of the image."""


class ImageFeatures(NamedTuple):
    """Descriptor and statistics of one image."""

    descriptor: np.ndarray   # float32 (DIM,), unit length
    stats: np.ndarray        # float32 (len(STAT_NAMES),)


def decode_thumbnail(data: bytes, source: str = "image") -> tuple[np.ndarray, float]:
    """Decode image bytes into a float32 RGB thumbnail of THUMB_H x THUMB_W, values 0..1.

    Returns:
        The thumbnail and the rain-streak anisotropy, measured on the larger intermediate
        decode where one-pixel streaks still show.

    Raises:
        ValueError: naming ``source`` when the bytes are not a decodable image.
    """
    try:
        img: Image.Image = Image.open(io.BytesIO(data))
        full_width = img.width
        img.draft("RGB", (THUMB_W * 2, THUMB_H * 2))  # DCT-domain downscale, JPEG only
        img = img.convert("RGB")
        # Streaks are measured at about 320 px wide: narrower cameras draw rain too coarsely to tell.
        if full_width >= STREAK_MIN_WIDTH:
            gray = img.convert("L")
            if gray.width > 1.25 * STREAK_WIDTH:
                gray = gray.resize((STREAK_WIDTH, round(gray.height * STREAK_WIDTH / gray.width)),
                                   Image.Resampling.BOX)
            streaks = _streak_anisotropy(np.asarray(gray, dtype=np.float32) * (1.0 / 255.0))
        else:
            streaks = float("nan")
        img = img.resize((THUMB_W, THUMB_H), Image.Resampling.BILINEAR)
    except Exception as exc:  # PIL raises several types for bad bytes
        raise ValueError(f"{source}: cannot decode the image ({exc}); re-ingest the drive log") from exc
    return np.asarray(img, dtype=np.float32) * (1.0 / 255.0), streaks


def _streak_anisotropy(gray: np.ndarray) -> float:
    """Share of thin bright vertical ridges over thin bright horizontal ones.

    Rain streaks are thin, bright and near-vertical; most scene texture is not oriented that
    way. A ridge is a pixel brighter than the mean of its two neighbours across the ridge,
    averaged over 9 px along it so that only coherent lines remain.
    """
    if gray.shape[0] < 12 or gray.shape[1] < 12:
        return 0.0
    vert = cv2.blur(gray[:, 1:-1] - 0.5 * (gray[:, :-2] + gray[:, 2:]), (1, 9))
    horiz = cv2.blur(gray[1:-1, :] - 0.5 * (gray[:-2, :] + gray[2:, :]), (9, 1))
    v = float((vert[4:-4] > 0.02).mean())
    h = float((horiz[:, 4:-4] > 0.02).mean())
    return v / (h + 0.005)


def _block_root(v: np.ndarray) -> np.ndarray:
    """L1-normalise then square-root (Hellinger) a non-negative block."""
    s = float(v.sum())
    return np.sqrt(v / s) if s > 0 else v


def compute_features(rgb: np.ndarray, streaks: float = 0.0) -> ImageFeatures:
    """Descriptor and statistics of an RGB thumbnail from `decode_thumbnail`."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 0.5 + (b - luma) * 0.564
    cr = 0.5 + (r - luma) * 0.713

    # 1. Orientation histograms: Sobel gradients, unsigned angle in ORIENTATIONS bins per cell.
    gx = cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.sqrt(gx * gx + gy * gy)
    angle = np.arctan2(gy, gx) % np.pi
    obin = np.minimum((angle * (ORIENTATIONS / np.pi)).astype(np.int32), ORIENTATIONS - 1)
    ch, cw = THUMB_H // GRID, THUMB_W // GRID
    cell = (np.arange(THUMB_H)[:, None] // ch) * GRID + np.arange(THUMB_W)[None, :] // cw
    hog = np.bincount((cell * ORIENTATIONS + obin).ravel(), weights=mag.ravel(),
                      minlength=GRID * GRID * ORIENTATIONS)

    # 2. Colour layout: cell means of Y, Cb, Cr.
    ycc = np.stack([luma, cb, cr], axis=-1).reshape(GRID, ch, GRID, cw, 3).mean(axis=(1, 3)).ravel()

    # 3. Luma histogram.
    hist = np.bincount(np.minimum((luma * 16).astype(np.int32), 15).ravel(), minlength=16).astype(np.float64)

    desc = np.concatenate([BLOCK_WEIGHTS[0] * _block_root(hog), BLOCK_WEIGHTS[1] * _block_root(ycc),
                           BLOCK_WEIGHTS[2] * _block_root(hist)]).astype(np.float32)
    desc /= max(float(np.linalg.norm(desc)), 1e-12)

    # Statistics for scenario tags.
    dark: np.ndarray = np.asarray(cv2.erode(np.minimum(np.minimum(r, g), b), np.ones((5, 5), np.uint8)),
                                  dtype=np.float32)
    saturated = luma > 0.96
    glare_blob = 0.0
    if saturated.any():
        n, _, stats, _ = cv2.connectedComponentsWithStats(saturated.astype(np.uint8), connectivity=8)
        glare_blob = float(stats[1:, cv2.CC_STAT_AREA].max()) / luma.size if n > 1 else 0.0
    stats_vec = np.array([
        luma.mean(), np.percentile(luma, 95), luma.std(), float(np.median(dark)), streaks,
        float((mag > 0.25).mean()), float(saturated.mean()), glare_blob,
    ], dtype=np.float32)
    return ImageFeatures(desc, stats_vec)


def describe_image(data: bytes, source: str = "image") -> ImageFeatures:
    """Descriptor and statistics of encoded image bytes (JPEG or PNG).

    Raises:
        ValueError: naming ``source`` when the bytes do not decode.
    """
    rgb, streaks = decode_thumbnail(data, source)
    return compute_features(rgb, streaks)
