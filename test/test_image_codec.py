"""Image message <-> numpy decoding: round trips, colour order, padding, endianness, errors."""

import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from mono_depth_ros.core.image_codec import (InvalidImage, array_to_image_fields,
                                        compressed_msg_to_rgb, depth_msg_to_metres,
                                        image_msg_to_array, image_msg_to_rgb)

H, W = 5, 7
ENCODINGS = ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "32FC1", "16UC1"]


def _rclpy_msg(fields):
    # ROS imports inside: the core codec is tested without ROS; this maker checks rclpy messages
    from sensor_msgs.msg import Image

    from mono_depth_ros.ros.conversions import byte_array
    msg = Image()
    msg.height, msg.width, msg.encoding = fields["height"], fields["width"], fields["encoding"]
    msg.is_bigendian, msg.step = int(fields["is_bigendian"]), fields["step"]
    msg.data = byte_array(fields["data"])
    return msg


def _ns_msg(fields):
    return SimpleNamespace(**fields)


MAKERS = {"rclpy": _rclpy_msg, "namespace": _ns_msg}


def _sample(encoding):
    rng = np.random.default_rng(ENCODINGS.index(encoding))
    if encoding in ("rgb8", "bgr8"):
        return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    if encoding in ("rgba8", "bgra8"):
        return rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    if encoding == "mono8":
        return rng.integers(0, 256, (H, W), dtype=np.uint8)
    if encoding in ("mono16", "16UC1"):
        return rng.integers(0, 65536, (H, W), dtype=np.uint16)
    if encoding == "32FC1":
        return rng.uniform(0.1, 9.0, (H, W)).astype(np.float32)
    raise AssertionError(encoding)


# --------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("maker", sorted(MAKERS))
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_round_trip_array(encoding, maker):
    arr = _sample(encoding)
    fields = array_to_image_fields(arr, encoding)
    itemsize = arr.dtype.itemsize
    nchan = 1 if arr.ndim == 2 else arr.shape[2]
    assert (fields["height"], fields["width"]) == (H, W)
    assert fields["step"] == W * nchan * itemsize
    assert len(fields["data"]) == fields["step"] * H
    assert fields["is_bigendian"] == (sys.byteorder == "big")
    msg = MAKERS[maker](fields)
    out = image_msg_to_array(msg)
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("maker", sorted(MAKERS))
def test_rgb_decoding_per_encoding(maker):
    make = MAKERS[maker]
    rgb = _sample("rgb8")
    # rgb8 unchanged
    np.testing.assert_array_equal(image_msg_to_rgb(make(array_to_image_fields(rgb, "rgb8"))), rgb)
    # bgr8 -> rgb swaps channels 0 and 2
    bgr = rgb[..., ::-1].copy()
    out = image_msg_to_rgb(make(array_to_image_fields(bgr, "bgr8")))
    np.testing.assert_array_equal(out, rgb)
    assert out[0, 0, 0] == bgr[0, 0, 2] and out[0, 0, 2] == bgr[0, 0, 0]
    # rgba8 / bgra8 drop alpha
    alpha = np.full((H, W, 1), 17, np.uint8)
    rgba = np.concatenate([rgb, alpha], axis=2)
    np.testing.assert_array_equal(image_msg_to_rgb(make(array_to_image_fields(rgba, "rgba8"))), rgb)
    bgra = np.concatenate([bgr, alpha], axis=2)
    np.testing.assert_array_equal(image_msg_to_rgb(make(array_to_image_fields(bgra, "bgra8"))), rgb)
    # mono8 replicated to three channels
    grey = _sample("mono8")
    out = image_msg_to_rgb(make(array_to_image_fields(grey, "mono8")))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)


def test_explicit_bgr_pixel_swap():
    bgr = np.zeros((1, 2, 3), np.uint8)
    bgr[0, 0] = (10, 20, 30)   # B=10 G=20 R=30
    bgr[0, 1] = (255, 0, 0)    # pure blue
    out = image_msg_to_rgb(_ns_msg(array_to_image_fields(bgr, "bgr8")))
    assert out[0, 0].tolist() == [30, 20, 10]
    assert out[0, 1].tolist() == [0, 0, 255]
    np.testing.assert_array_equal(out[..., ::-1], bgr)


def test_mono16_is_stretched_to_8_bit():
    # A 12-bit ramp: a fixed /257 would leave it almost black; percentile stretch spans 0..255.
    ramp = np.linspace(100, 4000, H * W).astype(np.uint16).reshape(H, W)
    out = image_msg_to_rgb(_ns_msg(array_to_image_fields(ramp, "mono16")))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255
    assert (np.diff(out[..., 0].ravel().astype(int)) >= 0).all()  # monotonic
    np.testing.assert_array_equal(out[..., 0], out[..., 1])


