"""Real cross-process ROS 2 test: depth_node as a subprocess, real 7-Scenes frames over DDS.

Checks what a navigation stack relies on: header (stamp, frame_id) copied from the input,
32FC1 metres at the camera resolution with NaN outside [min_depth, max_depth], an organized
PointCloud2 in the optical frame whose z equals the depth image, NaN for invalid pixels.
"""

from __future__ import annotations


import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from ros_helpers import spin_until, start_process, stop_process  # noqa: E402

from mono_depth_ros.data import SevenScenes  # noqa: E402
from mono_depth_ros.ros.conversions import make_image, stamp_ns  # noqa: E402

MAX_DEPTH = 2.5
QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture(scope="module")
def depth_node_process(tmp_path_factory, rclpy_context):
    import os
    tmp = tmp_path_factory.mktemp("node")
    # same domain / profile as this process's rclpy context (set by rclpy_context)
    env = dict(os.environ)
    proc = start_process(["-m", "mono_depth_ros.ros.depth_node", "--ros-args",
                          "-p", f"max_depth:={MAX_DEPTH}", "-p", "stats_period:=1.0",
                          "-p", "device:=cpu",
                          # reliable QoS (a parameter of the node) so a loaded CI machine cannot
                          # drop frames and make the test flaky; best effort is the default
                          "-p", "input_reliability:=reliable", "-p", "output_reliability:=reliable",
                          "-p", "output_depth:=5"], env, tmp / "node.log")
    yield proc
    stop_process(proc)
    log = (tmp / "node.log").read_text()
    print(log[-3000:])


