"""depth_node in its own process, talked to over DDS as on a robot: REP 2003 QoS (reliable
outputs reach default-QoS subscribers), parameters through the parameter services (every refusal
has a reason, later valid changes apply), /diagnostics levels, the lifecycle services, and
use_sim_time with a bag replayed with --clock. Synthetic frames: no dataset needed."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rclpy.parameter import Parameter, parameter_value_to_python  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from rclpy.qos import (QoSProfile, ReliabilityPolicy, qos_profile_sensor_data)  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from ros_helpers import spin_until, start_process, stop_process, spinning_node  # noqa: E402

from mono_depth_ros.ros.conversions import make_image, stamp_ns  # noqa: E402
from mono_depth_ros.defaults import DEFAULT_MODEL  # noqa: E402

K = [585.0, 0.0, 320.0, 0.0, 585.0, 240.0, 0.0, 0.0, 1.0]
DEFAULT_QOS = QoSProfile(depth=10)  # what `ros2 topic echo` and most nodes use: reliable
RGB = np.random.default_rng(3).integers(0, 255, (480, 640, 3), dtype=np.uint8)


def _node_cmd(ns, *params, lifecycle=False):
    head = (["-c", "from mono_depth_ros.ros.depth_node import main_lifecycle; main_lifecycle()"]
            if lifecycle else ["-m", "mono_depth_ros.ros.depth_node"])
    args = ["-r", f"__ns:={ns}", "-p", "device:=cpu", "-p", "stats_period:=0.0",
            "-p", "warn_throttle:=0.0"]
    for p in params:
        args += ["-p", p]
    return [*head, "--ros-args", *args]


@pytest.fixture
def tester(rclpy_context):
    with spinning_node(rclpy_context, "xp_tester") as t:
        yield t


@pytest.fixture(scope="module")
def plain_node(rclpy_context, tmp_path_factory):
    log = tmp_path_factory.mktemp("xp") / "node.log"
    proc = start_process(_node_cmd("/xp", "max_depth:=6.0", "diagnostics_period:=0.5",
                                   "diag_input_timeout:=30.0"), dict(os.environ), log)
    yield proc
    stop_process(proc)
    print(log.read_text()[-3000:])


class Camera:
    """A REP 2003 camera driver: reliable image + camera_info publishers."""

    def __init__(self, t, ns):
        self.t = t
        self.img = t.node.create_publisher(Image, f"{ns}/image", DEFAULT_QOS)
        self.info = t.node.create_publisher(CameraInfo, f"{ns}/camera_info", DEFAULT_QOS)
        self.i = 0

    def send(self, encoding="rgb8"):
        self.i += 1
        h = Header(frame_id="camera_optical_frame")
        h.stamp.sec, h.stamp.nanosec = 5000 + self.i, 7
        ci = CameraInfo(header=h, width=640, height=480)
        ci.k = K
        self.info.publish(ci)
        msg = make_image(h, RGB, "rgb8")
        msg.encoding = encoding
        self.img.publish(msg)
        return stamp_ns(h)


def _wait_up(t, proc, ns, timeout=120):
    ok = spin_until(t.ex, lambda: proc.poll() is not None or (
        t.node.count_subscribers(f"{ns}/image") > 0
        and t.node.count_publishers(f"{ns}/depth/image") > 0), timeout)
    assert ok and proc.poll() is None, f"depth_node {ns} did not come up"
    spin_until(t.ex, lambda: False, 1.0)  # let the endpoints match


def _frame_through(t, cam, got, timeout=30.0):
    """Send frames until one comes back in ``got`` (a dict stamp -> message); its stamp."""
    for _ in range(5):
        st = cam.send()
        if spin_until(t.ex, lambda: st in got, timeout / 5):
            return st
    raise AssertionError(f"no output for 5 frames; got {sorted(got)}")


def test_outputs_are_reliable_and_reach_default_qos_subscribers(plain_node, tester):
    """REP 2003: the node publishes reliable (a default-QoS subscriber gets data) and
    subscribes best effort (any camera driver matches); best-effort readers get data too."""
    t = tester
    depth, points = {}, {}
    t.node.create_subscription(Image, "/xp/depth/image",
                               lambda m: depth.setdefault(stamp_ns(m.header), m), DEFAULT_QOS)
    t.node.create_subscription(PointCloud2, "/xp/points",
                               lambda m: points.setdefault(stamp_ns(m.header), m),
                               qos_profile_sensor_data)
    cam = Camera(t, "/xp")
    _wait_up(t, plain_node, "/xp")
    pub_qos = t.node.get_publishers_info_by_topic("/xp/depth/image")[0].qos_profile
    sub_qos = t.node.get_subscriptions_info_by_topic("/xp/image")
    sub_qos = [i.qos_profile for i in sub_qos if i.node_name == "depth_node"][0]
    assert pub_qos.reliability == ReliabilityPolicy.RELIABLE
    assert sub_qos.reliability == ReliabilityPolicy.BEST_EFFORT
    st = _frame_through(t, cam, depth)
    assert depth[st].encoding == "32FC1"
    assert spin_until(t.ex, lambda: len(points) > 0, 20), "best-effort reader got no cloud"


def _call(t, future, timeout=60.0):
    assert spin_until(t.ex, future.done, timeout), "service call timed out"
    return future.result()


def test_parameters_over_the_parameter_services(plain_node, tester, tmp_path):
    t = tester
    depth = {}
    t.node.create_subscription(Image, "/xp/depth/image",
                               lambda m: depth.setdefault(stamp_ns(m.header), m), DEFAULT_QOS)
    cam = Camera(t, "/xp")
    _wait_up(t, plain_node, "/xp")
    client = AsyncParameterClient(t.node, "/xp/depth_node")
    assert client.wait_for_services(30.0)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"garbage" * 100)
    refused = [("precision", "fp64", "precision"), ("device", "cuda:7", "cuda:7"),
               ("input_width", 33, "multiple of 32"), ("input_width", -32, "range"),
               ("min_depth", 8.0, "min_depth < max_depth"),
               ("checkpoint", "/nonexistent.pt", "does not exist"),
               ("checkpoint", str(corrupt), "not a loadable weights file"),
               ("model", "no_such_net", "unknown model"),
               ("use_compressed", True, "read-only")]
    for name, value, word in refused:
        res = _call(t, client.set_parameters([Parameter(name, value=value)])).results[0]
        assert not res.successful and word in res.reason, (name, value, res.reason)
    names = ["precision", "input_width", "min_depth", "max_depth", "checkpoint", "model"]
    values = [parameter_value_to_python(v) for v in _call(t, client.get_parameters(names)).values]
    assert values == ["fp32", 0, 0.0, 6.0, "", DEFAULT_MODEL]  # what runs
    # a valid change after the refused ones is applied (it was not, before)
    res = _call(t, client.set_parameters([Parameter("max_depth", value=1.5)])).results[0]
    try:
        assert res.successful, res.reason
        st = _frame_through(t, cam, depth)
        d = np.frombuffer(depth[st].data, np.float32)
        assert np.isfinite(d).any() and np.nanmax(d) <= 1.5
        desc = _call(t, client.describe_parameters(["input_width"])).descriptors[0]
        assert desc.integer_range[0].step == 0  # multiples: the model's, validated per model
    finally:
        _call(t, client.set_parameters([Parameter("max_depth", value=6.0)]))


def test_diagnostics_levels(plain_node, tester):
    """/diagnostics: a status named after the node with rates, latency, model and device; ERROR
    while every frame is skipped, not ERROR once frames are processed."""
    t = tester
    statuses = []
    t.node.create_subscription(
        DiagnosticArray, "/diagnostics",
        lambda m: statuses.extend(s for s in m.status if s.name == "/xp/depth_node"), 10)
    depth = {}  # frames are only decoded while someone subscribes
    t.node.create_subscription(Image, "/xp/depth/image",
                               lambda m: depth.setdefault(stamp_ns(m.header), m), DEFAULT_QOS)
    cam = Camera(t, "/xp")
    _wait_up(t, plain_node, "/xp")
    assert spin_until(t.ex, lambda: statuses, 10)
    keys = {kv.key for kv in statuses[-1].values}
    assert {"input rate (Hz)", "processed rate (Hz)", "drop ratio", "latency p50 (ms)",
            "latency p95 (ms)", "model", "device"} <= keys
    values = {kv.key: kv.value for kv in statuses[-1].values}
    assert values["model"] == DEFAULT_MODEL and values["device"] == "cpu"
    assert statuses[-1].hardware_id == "cpu"

    def seen(pred):
        return any(pred(s) for s in statuses)

    statuses.clear()
    for _ in range(40):  # ~2 s of frames the node must skip
        cam.send(encoding="yuv422")
        spin_until(t.ex, lambda: False, 0.05)
        if seen(lambda s: s.level == b"\x02"):
            break
    assert seen(lambda s: s.level == b"\x02" and "every input frame was skipped" in s.message
                and "unsupported_encoding" in s.message), [s.message for s in statuses]
    statuses.clear()
    for _ in range(60):
        cam.send()
        spin_until(t.ex, lambda: False, 0.1)
        if seen(lambda s: s.level != b"\x02" and float(
                {kv.key: kv.value for kv in s.values}["processed rate (Hz)"]) > 0):
            break
    assert seen(lambda s: s.level != b"\x02"), [s.message for s in statuses]


def _transition(t, ns, tid):
    cli = t.node.create_client(ChangeState, f"{ns}/depth_node/change_state")
    assert cli.wait_for_service(timeout_sec=30.0)
    return _call(t, cli.call_async(ChangeState.Request(transition=Transition(id=tid)))).success


def _state(t, ns):
    cli = t.node.create_client(GetState, f"{ns}/depth_node/get_state")
    assert cli.wait_for_service(timeout_sec=30.0)
    return _call(t, cli.call_async(GetState.Request())).current_state.label


def test_lifecycle_node_over_its_services(rclpy_context, tester, tmp_path):
    t = tester
    proc = start_process(_node_cmd("/lc", lifecycle=True), dict(os.environ), tmp_path / "lc.log")
    try:
        assert spin_until(t.ex, lambda: proc.poll() is not None or t.node.count_publishers(
            "/diagnostics") > 0 and "/lc" in str(t.node.get_node_names_and_namespaces()), 60)
        assert _state(t, "/lc") == "unconfigured"
        assert t.node.count_subscribers("/lc/image") == 0
        assert _transition(t, "/lc", Transition.TRANSITION_CONFIGURE)
        assert _state(t, "/lc") == "inactive"
        assert _transition(t, "/lc", Transition.TRANSITION_ACTIVATE)
        assert spin_until(t.ex, lambda: t.node.count_subscribers("/lc/image") == 1
                          and t.node.count_publishers("/lc/points") == 1, 20)
        depth = {}
        t.node.create_subscription(Image, "/lc/depth/image",
                                   lambda m: depth.setdefault(stamp_ns(m.header), m), DEFAULT_QOS)
        spin_until(t.ex, lambda: False, 1.0)
        _frame_through(t, Camera(t, "/lc"), depth)
        assert _transition(t, "/lc", Transition.TRANSITION_DEACTIVATE)
        assert spin_until(t.ex, lambda: t.node.count_subscribers("/lc/image") == 0, 20)
        assert _transition(t, "/lc", Transition.TRANSITION_CLEANUP)
        assert _state(t, "/lc") == "unconfigured"
    finally:
        stop_process(proc)
    log = (tmp_path / "lc.log").read_text()
    assert proc.returncode == 0, log[-3000:]


def test_lifecycle_node_autostart(rclpy_context, tester, tmp_path):
    t = tester
    proc = start_process(_node_cmd("/lca", "autostart:=true", lifecycle=True), dict(os.environ),
                         tmp_path / "lca.log")
    try:
        _wait_up(t, proc, "/lca")
        assert _state(t, "/lca") == "active"
    finally:
        stop_process(proc)


def test_use_sim_time_with_a_bag_replayed_with_clock(rclpy_context, tester, tmp_path):
    """`mono-depth-ros play --clock` publishes the bag's time on /clock; a node started with
    use_sim_time:=true stamps its /diagnostics with it (bag time is 2001, not now)."""
    from mono_depth_ros.data.bag import write_dataset_bag
    t0 = 10**18
    Kmat = np.array(K).reshape(3, 3)
    write_dataset_bag([SimpleNamespace(rgb=RGB, K=Kmat, depth=None, stamp_ns=t0 + i * 10**8)
                       for i in range(20)], tmp_path / "bag")
    t = tester
    clocks, diag_stamps, depth = [], [], {}
    t.node.create_subscription(Clock, "/clock", lambda m: clocks.append(
        m.clock.sec * 10**9 + m.clock.nanosec), qos_profile_sensor_data)
    t.node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diag_stamps.append(
        stamp_ns(m.header)) if any(s.name == "/sim/depth_node" for s in m.status) else None, 10)
    t.node.create_subscription(Image, "/sim/depth/image",
                               lambda m: depth.setdefault(stamp_ns(m.header), m), DEFAULT_QOS)
    proc = start_process(_node_cmd("/sim", "use_sim_time:=true", "diagnostics_period:=0.2"),
                         dict(os.environ), tmp_path / "sim.log")
    try:
        _wait_up(t, proc, "/sim")
        play = subprocess.Popen(
            [sys.executable, "-m", "mono_depth_ros.tools.cli", "play", str(tmp_path / "bag"),
             "--clock", "50", "--remap", "/camera/image_raw:=/sim/image",
             "/camera/camera_info:=/sim/camera_info", "--start-delay", "0.5",
             # discovery is not instant on a loaded machine: start once the node subscribes
             "--wait-for", "/camera/image_raw", "/camera/camera_info", "--wait-timeout", "60"],
            env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert spin_until(t.ex, lambda: play.poll() is not None, 90), "player did not finish"
        assert play.returncode == 0, play.stdout.read()[-2000:]
        spin_until(t.ex, lambda: len(depth) > 0 and diag_stamps, 20)
    finally:
        stop_process(proc)
    assert clocks and all(t0 <= c <= t0 + 2 * 10**9 for c in clocks)
    assert clocks == sorted(clocks)
    assert depth and all(t0 <= st < t0 + 2 * 10**9 for st in depth)
    sim = [s for s in diag_stamps if s]
    assert sim and all(t0 <= s <= t0 + 3 * 10**9 for s in sim), diag_stamps
