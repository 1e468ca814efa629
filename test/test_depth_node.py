"""depth_node in-process: every bad input is skipped with a counter, good frames still flow,
every invalid parameter is refused with a reason while valid changes apply at once, and the
managed (lifecycle) node loads, starts, stops and frees the model."""

from __future__ import annotations

import array
import time

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from mono_depth_ros.defaults import DEFAULT_MODEL  # noqa: E402
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
        Parameter("max_depth", value=6.0), Parameter("device", value="cpu")])
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


def _corrupt_jpeg() -> bytes:
    """A JPEG with bytes changed mid-scan: OpenCV would still decode a damaged picture."""
    ok, buf = cv2.imencode(".jpg", rgb_frame())
    data = bytearray(buf.tobytes())
    for i in range(len(data) // 2, len(data) // 2 + 40, 7):
        data[i] = (data[i] + 77) % 256
    return bytes(data)


def _png_bomb() -> bytes:
    """A PNG header claiming 60000 x 60000 pixels (3.6 gigapixels)."""
    import struct
    import zlib
    body = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(body)) + b"IHDR" + body
            + struct.pack(">I", zlib.crc32(b"IHDR" + body)))


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
    (lambda: make_image(header(2), np.full((480, 640), 2.0, np.float32), "32FC1"), "depth_as_camera"),
    (lambda: make_image(header(2), np.full((480, 640), 2000, np.uint16), "16UC1"), "depth_as_camera"),
    (lambda: CompressedImage(header=header(2), format="jpeg", data=array.array("B", _corrupt_jpeg())),
     "corrupt_compressed"),
    (lambda: CompressedImage(header=header(2), format="png", data=array.array("B", _png_bomb())),
     "too_large"),
    (lambda: make_image(header(2), rgb_frame()[:240].copy(), "rgb8"), "camera_info_size_mismatch"),
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


@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_ckpt")
    (tmp / "corrupt.pt").write_bytes(b"not a checkpoint" * 64)
    from mono_depth_ros.models import create_model, save_checkpoint
    return {"corrupt": str(tmp / "corrupt.pt"),
            "other_model": str(save_checkpoint(create_model("scrx_rgb"), tmp / "scrx.pt"))}


#: (parameter, value, words of the refusal's reason); the module's node runs the default model on the
#: CPU with max_depth 6.
REFUSED = [
    ("model", "no_such_net", "fastdepth"),
    ("precision", "fp64", "precision"),
    ("precision", "fp16", "CUDA"),
    ("device", "cuda:7", "cuda:7"),
    ("device", "gpu", "gpu"),
    ("input_width", 33, "multiple of 32"),
    ("input_width", -32, "range"),
    ("input_height", 100, "multiple of 32"),
    ("min_depth", 8.0, "min_depth < max_depth"),
    ("max_depth", -1.0, "range"),
    ("checkpoint", "/nonexistent/weights.pt", "does not exist"),
    ("checkpoint", "@corrupt", "not a loadable weights file"),
    ("checkpoint", "@other_model", "holds model 'scrx_rgb'"),
    ("seg_checkpoint", "/nonexistent/seg.pt", "does not exist"),
    ("colored_min", 9.0, "colored_min < colored_max"),
    ("cloud_decimation", 0, "range"),
    ("use_compressed", True, "read-only"),
    ("output_reliability", "best_effort", "read-only"),
    ("input_depth", 5, "read-only"),
    ("diagnostics_period", 2.0, "read-only"),
]


@pytest.mark.parametrize("name, value, words", REFUSED, ids=[f"{n}={v}" for n, v, _ in REFUSED])
def test_invalid_parameter_is_refused_and_nothing_changes(node, bad_checkpoints, name, value,
                                                         words):
    if isinstance(value, str) and value.startswith("@"):
        value = bad_checkpoints[value[1:]]
    before, est = node.p(name), node.estimator
    res = node.set_parameters([Parameter(name, value=value)])[0]
    assert not res.successful
    assert words in res.reason, res.reason
    assert node.p(name) == before  # param get reports what runs
    assert node.estimator is est