def test_depth_and_points_cross_process(depth_node_process, rclpy_context, data_dir):
    ds = SevenScenes(data_dir / "7scenes-redkitchen", slice(0, 40, 8))
    node = Node("crossprocess_tester", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    got = {"depth": {}, "points": {}, "info": {}}
    node.create_subscription(Image, "depth/image", lambda m: got["depth"].setdefault(stamp_ns(m.header), m),
                             QOS)
    node.create_subscription(PointCloud2, "points", lambda m: got["points"].setdefault(stamp_ns(m.header), m),
                             QOS)
    node.create_subscription(CameraInfo, "depth/camera_info",
                             lambda m: got["info"].setdefault(stamp_ns(m.header), m), QOS)
    pub_img = node.create_publisher(Image, "image", QOS)
    pub_info = node.create_publisher(CameraInfo, "camera_info", QOS)
    try:
        assert spin_until(ex, lambda: depth_node_process.poll() is not None or (
            pub_img.get_subscription_count() > 0 and node.count_publishers("points") > 0), 90), \
            "depth_node did not come up within 90 s"
        assert depth_node_process.poll() is None, "depth_node exited"
        spin_until(ex, lambda: False, 1.0)  # let the node's publishers match our readers
        sent = {}
        for i, s in enumerate(ds):
            h = Header(frame_id="camera_optical_frame")
            h.stamp.sec, h.stamp.nanosec = 2000 + i, 123
            ci = CameraInfo(header=h, width=640, height=480)
            ci.k = s.K.reshape(9).tolist()
            ci.p = np.hstack([s.K, np.zeros((3, 1))]).reshape(12).tolist()
            pub_info.publish(ci)
            pub_img.publish(make_image(h, s.rgb, "rgb8"))
            sent[stamp_ns(h)] = s
            # one frame at a time: the node keeps only the newest, and we want every frame
            spin_until(ex, lambda: stamp_ns(h) in got["points"], 30)
        assert spin_until(ex, lambda: len(got["points"]) == len(sent), 30), \
            {k: len(v) for k, v in got.items()}
    finally:
        node.destroy_node()
    assert got["depth"], "no depth/image received"
    assert set(got["depth"]) <= set(sent), "output stamps must be the input stamps"
    for st, m in got["depth"].items():
        assert m.header.frame_id == "camera_optical_frame"
        assert (m.encoding, m.height, m.width, m.step) == ("32FC1", 480, 640, 640 * 4)
        depth = np.frombuffer(m.data, np.float32).reshape(480, 640)
        finite = depth[np.isfinite(depth)]
        assert finite.size > 0
        assert finite.max() <= MAX_DEPTH + 1e-6 and finite.min() > 0
        if st in got["info"]:
            assert list(got["info"][st].k) == pytest.approx(sent[st].K.reshape(9).tolist())
        if st in got["points"]:
            c = got["points"][st]
            assert (c.height, c.width, c.point_step, c.row_step, c.is_dense) == (480, 640, 16, 640 * 16, False)
            assert [f.name for f in c.fields] == ["x", "y", "z", "rgb"]
            pts = np.frombuffer(c.data, np.float32).reshape(480, 640, 4)
            z = pts[..., 2]
            np.testing.assert_array_equal(np.isnan(z), np.isnan(depth))
            np.testing.assert_allclose(z[np.isfinite(z)], depth[np.isfinite(depth)])
            # REP 103: right of the principal point x > 0, below it y > 0
            v, u = np.nonzero(np.isfinite(z))
            right, below = u > 330, v > 250
            assert (pts[v[right], u[right], 0] > 0).all() and (pts[v[below], u[below], 1] > 0).all()
            # packed colour = the input pixel
            rgb = sent[st].rgb
            packed = pts[..., 3].view(np.uint32)
            r, g, b = (packed >> 16) & 255, (packed >> 8) & 255, packed & 255
            assert (r == rgb[..., 0]).all() and (g == rgb[..., 1]).all() and (b == rgb[..., 2]).all()


def test_obstacle_cloud_cross_process_on_generated_street(tmp_path, rclpy_context):
    """ssegdep_net in a depth_node subprocess on a generated street frame: points/obstacles has
    NaN exactly at the excluded classes (Sky, Road, Sidewalk, Lanemark) of the published labels,
    and finite points within the depth range elsewhere (where the depth is valid)."""
    import os

    pytest.importorskip("pybullet")
    from mono_depth_ros.data import open_dataset
    from mono_depth_ros.tools.synth import generate
    generate(tmp_path / "street", frames=1, seed=5, width=320, height=192, sequence_length=1)
    s = open_dataset(tmp_path / "street")[0]
    lo, hi = 0.5, 80.0
    # own namespace: the module's fastdepth node is still running on the relative names
    proc = start_process(["-m", "mono_depth_ros.ros.depth_node", "--ros-args", "-r", "__ns:=/street",
                          "-p", "model:=ssegdep_net", "-p", "device:=cpu",
                          "-p", "input_width:=160", "-p", "input_height:=96",
                          "-p", f"min_depth:={lo}", "-p", f"max_depth:={hi}",
                          "-p", "input_reliability:=reliable", "-p", "output_reliability:=reliable",
                          "-p", "output_depth:=5"], dict(os.environ), tmp_path / "node.log")
    node = Node("obstacle_tester", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    got = {}
    node.create_subscription(PointCloud2, "/street/points/obstacles", lambda m: got.setdefault("obs", m), QOS)
    node.create_subscription(Image, "/street/segmentation/labels", lambda m: got.setdefault("labels", m), QOS)
    node.create_subscription(Image, "/street/depth/image", lambda m: got.setdefault("depth", m), QOS)
    pub_img = node.create_publisher(Image, "/street/image", QOS)
    pub_info = node.create_publisher(CameraInfo, "/street/camera_info", QOS)
    try:
        assert spin_until(ex, lambda: proc.poll() is not None or (
            pub_img.get_subscription_count() > 0 and node.count_publishers("/street/points/obstacles") > 0), 90)
        assert proc.poll() is None, (tmp_path / "node.log").read_text()[-2000:]
        spin_until(ex, lambda: False, 1.0)
        h = Header(frame_id="camera_optical_frame")
        h.stamp.sec = 3000
        ci = CameraInfo(header=h, width=320, height=192)
        ci.k = s.K.reshape(9).tolist()
        pub_info.publish(ci)
        pub_img.publish(make_image(h, s.rgb, "rgb8"))
        assert spin_until(ex, lambda: len(got) == 3, 60), sorted(got)
    finally:
        node.destroy_node()
        stop_process(proc)
    labels = np.frombuffer(got["labels"].data, np.uint8).reshape(192, 320)
    depth = np.frombuffer(got["depth"].data, np.float32).reshape(192, 320)
    pts = np.frombuffer(got["obs"].data, np.float32).reshape(192, 320, 4)
    excluded = np.isin(labels, [1, 3, 4, 12])
    assert np.isnan(pts[excluded][:, :3]).all()
    keep = ~excluded & np.isfinite(depth)
    assert np.isfinite(pts[keep][:, :3]).all()
    assert ((pts[keep][:, 2] >= lo) & (pts[keep][:, 2] <= hi)).all()
    assert got["obs"].header.stamp.sec == 3000 and got["obs"].header.frame_id == "camera_optical_frame"


def _run_node_one_frame(tmp_path, rclpy_context, ns, params, topics, frame_dir):
    """Start depth_node in namespace ``ns`` with ``params``, send one 320x240 7-Scenes frame,
    return ``{topic: message}`` for ``topics`` and the node's log."""
    import os

    import cv2
    s = SevenScenes(frame_dir, slice(0, 1))[0]
    rgb = cv2.resize(s.rgb, (320, 240), interpolation=cv2.INTER_AREA)
    args = ["-m", "mono_depth_ros.ros.depth_node", "--ros-args", "-r", f"__ns:={ns}",
            "-p", "device:=cpu", "-p", "input_reliability:=reliable",
            "-p", "output_reliability:=reliable", "-p", "output_depth:=5"]
    for p in params:
        args += ["-p", p]
    log = tmp_path / f"{ns.strip('/')}.log"
    proc = start_process(args, dict(os.environ), log)
    node = Node(f"tester_{ns.strip('/')}", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    got = {}
    for t in topics:
        node.create_subscription(Image, f"{ns}/{t}", lambda m, t=t: got.setdefault(t, m), QOS)
    pub_img = node.create_publisher(Image, f"{ns}/image", QOS)
    pub_info = node.create_publisher(CameraInfo, f"{ns}/camera_info", QOS)
    try:
        assert spin_until(ex, lambda: proc.poll() is not None or (
            pub_img.get_subscription_count() > 0
            and all(node.count_publishers(f"{ns}/{t}") > 0 for t in topics)), 90)
        assert proc.poll() is None, log.read_text()[-3000:]
        spin_until(ex, lambda: False, 1.0)
        h = Header(frame_id="camera_optical_frame")
        h.stamp.sec = 4000
        ci = CameraInfo(header=h, width=640, height=480)  # full-size K: the node rescales it
        ci.k = s.K.reshape(9).tolist()
        pub_info.publish(ci)
        pub_img.publish(make_image(h, rgb, "rgb8"))
        assert spin_until(ex, lambda: len(got) == len(topics), 60), (sorted(got), log.read_text()[-3000:])
    finally:
        node.destroy_node()
        stop_process(proc)
    return got, log.read_text()


def test_hf_model_from_a_local_folder_publishes_depth_relative(tmp_path, rclpy_context, data_dir):
    """A Hugging Face relative model (tiny random Depth Anything V2 checkpoint folder, offline)
    in a depth_node subprocess: depth/relative 32FC1 at the camera resolution, said once in the
    log."""
    pytest.importorskip("transformers")
    from hf_helpers import make_tiny
    folder = make_tiny("depth_anything_v2_small", tmp_path / "da")
    got, log = _run_node_one_frame(
        tmp_path, rclpy_context, "/hf", ["model:=depth_anything_v2_small", f"checkpoint:={folder}"],
        ["depth/relative"], data_dir / "7scenes-redkitchen")
    m = got["depth/relative"]
    assert (m.encoding, m.height, m.width) == ("32FC1", 240, 320) and m.header.stamp.sec == 4000
    rel = np.frombuffer(m.data, np.float32).reshape(240, 320)
    assert np.isfinite(rel).all() and rel.std() > 0
    assert log.count("publishes depth/relative") == 1


def test_exported_onnx_file_runs_in_the_node(tmp_path, rclpy_context, data_dir):
    """``mono-depth-ros export`` of the shipped fastdepth (small input) and ``model:=onnx
    checkpoint:=FILE.onnx`` in a depth_node subprocess: metric depth/image from ONNX Runtime."""
    pytest.importorskip("onnxruntime")
    from mono_depth_ros.tools.export import export_model
    path = export_model("fastdepth", str(tmp_path / "fd.onnx"), input_size=(96, 128))["path"]
    got, log = _run_node_one_frame(
        tmp_path, rclpy_context, "/ort", ["model:=onnx", f"checkpoint:={path}", "max_depth:=5.0"],
        ["depth/image"], data_dir / "7scenes-redkitchen")
    m = got["depth/image"]
    assert (m.encoding, m.height, m.width) == ("32FC1", 240, 320)
    depth = np.frombuffer(m.data, np.float32).reshape(240, 320)
    finite = depth[np.isfinite(depth)]
    assert finite.size > 0.5 * depth.size and 0 < finite.min() and finite.max() <= 5.0
    assert "model=onnx" in log and "backend=onnxruntime" in log
