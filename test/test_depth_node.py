"""depth_node in-process: every bad input is skipped with a counter, good frames still flow,
and the model can be switched by parameter."""

from __future__ import annotations

import array
import time

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from mono_depth_ros.ros.depth_node import DepthNode  # noqa: E402
from mono_depth_ros.ros.conversions import make_image  # noqa: E402

ALL = {k: True for k in ("depth", "info", "colored", "points", "labels", "seg_colored")}
K = [585.0, 0.0, 320.0, 0.0, 585.0, 240.0, 0.0, 0.0, 1.0]


def header(i: int) -> Header:
    h = Header(frame_id="camera_optical_frame")
    h.stamp.sec, h.stamp.nanosec = 1000 + i, 5
    return h


def info(i: int, k=K, w=640, h=480) -> CameraInfo:
    m = CameraInfo(header=header(i), width=w, height=h)
    m.k = list(k)
    return m


def rgb_frame() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def node(rclpy_context):
    n = DepthNode(context=rclpy_context, parameter_overrides=[
        Parameter("stats_period", value=0.0), Parameter("warn_throttle", value=0.0),
        Parameter("max_depth", value=6.0)])
    yield n
    n.destroy_node()


def test_good_frame_is_processed(node):
    node._on_info(info(1))
    before = node.stats.counts["processed"]
    assert node.process_frame(make_image(header(1), rgb_frame(), "rgb8"), ALL)
    assert node.stats.counts["processed"] == before + 1
    lat = node.stats.percentiles()
    for stage in ("decode", "preprocess", "inference", "postprocess", "cloud", "publish"):
        assert stage in lat


def _bad_image(**fields) -> Image:
    m = make_image(header(2), rgb_frame(), "rgb8")
    for k, v in fields.items():
        setattr(m, k, v)
    return m


@pytest.mark.parametrize("make_msg, reason", [
    (lambda: _bad_image(encoding="yuv422"), "unsupported_encoding"),
    (lambda: _bad_image(data=array.array("B", bytes(100))), "size_mismatch"),
    (lambda: _bad_image(width=0, step=0, data=array.array("B")), "empty_image"),
    (lambda: _bad_image(height=0, data=array.array("B")), "empty_image"),
    (lambda: CompressedImage(header=header(2), format="jpeg",
                             data=array.array("B", b"\xff\xd8\xff\xe0garbage" * 10)),
     "corrupt_compressed"),
    (lambda: make_image(header(2), np.full((480, 640), np.nan, np.float32), "32FC1"), "non_finite"),
])
def test_bad_image_is_skipped_and_counted(node, make_msg, reason):
    node._on_info(info(2))
    before = node.stats.skipped[reason]
    assert node.process_frame(make_msg(), ALL) is False
    assert node.stats.skipped[reason] == before + 1


def test_all_zero_camera_info_is_skipped(node):
    node._on_info(info(3, k=[0.0] * 9))
    before = node.stats.skipped["zero_intrinsics"]
    assert node.process_frame(make_image(header(3), rgb_frame(), "rgb8"), ALL) is False
    assert node.stats.skipped["zero_intrinsics"] == before + 1


def test_camera_info_pairing_exact_then_newest_within_max_age(node):
    """Exact stamp first; else the newest camera_info within camera_info_max_age of the image;
    else the frame is skipped as stale (counted)."""
    node._on_info(info(20))
    assert node.p("camera_info_max_age") == 0.5
    late = header(20)
    late.stamp.nanosec = 400_000_000  # 0.4 s after the newest camera_info
    assert node.process_frame(make_image(late, rgb_frame(), "rgb8"), ALL)
    late.stamp.nanosec = 600_000_000  # 0.6 s: too old
    before = node.stats.skipped["stale_camera_info"]
    assert node.process_frame(make_image(late, rgb_frame(), "rgb8"), ALL) is False
    assert node.stats.skipped["stale_camera_info"] == before + 1
    # exact stamps only
    assert node.set_parameters([Parameter("camera_info_max_age", value=0.0)])[0].successful
    try:
        late.stamp.nanosec = 5  # header(20) + 0 s: exact
        assert node.process_frame(make_image(late, rgb_frame(), "rgb8"), ALL)
        late.stamp.nanosec = 1000
        before = node.stats.skipped["stale_camera_info"]
        assert node.process_frame(make_image(late, rgb_frame(), "rgb8"), ALL) is False
        assert node.stats.skipped["stale_camera_info"] == before + 1
    finally:
        node.set_parameters([Parameter("camera_info_max_age", value=0.5)])


def test_camera_info_of_same_stamp_is_preferred(node):
    node._on_info(info(4))
    node._on_info(info(5, k=[0.0] * 9))  # newest is broken, but frame 4 has its own
    assert node.process_frame(make_image(header(4), rgb_frame(), "rgb8"), ALL)


