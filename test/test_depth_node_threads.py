"""depth_node's threads and life cycle: the timers never read what the worker is changing, a
stop waits for the frame in flight however long it takes, deactivate closes every subscription
(references included), and the diagnostics keep reporting on a steady clock when a bag and its
/clock stop (use_sim_time)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.lifecycle import TransitionCallbackReturn  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from mono_depth_ros.ros.conversions import make_image  # noqa: E402
from mono_depth_ros.ros.depth_node import DepthNode, LifecycleDepthNode  # noqa: E402
from ros_helpers import spin_until  # noqa: E402

BASE = [Parameter("device", value="cpu"), Parameter("stats_period", value=0.0),
        Parameter("input_width", value=128), Parameter("input_height", value=96)]


def _header(i: int) -> Header:
    h = Header(frame_id="camera_optical_frame")
    h.stamp.sec, h.stamp.nanosec = 2000 + i, 0
    return h


def _image(i: int):
    rgb = np.random.default_rng(i).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    return make_image(_header(i), rgb, "rgb8")


def _info(i: int) -> CameraInfo:
    m = CameraInfo(header=_header(i), width=128, height=96)
    m.k = [100.0, 0.0, 64.0, 0.0, 100.0, 48.0, 0.0, 0.0, 1.0]
    return m


def _wait(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_timers_never_read_worker_state_mid_frame(rclpy_context):
    """While the worker runs a frame (it holds the frame lock), the stats line and the
    diagnostics use the values refreshed at the end of the last frame instead of reading the
    worker's dicts (the scaler's rejection counters) as it changes them."""
    node = DepthNode(context=rclpy_context, namespace="/snap", parameter_overrides=BASE)
    in_frame = threading.Event()
    calls = []

    def probe():
        if in_frame.is_set():
            raise RuntimeError("read mid-frame")
        calls.append(1)
        return {"probe": str(len(calls))}

    def status():
        if in_frame.is_set():
            raise RuntimeError("status read mid-frame")
        return " probe-status"

    try:
        node.add_diagnostic_source(probe)
        node.scale_source.status = status
        # a frame through the real worker (no subscriber: counted as no_subscribers) refreshes
        # the snapshots at its end
        before = len(calls)
        node._on_info(_info(1))
        node._on_image(_image(1))
        assert _wait(lambda: len(calls) > before, 30), "the worker never refreshed the sources"
        release = threading.Event()

        def fake_frame():  # what the worker does: hold the frame lock while it mutates
            with node._frame_lock:
                in_frame.set()
                release.wait(30)
                in_frame.clear()

        t = threading.Thread(target=fake_frame)
        t.start()
        try:
            assert in_frame.wait(10)
            report = node.health_report()  # must not call probe / status now
            node._log_stats()
            assert dict(report.values)["probe"] == str(len(calls))
        finally:
            release.set()
            t.join(30)
        assert dict(node.health_report().values)["probe"] == str(len(calls))  # fresh when idle
    finally:
        node.destroy_node()


class _ScaledJoin:
    """The worker thread seen through a clock 100x fast: ``join(timeout)`` waits timeout / 100,
    so a 30 s cut-off shows in 0.3 s."""

    def __init__(self, thread):
        self.thread = thread

    def join(self, timeout=None):
        self.thread.join(None if timeout is None else timeout / 100.0)

    def is_alive(self):
        return self.thread.is_alive()


def test_deactivate_waits_for_a_long_frame(rclpy_context):
    """A first-frame export or engine build can outlast any fixed timeout: deactivate waits for
    the frame (its publishers stay until it ends), then stops."""
    n = LifecycleDepthNode(context=rclpy_context, namespace="/slow", parameter_overrides=BASE)
    started, release, finished = threading.Event(), threading.Event(), []

    def slow_frame(msg, wanted=None, received_at=None):
        started.set()
        release.wait(60)
        finished.append(len(n.pubs))  # the publishers still exist when the frame publishes
        return True

    try:
        assert n.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert n.trigger_activate() == TransitionCallbackReturn.SUCCESS
        n.process_frame = slow_frame
        n._worker = _ScaledJoin(n._worker)
        n._on_image(_image(2))
        assert started.wait(30)
        result = []
        stopper = threading.Thread(target=lambda: result.append(n.trigger_deactivate()))
        stopper.start()
        time.sleep(2.0)  # 200 s on the scaled clock: far beyond the old 30 s cut-off
        assert stopper.is_alive() and n.pubs, "deactivate stopped waiting for the frame"
        release.set()
        stopper.join(60)
        assert not stopper.is_alive() and result == [TransitionCallbackReturn.SUCCESS]
        assert finished and finished[0] > 0
        assert n._worker is None and not n.pubs
    finally:
        release.set()
        n.destroy_node()


def test_deactivate_removes_the_reference_subscriptions(rclpy_context):
    n = LifecycleDepthNode(context=rclpy_context, namespace="/refs", parameter_overrides=[
        *BASE, Parameter("scale_source", value="sparse_depth")])
    topics = ("/refs/sparse_depth", "/refs/sparse_points")
    count = lambda: [n.count_subscribers(t) for t in topics]  # noqa: E731
    try:
        assert count() == [0, 0]  # unconfigured: nothing subscribed
        assert n.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert count() == [0, 0]
        assert n.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert count() == [1, 1]
        assert n.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert count() == [0, 0] and n.count_subscribers("/refs/image") == 0
        # a source changed while inactive subscribes only at the next activate
        assert n.set_parameters_atomically([Parameter("scan_use_tf", value=False),
                                            Parameter("scale_source", value="scan")]).successful
        assert n.count_subscribers("/refs/scan") == 0
        assert n.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert n.count_subscribers("/refs/scan") == 1 and count() == [0, 0]
    finally:
        n.destroy_node()


def test_diagnostics_keep_reporting_when_the_bag_and_clock_stop(rclpy_context):
    """use_sim_time: one /clock message and one image, then the 'bag' stops. The ROS clock
    stands still, yet /diagnostics keeps coming and warns that the input stopped."""
    node = DepthNode(context=rclpy_context, namespace="/sim", parameter_overrides=[
        *BASE, Parameter("use_sim_time", value=True),
        Parameter("diagnostics_period", value=0.2), Parameter("diag_input_timeout", value=0.5)])
    peer = Node("bag_and_monitor", context=rclpy_context)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    ex.add_node(peer)
    got = []
    peer.create_subscription(DiagnosticArray, "/diagnostics",
                             lambda m: got.extend(s for s in m.status if "/sim/" in s.name), 10)
    clock_pub = peer.create_publisher(Clock, "/clock", 10)
    try:
        assert spin_until(ex, lambda: clock_pub.get_subscription_count() > 0, 20)
        clock_pub.publish(Clock(clock=_header(3).stamp))
        assert spin_until(ex, lambda: node.get_clock().now().nanoseconds > 0, 20)
        node._on_info(_info(3))
        node._on_image(_image(3))
        # the bag has stopped: nothing more on /clock or the image topic
        assert spin_until(ex, lambda: any("no input image for" in s.message for s in got), 30), \
            [s.message for s in got]
        warn = [s for s in got if "no input image for" in s.message][-1]
        assert warn.level == bytes([1])  # WARN
    finally:
        ex.shutdown()
        peer.destroy_node()
        node.destroy_node()