def test_valid_change_after_refused_ones_applies_at_once(node):
    """The reported bug: after a refused change, later valid changes were reported but never
    applied. Now the network is rebuilt before the change is accepted."""
    for name, value in (("precision", "fp64"), ("min_depth", 8.0), ("checkpoint", "/nope.pt")):
        assert not node.set_parameters([Parameter(name, value=value)])[0].successful
    try:
        assert node.set_parameters([Parameter("max_depth", value=1.5)])[0].successful
        assert node.p("max_depth") == 1.5 and node.estimator.max_depth == 1.5
        node._on_info(info(30))
        res = node.pipeline.process(rgb_frame(), np.array(K).reshape(3, 3), ["depth"])
        finite = res.depth[np.isfinite(res.depth)]
        assert finite.size and finite.max() <= 1.5
    finally:
        assert node.set_parameters([Parameter("max_depth", value=6.0)])[0].successful
    assert node.estimator.max_depth == 6.0


def test_atomic_change_of_both_depth_limits(node):
    """min and max moved together: validated as one configuration."""
    res = node.set_parameters_atomically([Parameter("min_depth", value=7.0),
                                          Parameter("max_depth", value=9.0)])
    try:
        assert res.successful, res.reason
        assert (node.estimator.min_depth, node.estimator.max_depth) == (7.0, 9.0)
    finally:
        node.set_parameters_atomically([Parameter("min_depth", value=0.0),
                                        Parameter("max_depth", value=6.0)])


def test_pipeline_parameter_applies_before_the_next_frame(node):
    assert node.set_parameters([Parameter("cloud_decimation", value=4)])[0].successful
    try:
        assert node.pipeline.config.cloud_decimation == 4
    finally:
        node.set_parameters([Parameter("cloud_decimation", value=1)])


def test_descriptors_carry_ranges_and_read_only(node):
    d = node.describe_parameter("input_width")
    assert (d.integer_range[0].from_value, d.integer_range[0].to_value,
            d.integer_range[0].step) == (0, 4096, 0)  # multiples: the model's (validated)
    assert node.describe_parameter("max_depth").floating_point_range[0].to_value == 1000.0
    assert node.describe_parameter("output_reliability").read_only
    assert "best_effort" in node.describe_parameter("input_reliability").additional_constraints
    assert not node.describe_parameter("model").read_only


def test_frame_id_override_and_empty_frame_warning(node):
    node._on_info(info(31))
    h = header(31)
    h.frame_id = ""
    assert node._output_header(h).frame_id == ""
    assert node.stats.counts["empty_frame_id"] >= 1
    assert node.set_parameters([Parameter("frame_id", value="cam_optical")])[0].successful
    try:
        before = node.stats.counts["frame_id_replaced"]
        out = node._output_header(header(31))
        assert out.frame_id == "cam_optical" and out.stamp == header(31).stamp
        assert node.stats.counts["frame_id_replaced"] == before + 1
        assert "frame_id:camera_optical_frame" in node._warned  # warned (once per input frame)
        before = node.stats.counts["frame_id_replaced"]
        assert node.process_frame(make_image(header(31), rgb_frame(), "rgb8"), ALL)
        assert node.stats.counts["frame_id_replaced"] == before + 1  # counted once a frame
    finally:
        node.set_parameters([Parameter("frame_id", value="")])


def test_health_report_names_model_and_device(node):
    node._on_info(info(32))
    assert node.process_frame(make_image(header(32), rgb_frame(), "rgb8"), ALL)
    values = dict(node.health_report().values)
    assert values["model"] == DEFAULT_MODEL and values["device"] == "cpu"
    assert float(values["latency p95 (ms)"]) > 0 and values["state"] == "active"


