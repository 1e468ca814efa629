"""What depth_node publishes, read back from the topics: every output carries the input's stamp
and the ``frame_id`` override, depth/camera_info describes the published image (P's camera after
binning, fx != fy), the cloud back-projects with fx on x and fy on y, and pixels that
rectification filled with black are NaN."""

from __future__ import annotations

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, RegionOfInterest  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from mono_depth_ros.core.camera import Rectifier, camera_model  # noqa: E402
from mono_depth_ros.ros.conversions import make_image  # noqa: E402
from mono_depth_ros.ros.depth_node import OUTPUT_TOPICS, DepthNode  # noqa: E402
from ros_helpers import spin_until  # noqa: E402

# Full sensor 640 x 480 read with binning 2 x 1: a 320 x 480 image. K and P differ (what
# camera_calibration writes) and fx != fy in both, so a swapped axis or K used for P shows.
K_FULL = [400.0, 0.0, 330.0, 0.0, 440.0, 236.0, 0.0, 0.0, 1.0]
P_FULL = [360.0, 0.0, 320.0, 0.0, 0.0, 380.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0]
D = [-0.3, 0.09, 0.001, -0.0005, 0.0]
W, H = 320, 480
#: P after image_geometry's binning: x row / 2, y row / 1.
P_IMAGE = np.array([[180.0, 0.0, 160.0], [0.0, 380.0, 240.0], [0.0, 0.0, 1.0]])
STAMP = (1234, 5678)


def _header(frame_id="camera_optical_frame") -> Header:
    h = Header(frame_id=frame_id)
    h.stamp.sec, h.stamp.nanosec = STAMP
    return h


def _info() -> CameraInfo:
    m = CameraInfo(header=_header(), width=640, height=480, distortion_model="plumb_bob",
                   binning_x=2, binning_y=1, roi=RegionOfInterest())
    m.k, m.p, m.d, m.r = K_FULL, P_FULL, D, [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
    return m


def _rgb() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 255, (H, W, 3), dtype=np.uint8)


def _run(context, model: str, topics, extra=()):
    """Start a node with ``frame_id`` overridden, subscribe ``topics``, process one frame and
    return ``{topic: message}``."""
    node = DepthNode(context=context, parameter_overrides=[
        Parameter("model", value=model), Parameter("input_width", value=128),
        Parameter("input_height", value=64), Parameter("stats_period", value=0.0),
        Parameter("device", value="cpu"), Parameter("frame_id", value="override_frame"),
        Parameter("min_depth", value=0.01), Parameter("max_depth", value=1000.0), *extra])
    listener = Node("output_listener", context=context)
    ex = SingleThreadedExecutor(context=context)
    ex.add_node(listener)
    got = {}
    for topic in topics:
        kind = CameraInfo if topic == "depth/camera_info" else dict(OUTPUT_TOPICS.values())[topic]
        listener.create_subscription(kind, topic, lambda m, t=topic: got.setdefault(t, m),
                                     qos_profile_sensor_data)
    try:
        pubs = [node.pub_info, *[p for n, p in node.pubs.items() if OUTPUT_TOPICS[n][0] in topics]]
        assert spin_until(ex, lambda: all(p.get_subscription_count() > 0 for p in pubs), 20)
        node._on_info(_info())
        assert node.process_frame(make_image(_header(), _rgb(), "rgb8")), dict(node.stats.counts)
        assert spin_until(ex, lambda: len(got) == len(topics), 20), sorted(got)
    finally:
        listener.destroy_node()
        node.destroy_node()
    return got


@pytest.fixture(scope="module")
def published(rclpy_context):
    topics = ["depth/image", "depth/camera_info", "depth/colored", "points"]
    return _run(rclpy_context, "fastdepth", topics)


def test_every_output_carries_the_stamp_and_the_frame_id_override(published, rclpy_context):
    seg = _run(rclpy_context, "ssegdep_net",
               ["segmentation/labels", "segmentation/colored", "points/obstacles",
                "depth/camera_info"])
    for topic, msg in {**published, **seg}.items():
        assert msg.header.frame_id == "override_frame", topic
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == STAMP, topic


def test_depth_camera_info_is_the_rectified_binned_camera(published):
    info = published["depth/camera_info"]
    assert (info.width, info.height) == (W, H)
    np.testing.assert_allclose(np.reshape(info.k, (3, 3)), P_IMAGE)
    np.testing.assert_allclose(np.reshape(info.p, (3, 4))[:, :3], P_IMAGE)
    assert not any(info.d) and info.binning_x == info.binning_y == 0
    np.testing.assert_allclose(np.reshape(info.r, (3, 3)), np.eye(3))


def test_cloud_back_projects_with_fx_on_x_and_fy_on_y(published):
    depth = np.frombuffer(published["depth/image"].data, np.float32).reshape(H, W)
    cloud = np.frombuffer(published["points"].data, np.float32).reshape(H, W, -1)
    ok = np.isfinite(depth)
    assert ok.sum() > 0.5 * ok.size
    np.testing.assert_array_equal(cloud[..., 2][ok], depth[ok])
    v, u = np.nonzero(ok)
    (fx, _, cx), (_, fy, cy) = P_IMAGE[0], P_IMAGE[1]
    np.testing.assert_allclose(cloud[..., 0][ok], depth[ok] * (u - cx) / fx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cloud[..., 1][ok], depth[ok] * (v - cy) / fy, rtol=1e-5, atol=1e-6)


def test_pixels_rectification_filled_are_nan(published):
    """The black fill of rectification is not published as depth (nor in the cloud)."""
    valid = Rectifier().valid_mask(camera_model(_info(), W, H))
    assert valid is not None and 0.01 < (~valid).mean() < 0.5
    depth = np.frombuffer(published["depth/image"].data, np.float32).reshape(H, W)
    cloud = np.frombuffer(published["points"].data, np.float32).reshape(H, W, -1)
    assert np.isnan(depth[~valid]).all()
    assert np.isnan(cloud[..., :3][~valid]).all()
    assert np.isfinite(depth[valid]).mean() > 0.9
