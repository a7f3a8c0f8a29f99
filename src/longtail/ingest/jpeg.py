"""Check JPEG and PNG bytes and read their size from the headers, without decoding pixels."""

from __future__ import annotations

import struct

# Start-of-frame markers that carry the image size (baseline, progressive, lossless...).
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ImageFormatError(ValueError):
    """The bytes are not a well-formed image of the expected format."""


def jpeg_size(data: bytes | memoryview) -> tuple[int, int]:
    """(width, height) of a JPEG, from its start-of-frame header.

    Checks the start and end markers and walks the header segments up to the scan.

    Raises:
        ImageFormatError: naming what is wrong.
    """
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        raise ImageFormatError(f"no JPEG start-of-image marker (first bytes {bytes(data[:4])!r})")
    if bytes(data[-2:]) != b"\xff\xd9":
        raise ImageFormatError("no JPEG end-of-image marker: the image is truncated")
    i = 2
    size = None
    while i + 4 <= n:
        if data[i] != 0xFF:
            raise ImageFormatError(f"corrupt JPEG header: expected a marker at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xDA:  # start of scan: the headers are done
            break
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if length < 2 or i + 2 + length > n:
            raise ImageFormatError(f"corrupt JPEG header: segment length {length} at byte {i}")
        if marker in _SOF:
            if length < 7:
                raise ImageFormatError("corrupt JPEG start-of-frame segment")
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            size = (width, height)
        i += 2 + length
    if size is None or size[0] == 0 or size[1] == 0:
        raise ImageFormatError("JPEG has no usable start-of-frame header (no image size)")
    return size


def png_size(data: bytes | memoryview) -> tuple[int, int]:
    """(width, height) of a PNG, from its IHDR chunk.

    Raises:
        ImageFormatError: when the bytes are not a PNG.
    """
    if len(data) < 24 or bytes(data[:8]) != PNG_MAGIC or bytes(data[12:16]) != b"IHDR":
        raise ImageFormatError("not a PNG (bad signature or no IHDR chunk)")
    width, height = struct.unpack(">II", data[16:24])
    if width == 0 or height == 0:
        raise ImageFormatError("PNG with zero width or height")
    return width, height


def image_size(data: bytes | memoryview, fmt: str) -> tuple[int, int]:
    """(width, height) of a ``jpeg`` or ``png`` image.

    Raises:
        ImageFormatError: for another format or malformed bytes.
    """
    fmt = fmt.lower()
    if fmt in ("jpeg", "jpg"):
        return jpeg_size(data)
    if fmt == "png":
        return png_size(data)
    raise ImageFormatError(f"unsupported image format {fmt!r}; Longtail stores jpeg and png frames")
