"""Validated conversion between ROS image messages and numpy arrays (ROS-free).

Works on any object with the ``sensor_msgs/msg/Image`` fields (rclpy messages, rosbags
messages, or plain namespaces), so the node, the bag tools and the tests share one decoder.
Colour conversions use ``rosbags.image`` (OpenCV underneath); this module adds what a robot
needs on top: every malformed message raises :class:`InvalidImage` with a reason that names the
problem, row padding (``step > width * bytes_per_pixel``) is honoured, and big-endian data is
swapped.

Encodings follow REP 118 / sensor_msgs/image_encodings: rgb8, bgr8, rgba8, bgra8, mono8, mono16
as camera input; 32FC1 (metres, NaN invalid) and 16UC1 (millimetres, 0 invalid) for depth.
"""

from __future__ import annotations

import sys
from typing import Any, Tuple

import cv2
import numpy as np
import simplejpeg
from rosbags.image.image import ImageError, convert_color, to_cvtype

#: Camera encodings the depth node accepts.
INPUT_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16")
#: Single-channel encodings that carry depth rather than intensity.
DEPTH_ENCODINGS = ("32FC1", "16UC1")


class InvalidImage(ValueError):
    """A message that cannot be turned into an image; ``reason`` is a short machine key."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def image_msg_to_array(msg: Any, allowed: Tuple[str, ...] = INPUT_ENCODINGS + DEPTH_ENCODINGS
                       ) -> np.ndarray:
    """View an Image message's pixels as a numpy array, validating every field.

    Args:
        msg: Object with ``height``, ``width``, ``encoding``, ``is_bigendian``, ``step``,
            ``data`` (bytes, bytearray, array.array or uint8 numpy array).
        allowed: Encodings to accept.

    Returns:
        ``H x W`` (one channel) or ``H x W x C`` array of the encoding's dtype, native byte
        order. It may share memory with ``msg.data``; copy before modifying.

    Raises:
        InvalidImage: with reason ``unsupported_encoding``, ``empty_image``, ``bad_step`` or
            ``size_mismatch`` (``len(data) != step * height``).
    """
    enc = msg.encoding
    if enc not in allowed:
        raise InvalidImage("unsupported_encoding",
                           f"encoding {enc!r} not supported (expected one of {', '.join(allowed)})")
    h, w = int(msg.height), int(msg.width)
    if h <= 0 or w <= 0:
        raise InvalidImage("empty_image", f"image has zero size ({w}x{h})")
    _, _, typestr, nchan = to_cvtype(enc)
    dtype = np.dtype(typestr)
    row_bytes = w * nchan * dtype.itemsize
    step = int(msg.step)
    if step < row_bytes:
        raise InvalidImage("bad_step", f"step {step} < width*bytes_per_pixel {row_bytes}")
    buf = _as_uint8(msg.data)
    if buf.size != step * h:
        raise InvalidImage("size_mismatch",
                           f"len(data)={buf.size} != step*height={step}*{h}={step * h}")
    rows = buf.reshape(h, step)[:, :row_bytes]
    swap = bool(msg.is_bigendian) != (sys.byteorder == "big") and dtype.itemsize > 1
    if step == row_bytes and not swap:
        img = rows.reshape(-1).view(dtype)
    else:
        img = np.ascontiguousarray(rows).view(dtype)
        if swap:
            img = img.byteswap()
    shape = (h, w) if nchan == 1 else (h, w, nchan)
    return img.reshape(shape)


def image_msg_to_rgb(msg: Any) -> np.ndarray:
    """Decode a camera Image message into an ``H x W x 3`` uint8 RGB array.

    mono8 is replicated to three channels; mono16 (e.g. an IR or 16-bit grey camera) is
    stretched from its own 0.5-99.5 percentile range to 8 bits, since a fixed /257 would leave
    typical 10-12 bit sensors almost black. Depth encodings (32FC1, 16UC1) are refused: a depth
    map is not a camera image, and the network would turn it into nonsense.

    Raises:
        InvalidImage: as :func:`image_msg_to_array`; ``depth_as_camera`` for a depth encoding.
    """
    if msg.encoding in DEPTH_ENCODINGS:
        raise InvalidImage("depth_as_camera",
                           f"encoding {msg.encoding} is depth, not a camera image (expected one of "
                           f"{', '.join(INPUT_ENCODINGS)}); is the image topic remapped to a depth topic?")
    img = image_msg_to_array(msg, INPUT_ENCODINGS)
    enc = msg.encoding
    if enc == "mono16":
        return _stretch_to_rgb(img)
    try:
        out = convert_color(img, enc, "rgb8")
    except ImageError as exc:  # pragma: no cover - all INPUT_ENCODINGS convert
        raise InvalidImage("unsupported_encoding", str(exc)) from exc
    return np.ascontiguousarray(out)


#: Default decoded-size limit of compressed images (pixels): 8K UHD. A few hundred bytes of
#: PNG can claim gigapixels; the header is checked before anything is allocated.
MAX_DECODED_PIXELS = 7680 * 4320


def compressed_size(buf: np.ndarray) -> Tuple[str, int, int]:
    """``(format, width, height)`` read from a JPEG or PNG header without decoding pixels.

    Raises:
        InvalidImage: ``unsupported_compressed_format`` (neither JPEG nor PNG),
            ``corrupt_compressed`` (unreadable header).
    """
    data = bytes(buf[:64])
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise InvalidImage("corrupt_compressed", "PNG without an IHDR header")
        return "png", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:2] == b"\xff\xd8":
        try:
            h, w, _, _ = simplejpeg.decode_jpeg_header(buf)
        except ValueError as exc:
            raise InvalidImage("corrupt_compressed", f"JPEG header: {exc}") from exc
        return "jpeg", int(w), int(h)
    raise InvalidImage("unsupported_compressed_format",
                       f"data is neither JPEG nor PNG (starts with {data[:4].hex()})")


def compressed_msg_to_rgb(msg: Any, max_pixels: int = MAX_DECODED_PIXELS) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (jpeg/png) into ``H x W x 3`` uint8 RGB.

    JPEG is decoded by libjpeg-turbo through ``simplejpeg`` in strict mode, so the warnings
    libjpeg only prints (``Corrupt JPEG data: ...``, data corrupted mid-scan that still decodes
    to a damaged picture) count as corruption; PNG by OpenCV, whose libpng checks CRCs.

    Args:
        max_pixels: refuse images whose header claims more pixels (decompression bombs).

    Raises:
        InvalidImage: ``empty_image`` for no data; ``unsupported_compressed_format``;
            ``too_large`` when the header exceeds ``max_pixels``; ``corrupt_compressed`` when
            the data cannot be decoded cleanly.
    """
    buf = _as_uint8(msg.data)
    if buf.size == 0:
        raise InvalidImage("empty_image", "compressed image has no data")
    fmt, w, h = compressed_size(buf)
    if w <= 0 or h <= 0:
        raise InvalidImage("corrupt_compressed", f"{fmt} header claims {w}x{h}")
    if w * h > max_pixels:
        raise InvalidImage("too_large", f"{fmt} header claims {w}x{h} = {w * h} pixels "
                           f"(limit {max_pixels})")
    if fmt == "jpeg":
        try:
            return simplejpeg.decode_jpeg(buf, colorspace="RGB", strict=True)
        except ValueError as exc:
            raise InvalidImage("corrupt_compressed", f"JPEG: {exc}") from exc
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None or img.shape[:2] != (h, w):
        raise InvalidImage("corrupt_compressed",
                           f"could not decode {buf.size} bytes of PNG ({w}x{h} claimed)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def depth_msg_to_metres(msg: Any) -> np.ndarray:
    """Decode a depth Image (32FC1 metres or 16UC1 millimetres) to ``H x W`` float32 metres.

    Invalid pixels (NaN, inf, non-positive, 16UC1 zero) become NaN, following REP 118.

    Raises:
        InvalidImage: see :func:`image_msg_to_array`.
    """
    img = image_msg_to_array(msg, DEPTH_ENCODINGS)
    if msg.encoding == "16UC1":
        depth = img.astype(np.float32) * np.float32(1e-3)
        depth[img == 0] = np.nan
        return depth
    depth = img.astype(np.float32, copy=True)
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


def array_to_image_fields(array: np.ndarray, encoding: str) -> dict:
    """Fields of a ``sensor_msgs/Image`` carrying ``array`` (no header).

    Args:
        array: ``H x W`` or ``H x W x C`` array whose dtype and channels match ``encoding``.
        encoding: e.g. ``"32FC1"``, ``"bgr8"``, ``"mono8"``, ``"rgb8"``.

    Returns:
        dict with ``height``, ``width``, ``encoding``, ``is_bigendian``, ``step``, ``data``
        (bytes) to assign onto any Image message type.

    Raises:
        ValueError: dtype or channel count disagree with ``encoding``.
    """
    _, _, typestr, nchan = to_cvtype(encoding)
    arr = np.ascontiguousarray(array)
    got_chan = 1 if arr.ndim == 2 else arr.shape[2]
    if arr.dtype != np.dtype(typestr) or got_chan != nchan:
        raise ValueError(f"array {arr.dtype} x{got_chan} does not match {encoding} ({typestr} x{nchan})")
    h, w = arr.shape[:2]
    return dict(height=h, width=w, encoding=encoding, is_bigendian=sys.byteorder == "big",
                step=w * nchan * arr.dtype.itemsize, data=arr.tobytes())


def _as_uint8(data: Any) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)


def _stretch_to_rgb(img: np.ndarray) -> np.ndarray:
    vals = img.astype(np.float32)
    lo, hi = np.percentile(vals, (0.5, 99.5))
    scale = 255.0 / max(float(hi - lo), 1e-6)
    grey = np.clip((vals - lo) * scale, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)