def test_switch_model_by_parameter(node):
    assert node.estimator.name == DEFAULT_MODEL
    res = node.set_parameters([Parameter("model", value="scrx_rgb")])[0]
    assert res.successful
    end = time.monotonic() + 60
    while node.estimator.name != "scrx_rgb" and time.monotonic() < end:
        time.sleep(0.1)
    assert node.estimator.name == "scrx_rgb"
    node._on_info(info(7))
    assert node.process_frame(make_image(header(7), rgb_frame(), "rgb8"), ALL)
    node.set_parameters([Parameter("model", value=DEFAULT_MODEL)])
    end = time.monotonic() + 60
    while node.estimator.name != DEFAULT_MODEL and time.monotonic() < end:
        time.sleep(0.1)
    assert node.estimator.name == DEFAULT_MODEL


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


def test_lifecycle_node_transitions(rclpy_context):
    """configure loads the model (FAILURE with a bad configuration), activate subscribes and
    publishes, deactivate stops, cleanup frees the model."""
    from mono_depth_ros.ros.depth_node import LifecycleDepthNode
    n = LifecycleDepthNode(context=rclpy_context, namespace="/managed", parameter_overrides=[
        Parameter("device", value="cpu"), Parameter("stats_period", value=0.0),
        Parameter("checkpoint", value="/nonexistent/weights.pt")])
    state = lambda: n._state_machine.current_state[1]  # noqa: E731
    try:
        assert state() == "unconfigured" and n.estimator is None
        assert n.count_subscribers("/managed/image") == 0
        assert n.trigger_configure() != TransitionCallbackReturn.SUCCESS
        assert state() == "unconfigured" and n.estimator is None
        # validated while unconfigured too
        assert not n.set_parameters([Parameter("precision", value="fp64")])[0].successful
        assert n.set_parameters([Parameter("checkpoint", value="")])[0].successful
        assert n.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert state() == "inactive" and n.estimator.name == DEFAULT_MODEL
        assert n.count_subscribers("/managed/image") == 0
        assert n.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert state() == "active" and n.count_subscribers("/managed/image") == 1
        assert n.count_publishers("/managed/points") == 1
        n._on_info(info(40))
        assert n.process_frame(make_image(header(40), rgb_frame(), "rgb8"), ALL)
        assert n.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert state() == "inactive" and n.count_subscribers("/managed/image") == 0
        assert n.count_publishers("/managed/points") == 0
        assert n.health_report().level == 0  # inactive on purpose is not a fault
        assert n.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert state() == "unconfigured" and n.estimator is None
    finally:
        n.destroy_node()


def test_backend_parameter_is_validated(node):
    res = node.set_parameters([Parameter("backend", value="tensorflow")])[0]
    assert not res.successful and "torch" in res.reason and "onnxruntime" in res.reason
    assert node.p("backend") == "auto"


def test_device_path_on_runs_the_frame_through_the_device_cloud(node):
    """``device_path:=on`` (here on the CPU, the same code as on CUDA) rebuilds the network with
    the device path; frames then get their cloud from the estimator and still flow."""
    assert node.set_parameters([Parameter("device_path", value="on")])[0].successful
    try:
        est = node.pipeline.estimator
        assert est.builds_clouds
        node._on_info(info(40))
        before = node.stats.counts["processed"]
        rgb = rgb_frame()
        assert node.process_frame(make_image(header(40), rgb, "rgb8"), ALL)
        assert node.stats.counts["processed"] == before + 1
        res = node.pipeline.process(rgb, np.array(K).reshape(3, 3), ("depth", "points"))
        assert res.points.points.shape == (480, 640, 4)
        z = res.points.points[..., 2]
        assert np.array_equal(np.isnan(z), np.isnan(res.depth))
        assert np.allclose(z[np.isfinite(z)], res.depth[np.isfinite(res.depth)])
    finally:
        assert node.set_parameters([Parameter("device_path", value="auto")])[0].successful
    assert not node.pipeline.estimator.builds_clouds
    res = node.set_parameters([Parameter("device_path", value="gpu")])[0]
    assert not res.successful and "device_path" in res.reason
