"""depth_node in-process with a metric scale source: every reference kind is used, bad references
are skipped with a counter while the last good scale is held, then the fallback applies, and the
source can be switched by parameter."""

from __future__ import annotations

import array
import math

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, LaserScan, PointCloud2, PointField  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from mono_depth_ros.ros.conversions import make_image  # noqa: E402
from mono_depth_ros.ros.depth_node import DepthNode  # noqa: E402
from mono_depth_ros.ros.scale_source import cloud_xyz  # noqa: E402

K = np.array([[585.0, 0.0, 320.0], [0.0, 585.0, 240.0], [0.0, 0.0, 1.0]])
WANTED = ("depth",)


def header(t: float, frame="camera_optical_frame") -> Header:
    h = Header(frame_id=frame)
    h.stamp.sec, h.stamp.nanosec = 500 + int(t), int(round((t % 1) * 1e9))
    return h


def rgb_frame() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 255, (480, 640, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def node(rclpy_context):
    n = DepthNode(context=rclpy_context, parameter_overrides=[
        Parameter("stats_period", value=0.0), Parameter("warn_throttle", value=0.0),
        Parameter("device", value="cpu"), Parameter("max_depth", value=30.0),
        # a small network input keeps the test fast; the scale code sees the full 640 x 480
        Parameter("input_width", value=128), Parameter("input_height", value=96),
        Parameter("scale_source", value="sparse_depth"), Parameter("scale_smoothing", value=0.0),
        Parameter("scale_max_age", value=1.0),
        Parameter("camera_info_max_age", value=60.0)])  # one camera_info at t=0 for all frames
    m = CameraInfo(header=header(0), width=640, height=480)
    m.k = K.reshape(9).tolist()
    n._on_info(m)
    yield n
    n.destroy_node()


@pytest.fixture(scope="module")
def base_depth(node):
    """The network's own depth of the test frame (the node's estimator, same input)."""
    return node.estimator.predict(rgb_frame(), K).depth


def _frame(node, t: float, *refs) -> bool:
    for r in refs:
        node.scale_source._on_reference(r)
    return node.process_frame(make_image(header(t), rgb_frame(), "rgb8"), WANTED)


def _sparse(depth: np.ndarray, n: int = 400) -> np.ndarray:
    out = np.full(depth.shape, np.nan, np.float32)
    idx = np.random.default_rng(0).choice(np.flatnonzero(np.isfinite(depth)), n, replace=False)
    out.flat[idx] = depth.flat[idx]
    return out


def _cloud(points: np.ndarray, frame: str, t: float) -> PointCloud2:
    msg = PointCloud2(header=header(t, frame), height=1, width=len(points), point_step=12,
                      row_step=12 * len(points), is_bigendian=False, is_dense=True)
    msg.fields = [PointField(name=n, offset=4 * i, datatype=7, count=1) for i, n in enumerate("xyz")]
    msg.data = array.array("B", points.astype(np.float32).tobytes())
    return msg


def _state(node):
    return node.scale_source.last


def test_sparse_depth_image_metres_and_millimetres(node, base_depth):
    ref = 2.0 * _sparse(base_depth)
    assert _frame(node, 1.0, make_image(header(1.0), ref, "32FC1"))
    s = _state(node)
    assert s.status == "fitted" and s.scale == pytest.approx(2.0, rel=1e-4) and s.support == 400
    mm = np.nan_to_num(ref * 1000.0).round().astype(np.uint16)
    assert _frame(node, 1.1, make_image(header(1.1), mm, "16UC1"))
    assert _state(node).status == "fitted" and _state(node).scale == pytest.approx(2.0, rel=2e-3)


def test_bad_references_are_skipped_the_scale_is_held_then_falls_back(node, base_depth):
    assert _frame(node, 2.0, make_image(header(2.0), 3.0 * _sparse(base_depth), "32FC1"))
    assert _state(node).scale == pytest.approx(3.0, rel=1e-4)
    cases = [  # (reference message, expected reason)
        (make_image(header(2.2), np.ones((240, 320), np.float32), "32FC1"), "wrong_size"),
        (make_image(header(2.3), np.full((480, 640), np.nan, np.float32), "32FC1"), "empty_reference"),
        (make_image(header(1.5), 3.0 * _sparse(base_depth), "32FC1"), "stale_reference"),
        # REP 118: inf, NaN and 0 all mean "no value"
        (make_image(header(2.5), np.full((480, 640), np.inf, np.float32), "32FC1"), "empty_reference"),
    ]
    for i, (msg, reason) in enumerate(cases):
        t = 2.2 + 0.1 * i
        before = node.pipeline.scaler.rejected[reason]
        node.scale_source._refs.clear()
        assert _frame(node, t, msg), reason  # the frame is still published ...
        s = _state(node)
        assert (s.status, s.reason) == ("held", reason)  # ... with the last good scale
        assert s.scale == pytest.approx(3.0, rel=1e-4) and s.age == pytest.approx(t - 2.0, abs=1e-6)
        assert node.pipeline.scaler.rejected[reason] == before + 1
    node.scale_source._refs.clear()
    assert _frame(node, 3.5)  # 1.5 s after the last good fit > scale_max_age: unscaled fallback
    assert (_state(node).status, _state(node).reason) == ("fallback", "no_reference")
    assert "rejected(" in node.scale_source.status() and "no_reference=1" in node.scale_source.status()


def test_points_in_the_optical_frame_and_in_another_frame(node, base_depth):
    v, u = np.nonzero(np.isfinite(base_depth))
    pick = np.random.default_rng(1).choice(len(v), 300, replace=False)
    z = 1.5 * base_depth[v[pick], u[pick]]
    pts = np.stack([(u[pick] - K[0, 2]) / K[0, 0] * z, (v[pick] - K[1, 2]) / K[1, 1] * z, z], 1)
    assert cloud_xyz(_cloud(pts, "x", 0)).shape == (300, 3)
    assert _frame(node, 4.0, _cloud(pts, "camera_optical_frame", 4.0))
    assert _state(node).status == "fitted" and _state(node).scale == pytest.approx(1.5, rel=1e-3)
    node.scale_source._refs.clear()
    assert _frame(node, 4.1, _cloud(pts, "base_link", 4.1))
    assert _state(node).reason == "wrong_frame"


def _set(node, **values):
    results = node.set_parameters([Parameter(k, value=v) for k, v in values.items()])
    return all(r.successful for r in results)


def test_scan_fixed_skip_fallback_and_parameter_switching(node, base_depth):
    assert not _set(node, scale_source="lidar")  # unknown source: refused, nothing changes
    assert not _set(node, scale_source="ground_plane")  # camera_height 0: refused
    assert _set(node, scale_source="scan")
    assert node.scale_source._subs and node.scale_source._subs[0].msg_type is LaserScan
    # a level scanner at the optical centre (default scan_xyz / scan_rpy) sees row cy
    row = 2.0 * base_depth[240]
    cols = np.flatnonzero(np.isfinite(row))
    x, z = (cols - K[0, 2]) / K[0, 0] * row[cols], row[cols]
    ang, rng = np.arctan2(-x, z), np.hypot(x, z)
    scan = LaserScan(header=header(5.0, "laser"), angle_min=-0.6, angle_max=0.6,
                     angle_increment=0.002, range_min=0.05, range_max=40.0)
    beams = np.full(int(round(1.2 / 0.002)) + 1, np.inf)
    idx = np.round((ang - scan.angle_min) / scan.angle_increment).astype(int)
    beams[idx] = rng
    scan.ranges = beams.astype(np.float32).tolist()
    assert _frame(node, 5.0, scan)
    s = _state(node)
    assert s.status == "fitted" and s.scale == pytest.approx(2.0, rel=0.02) and s.support > 100
    assert _set(node, scale_source="fixed", fixed_scale=3.0)
    assert _frame(node, 6.0)
    assert (_state(node).status, _state(node).scale) == ("fixed", 3.0)
    assert _set(node, scale_source="sparse_depth", scale_fallback="skip")
    skipped = node.stats.skipped["no_scale"]
    assert not _frame(node, 7.0)  # no reference and no earlier scale: no depth for this frame
    assert node.stats.skipped["no_scale"] == skipped + 1
    assert _state(node).status == "fallback"
    assert _set(node, scale_source="none", scale_fallback="unscaled")
    assert _frame(node, 8.0) and node.pipeline.scaler is None
    assert math.isinf(_state(node).age)  # last published state is from the skipped frame