@pytest.mark.parametrize("maker", sorted(MAKERS))
def test_row_padding_honoured(maker):
    rgb = _sample("rgb8")
    pad = 5
    step = W * 3 + pad
    rows = np.full((H, step), 0xAB, np.uint8)
    rows[:, :W * 3] = rgb.reshape(H, W * 3)
    fields = dict(height=H, width=W, encoding="rgb8", is_bigendian=False, step=step,
                  data=rows.tobytes())
    msg = MAKERS[maker](fields)
    np.testing.assert_array_equal(image_msg_to_array(msg), rgb)
    np.testing.assert_array_equal(image_msg_to_rgb(msg), rgb)
    # padded float depth: step not a multiple of 4 bytes either
    depth = _sample("32FC1")
    step = W * 4 + 3
    rows = np.zeros((H, step), np.uint8)
    rows[:, :W * 4] = depth.view(np.uint8).reshape(H, W * 4)
    msg = MAKERS[maker](dict(height=H, width=W, encoding="32FC1", is_bigendian=False, step=step,
                             data=rows.tobytes()))
    np.testing.assert_array_equal(image_msg_to_array(msg), depth)
    np.testing.assert_array_equal(depth_msg_to_metres(msg), depth)


@pytest.mark.parametrize("maker", sorted(MAKERS))
def test_big_endian_mono16_and_16uc1_swapped(maker):
    vals = np.array([[0x0102, 0x0A0B, 1000]], dtype=np.uint16)
    big = vals.astype(">u2").tobytes()
    assert big[:2] == b"\x01\x02"
    for enc in ("mono16", "16UC1"):
        msg = MAKERS[maker](dict(height=1, width=3, encoding=enc, is_bigendian=True, step=6,
                                 data=big))
        out = image_msg_to_array(msg)
        assert out.tolist() == [[0x0102, 0x0A0B, 1000]]
    msg = MAKERS[maker](dict(height=1, width=3, encoding="16UC1", is_bigendian=True, step=6,
                             data=big))
    np.testing.assert_allclose(depth_msg_to_metres(msg), [[0.258, 2.571, 1.0]], rtol=1e-6)


def test_big_endian_32fc1_swapped():
    vals = np.array([[1.5, 2.25]], dtype=np.float32)
    msg = _ns_msg(dict(height=1, width=2, encoding="32FC1", is_bigendian=1, step=8,
                       data=vals.astype(">f4").tobytes()))
    assert depth_msg_to_metres(msg).tolist() == [[1.5, 2.25]]


def test_numpy_data_accepted():
    arr = _sample("rgb8")
    fields = array_to_image_fields(arr, "rgb8")
    fields["data"] = np.frombuffer(fields["data"], np.uint8)
    np.testing.assert_array_equal(image_msg_to_rgb(_ns_msg(fields)), arr)


def test_array_to_image_fields_rejects_mismatch():
    with pytest.raises(ValueError):
        array_to_image_fields(np.zeros((2, 2), np.float32), "16UC1")
    with pytest.raises(ValueError):
        array_to_image_fields(np.zeros((2, 2, 3), np.uint8), "mono8")


# --------------------------------------------------------------------------- bad input

def _good(encoding="rgb8"):
    return array_to_image_fields(_sample(encoding), encoding)


@pytest.mark.parametrize("maker", sorted(MAKERS))
@pytest.mark.parametrize("case, reason", [
    ("yuv422", "unsupported_encoding"),
    ("bayer_rggb8", "unsupported_encoding"),
    ("short_data", "size_mismatch"),
    ("long_data", "size_mismatch"),
    ("zero_width", "empty_image"),
    ("zero_height", "empty_image"),
    ("small_step", "bad_step"),
])
def test_bad_images_raise_with_reason(case, reason, maker):
    f = _good()
    if case in ("yuv422", "bayer_rggb8"):
        f["encoding"] = case
    elif case == "short_data":
        f["data"] = f["data"][:-1]
    elif case == "long_data":
        f["data"] = f["data"] + b"\x00" * 3
    elif case == "zero_width":
        f.update(width=0, step=0, data=b"")
    elif case == "zero_height":
        f.update(height=0, data=b"")
    elif case == "small_step":
        f["step"] = W * 3 - 1
    msg = MAKERS[maker](f)
    with pytest.raises(InvalidImage) as exc:
        image_msg_to_rgb(msg)
    assert exc.value.reason == reason
    with pytest.raises(InvalidImage) as exc:
        image_msg_to_array(msg)
    assert exc.value.reason == reason


def test_camera_encoding_rejected_as_depth():
    with pytest.raises(InvalidImage) as exc:
        depth_msg_to_metres(_ns_msg(_good("rgb8")))
    assert exc.value.reason == "unsupported_encoding"


@pytest.mark.parametrize("encoding", ["32FC1", "16UC1"])
def test_depth_encodings_are_refused_as_camera_input(encoding):
    """A depth topic remapped onto ``image`` must not run through the network as grey."""
    with pytest.raises(InvalidImage) as exc:
        image_msg_to_rgb(_rclpy_msg(array_to_image_fields(_sample(encoding), encoding)))
    assert exc.value.reason == "depth_as_camera" and encoding in str(exc.value)


# --------------------------------------------------------------------------- compressed

def _compressed(data, fmt):
    return SimpleNamespace(format=fmt, data=bytes(data))


