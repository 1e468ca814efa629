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
    typical 10-12 bit sensors almost black.

    Raises:
        InvalidImage: as :func:`image_msg_to_array`, or ``non_finite`` for depth-like float
            inputs containing NaN/inf.
    """
    img = image_msg_to_array(msg, INPUT_ENCODINGS + DEPTH_ENCODINGS)
    enc = msg.encoding
    if enc in ("mono16",) + DEPTH_ENCODINGS:
        return _stretch_to_rgb(img, enc)
    try:
        out = convert_color(img, enc, "rgb8")
    except ImageError as exc:  # pragma: no cover - all INPUT_ENCODINGS convert
        raise InvalidImage("unsupported_encoding", str(exc)) from exc
    return np.ascontiguousarray(out)


def compressed_msg_to_rgb(msg: Any) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (jpeg/png) into ``H x W x 3`` uint8 RGB.

    Raises:
        InvalidImage: ``empty_image`` for no data, ``corrupt_compressed`` when OpenCV cannot
            decode it.
    """
    buf = _as_uint8(msg.data)
    if buf.size == 0:
        raise InvalidImage("empty_image", "compressed image has no data")
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise InvalidImage("corrupt_compressed",
                           f"could not decode {buf.size} bytes of format {getattr(msg, 'format', '?')!r}")
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


def _stretch_to_rgb(img: np.ndarray, enc: str) -> np.ndarray:
    vals = img.astype(np.float32)
    if enc == "32FC1" and not np.isfinite(vals).all():
        bad = int((~np.isfinite(vals)).sum())
        raise InvalidImage("non_finite", f"{enc} input has {bad} NaN/inf pixels; not a camera image")
    lo, hi = np.percentile(vals, (0.5, 99.5))
    scale = 255.0 / max(float(hi - lo), 1e-6)
    grey = np.clip((vals - lo) * scale, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)