def test_valid_compressed_and_mono_inputs(node):
    node._on_info(info(6))
    ok, jpg = cv2.imencode(".jpg", rgb_frame())
    msg = CompressedImage(header=header(6), format="jpeg", data=array.array("B", jpg.tobytes()))
    assert node.process_frame(msg, ALL)
    mono16 = (np.arange(480 * 640, dtype=np.uint16) % 4096).reshape(480, 640)
    assert node.process_frame(make_image(header(6), mono16, "mono16"), ALL)
    assert node.process_frame(make_image(header(6), rgb_frame()[..., 0].copy(), "mono8"), ALL)


def test_unknown_model_parameter_is_rejected(node):
    res = node.set_parameters([Parameter("model", value="no_such_net")])[0]
    assert not res.successful
    assert "fastdepth" in res.reason


def test_switch_model_by_parameter(node):
    assert node.estimator.name == "fastdepth"
    res = node.set_parameters([Parameter("model", value="scrx_rgb")])[0]
    assert res.successful
    end = time.monotonic() + 60
    while node.estimator.name != "scrx_rgb" and time.monotonic() < end:
        time.sleep(0.1)
    assert node.estimator.name == "scrx_rgb"
    node._on_info(info(7))
    assert node.process_frame(make_image(header(7), rgb_frame(), "rgb8"), ALL)
    node.set_parameters([Parameter("model", value="fastdepth")])
    end = time.monotonic() + 60
    while node.estimator.name != "fastdepth" and time.monotonic() < end:
        time.sleep(0.1)
    assert node.estimator.name == "fastdepth"


def test_semantic_input_model_publishes_segmentation(rclpy_context):
    """cnn3d_up runs behind unet_seg: the node publishes depth and both segmentation images."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data

    from ros_helpers import spin_until

    n = DepthNode(context=rclpy_context, parameter_overrides=[
        Parameter("model", value="cnn3d_up"), Parameter("input_width", value=128),
        Parameter("input_height", value=64), Parameter("stats_period", value=0.0)])
    listener = Node("seg_listener", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(listener)
    got = {}
    for topic in ("segmentation/labels", "segmentation/colored", "depth/image"):
        listener.create_subscription(Image, topic, lambda m, t=topic: got.setdefault(t, m),
                                     qos_profile_sensor_data)
    try:
        assert n.estimator.frontend is not None and n.estimator.palette is not None
        assert spin_until(ex, lambda: n.pubs["labels"].get_subscription_count() > 0, 10)
        n._on_info(info(8))
        assert n.process_frame(make_image(header(8), rgb_frame(), "rgb8")), dict(n.stats.counts)
        assert spin_until(ex, lambda: len(got) == 3, 10), sorted(got)
        labels = got["segmentation/labels"]
        assert (labels.encoding, labels.height, labels.width) == ("mono8", 480, 640)
        assert max(labels.data) < 14
        assert got["segmentation/colored"].encoding == "bgr8"
        assert got["segmentation/labels"].header.stamp == header(8).stamp
    finally:
        listener.destroy_node()
        n.destroy_node()


def test_obstacle_cloud_excludes_configured_classes(rclpy_context):
    """ssegdep_net: points/obstacles is points with Sky/Road/Sidewalk/Lanemark pixels NaN."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import PointCloud2

    from ros_helpers import spin_until

    n = DepthNode(context=rclpy_context, parameter_overrides=[
        Parameter("model", value="ssegdep_net"), Parameter("input_width", value=128),
        Parameter("input_height", value=64), Parameter("stats_period", value=0.0),
        Parameter("min_depth", value=0.01), Parameter("max_depth", value=1000.0)])
    listener = Node("obstacle_listener", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(listener)
    got = {}
    for topic, typ in (("points", PointCloud2), ("points/obstacles", PointCloud2),
                       ("segmentation/labels", Image)):
        listener.create_subscription(typ, topic, lambda m, t=topic: got.setdefault(t, m),
                                     qos_profile_sensor_data)
    try:
        assert spin_until(ex, lambda: n.pubs["obstacles"].get_subscription_count() > 0, 10)
        assert spin_until(ex, lambda: n.pubs["points"].get_subscription_count() > 0, 10)
        n._on_info(info(9))
        assert n.process_frame(make_image(header(9), rgb_frame(), "rgb8"))
        assert spin_until(ex, lambda: len(got) == 3, 10), sorted(got)
    finally:
        listener.destroy_node()
        n.destroy_node()
    labels = np.frombuffer(got["segmentation/labels"].data, np.uint8).reshape(480, 640)
    z_all = np.frombuffer(got["points"].data, np.float32).reshape(480, 640, 4)[..., 2]
    z_obs = np.frombuffer(got["points/obstacles"].data, np.float32).reshape(480, 640, 4)[..., 2]
    excluded = np.isin(labels, [1, 3, 4, 12])  # Sky, Road, Sidewalk, Lanemark
    assert np.isnan(z_obs[excluded]).all()
    keep = ~excluded & np.isfinite(z_all)
    np.testing.assert_array_equal(z_obs[keep], z_all[keep])