def _pattern(h=24, w=32):
    v, u = np.mgrid[0:h, 0:w]
    rgb = np.stack([u * 8 % 256, v * 10 % 256, (u + v) * 5 % 256], axis=-1).astype(np.uint8)
    rgb[:8, :8] = (255, 0, 0)  # a red block: must stay red after decoding (not blue)
    return rgb


def test_compressed_png_exact():
    rgb = _pattern()
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    out = compressed_msg_to_rgb(_compressed(buf.tobytes(), "rgb8; png compressed bgr8"))
    np.testing.assert_array_equal(out, rgb)
    # also from a plain namespace holding bytes
    np.testing.assert_array_equal(compressed_msg_to_rgb(SimpleNamespace(format="png",
                                                                        data=buf.tobytes())), rgb)


def test_compressed_jpeg_close():
    rgb = _pattern()
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert ok
    out = compressed_msg_to_rgb(_compressed(buf.tobytes(), "jpeg"))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb.astype(int)).mean() < 4.0
    r, g, b = out[2:6, 2:6].reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 50 and b < 50  # channel order is RGB


def test_compressed_corrupt_and_empty():
    ok, buf = cv2.imencode(".jpg", _pattern())
    garbage = bytes(buf.tobytes()[:2]) + b"\x00" * 10 + b"not a jpeg at all"
    with pytest.raises(InvalidImage) as exc:
        compressed_msg_to_rgb(_compressed(garbage, "jpeg"))
    assert exc.value.reason == "corrupt_compressed"
    with pytest.raises(InvalidImage) as exc:
        compressed_msg_to_rgb(_compressed(b"", "jpeg"))
    assert exc.value.reason == "empty_image"
    with pytest.raises(InvalidImage) as exc:
        compressed_msg_to_rgb(_compressed(b"GIF89a" + bytes(40), "gif"))
    assert exc.value.reason == "unsupported_compressed_format"


def _noise_jpeg(seed=0, h=120, w=160):
    img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return bytearray(buf.tobytes())


@pytest.mark.parametrize("seed", range(5))
def test_jpeg_corrupted_mid_scan_is_refused(seed):
    """Bytes changed inside the entropy-coded data: OpenCV still returns a (damaged) picture and
    libjpeg only prints a warning; the codec counts that as corruption."""
    data = _noise_jpeg()
    rng = np.random.default_rng(seed)
    for i in rng.integers(len(data) // 3, len(data) - 16, 3):
        data[i] = (data[i] + 1 + int(rng.integers(0, 254))) % 256
    assert cv2.imdecode(np.frombuffer(bytes(data), np.uint8), cv2.IMREAD_COLOR) is not None
    with pytest.raises(InvalidImage) as exc:
        compressed_msg_to_rgb(_compressed(bytes(data), "jpeg"))
    assert exc.value.reason == "corrupt_compressed"


def test_truncated_png_is_refused():
    ok, buf = cv2.imencode(".png", _pattern(64, 64))
    with pytest.raises(InvalidImage) as exc:
        compressed_msg_to_rgb(_compressed(buf.tobytes()[: len(buf) // 2], "png"))
    assert exc.value.reason == "corrupt_compressed"


def test_decompression_bomb_is_refused_before_decoding():
    """A tiny PNG whose header claims 100000 x 100000 pixels is refused from the header."""
    import struct
    import zlib
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    chunk = lambda kind, body: (struct.pack(">I", len(body)) + kind + body  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + body)))
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")
    with pytest.raises(InvalidImage) as exc:
        compressed_msg_to_rgb(_compressed(bomb, "png"))
    assert exc.value.reason == "too_large" and "100000x100000" in str(exc.value)
    ok, buf = cv2.imencode(".jpg", _pattern(64, 64))
    with pytest.raises(InvalidImage) as exc:
        compressed_msg_to_rgb(_compressed(buf.tobytes(), "jpeg"), max_pixels=64 * 63)
    assert exc.value.reason == "too_large"
    assert compressed_msg_to_rgb(_compressed(buf.tobytes(), "jpeg"), max_pixels=64 * 64).shape == (64, 64, 3)


# --------------------------------------------------------------------------- depth decoding

def test_depth_16uc1_millimetres_to_metres():
    raw = np.array([[0, 1000, 1500], [65534, 1, 2345]], dtype=np.uint16)
    out = depth_msg_to_metres(_rclpy_msg(array_to_image_fields(raw, "16UC1")))
    assert out.dtype == np.float32
    assert np.isnan(out[0, 0])
    np.testing.assert_allclose(out[0, 1:], [1.0, 1.5], rtol=1e-6)
    np.testing.assert_allclose(out[1], [65.534, 0.001, 2.345], rtol=1e-6)


def test_depth_32fc1_invalid_to_nan():
    raw = np.array([[1.25, np.inf, -np.inf], [-0.5, 0.0, np.nan]], dtype=np.float32)
    msg = _ns_msg(array_to_image_fields(raw, "32FC1"))
    out = depth_msg_to_metres(msg)
    assert out[0, 0] == 1.25
    assert np.isnan(out.ravel()[1:]).all()
    # the message buffer itself is not modified
    assert np.isinf(image_msg_to_array(msg)[0, 1])
