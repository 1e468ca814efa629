"""Stopping the project's ROS processes the way launch and a terminal do: SIGINT / SIGTERM while
frames stream.

* depth_node, SIGINT 10 times in a row while a camera streams into it: exit 0 every time, its final
  stats line logged, and no ``Traceback``, ``RCLError`` or ``Failed to publish log message to
  rosout`` (what rclpy prints when something is logged after the context went away).
* the managed node on SIGTERM (what launch sends after SIGINT): exit 0 as well.
* ``mono-depth-ros play --loop`` on SIGINT, 640x480 frames as fast as it can (a publish is
  nearly always in progress): exit 130 (interrupted), what it published printed, no traceback;
  ``mono-depth-ros record`` on SIGINT (its normal stop): exit 0 with its counts.

Every wait is bounded; a process that does not stop is killed and the test fails.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.qos import QoSProfile  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from ros_helpers import spin_until, start_process, spinning_node  # noqa: E402

from mono_depth_ros.ros.conversions import make_image  # noqa: E402

ROUNDS = 10
#: What must never appear in the output of a process stopped by a signal.
FORBIDDEN = ("Traceback", "RCLError", "Failed to publish log message to rosout")
K = [585.0, 0.0, 320.0, 0.0, 585.0, 240.0, 0.0, 0.0, 1.0]
RGB = np.random.default_rng(5).integers(0, 255, (240, 320, 3), dtype=np.uint8)
VGA = np.random.default_rng(6).integers(0, 255, (480, 640, 3), dtype=np.uint8)
QOS = QoSProfile(depth=10)


@pytest.fixture(scope="module")
def tester(rclpy_context):
    with spinning_node(rclpy_context, "shutdown_tester") as t:
        yield t


def _node_cmd(ns, lifecycle=False):
    head = (["-c", "from mono_depth_ros.ros.depth_node import main_lifecycle; main_lifecycle()"]
            if lifecycle else ["-m", "mono_depth_ros.ros.depth_node"])
    return [*head, "--ros-args", "-r", f"__ns:={ns}", "-p", "device:=cpu",
            "-p", "warn_throttle:=0.0", "-p", "diagnostics_period:=0.2",
            *(["-p", "autostart:=true"] if lifecycle else [])]


class _Camera:
    """Streams image + camera_info into ``ns`` and counts the depth images coming back."""

    def __init__(self, t, ns):
        self.t, self.ns, self.i = t, ns, 0
        self.img = t.node.create_publisher(Image, f"{ns}/image", QOS)
        self.info = t.node.create_publisher(CameraInfo, f"{ns}/camera_info", QOS)
        self.got = 0
        self.sub = t.node.create_subscription(Image, f"{ns}/depth/image", self._on_depth, QOS)

    def _on_depth(self, _msg):
        self.got += 1

    def send(self):
        self.i += 1
        h = Header(frame_id="camera_optical_frame")
        h.stamp.sec, h.stamp.nanosec = 1000 + self.i, 0
        ci = CameraInfo(header=h, width=RGB.shape[1], height=RGB.shape[0])
        ci.k = K
        self.info.publish(ci)
        self.img.publish(make_image(h, RGB, "rgb8"))

    def stream(self, seconds, until=lambda: False, hz=30.0):
        """Send frames at ``hz`` for up to ``seconds`` (spinning between), or until ``until()``."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and not until():
            self.send()
            spin_until(self.t.ex, until, 1.0 / hz)
        return until()

    def close(self):
        for ent in (self.img, self.info):
            self.t.node.destroy_publisher(ent)
        self.t.node.destroy_subscription(self.sub)


def _wait_exit(proc, timeout):
    """Exit code of ``proc`` within ``timeout`` s; None (and the process killed) when it hung."""
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        return None


def _check_output(text, code, want):
    assert code == want, f"exit {code}, want {want}:\n{text[-3000:]}"
    for bad in FORBIDDEN:
        assert bad not in text, f"{bad!r} in the output:\n{text[-3000:]}"


def _start(tmp_path, name, ns, lifecycle=False):
    log = tmp_path / f"{name}.log"
    return SimpleNamespace(proc=start_process(_node_cmd(ns, lifecycle), dict(os.environ), log),
                           log=log, name=name, ns=ns)


def _kill(node):
    if node is not None and node.proc.poll() is None:
        node.proc.kill()
        node.proc.wait(timeout=10)


def _stop_while_streaming(t, node, sig):
    """Stream into a started node until depth comes back, signal it mid-stream; returns
    (exit code, output)."""
    proc, ns = node.proc, node.ns
    cam = _Camera(t, ns)
    try:
        up = spin_until(t.ex, lambda: proc.poll() is not None or (
            t.node.count_subscribers(f"{ns}/image") > 0
            and t.node.count_publishers(f"{ns}/depth/image") > 0), 90)
        assert up and proc.poll() is None, f"{node.name} did not come up:\n" \
                                           f"{node.log.read_text()[-3000:]}"
        assert cam.stream(30.0, lambda: cam.got >= 2), f"{node.name}: no depth came back"
        cam.stream(random.uniform(0.0, 0.3))  # signal at a random point of a frame
        proc.send_signal(sig)
        cam.stream(0.5, lambda: proc.poll() is not None)  # frames keep arriving while it stops
        code = _wait_exit(proc, 30)
    finally:
        cam.close()
        _kill(node)
    return code, node.log.read_text()


def test_depth_node_exits_0_on_sigint_while_streaming_10_times(rclpy_context, tester, tmp_path):
    t0 = time.monotonic()
    nxt = _start(tmp_path, "round0", "/sd0")
    try:
        for i in range(ROUNDS):
            node = nxt
            # the next node starts now: its start-up (mostly imports) overlaps this round
            nxt = _start(tmp_path, f"round{i + 1}", f"/sd{i + 1}") if i + 1 < ROUNDS else None
            code, text = _stop_while_streaming(tester, node, signal.SIGINT)
            _check_output(text, code, 0)
            assert "final: " in text, text[-3000:]  # the last stats line, logged before shutdown
    finally:
        _kill(nxt)
    print(f"{ROUNDS} rounds in {time.monotonic() - t0:.1f} s")


def test_lifecycle_node_exits_0_on_sigterm(rclpy_context, tester, tmp_path):
    code, text = _stop_while_streaming(tester, _start(tmp_path, "lifecycle", "/sdlc", True),
                                       signal.SIGTERM)
    _check_output(text, code, 0)
    assert "final: " in text


def _bag(tmp_path):
    from mono_depth_ros.data.bag import write_dataset_bag
    Kmat = np.array(K).reshape(3, 3)
    write_dataset_bag([SimpleNamespace(rgb=VGA, K=Kmat, depth=None, stamp_ns=10**18 + i * 10**7)
                       for i in range(10)], tmp_path / "bag")
    return tmp_path / "bag"


def test_play_loop_exits_130_on_sigint_and_record_0(rclpy_context, tester, tmp_path):
    bag = _bag(tmp_path)
    t = tester
    got = []
    sub = t.node.create_subscription(Image, "/sdplay/image_raw", lambda m: got.append(1), QOS)
    rec = start_process(["-m", "mono_depth_ros.tools.cli", "record", str(tmp_path / "out"),
                         "/sdplay/image_raw:sensor_msgs/msg/Image"], dict(os.environ),
                        tmp_path / "rec.log")
    try:
        for i in range(3):
            n = len(got)
            play = start_process(["-m", "mono_depth_ros.tools.cli", "play", str(bag), "--loop",
                                  "--rate", "1000", "--topics", "/camera/image_raw",
                                  "--remap", "/camera/image_raw:=/sdplay/image_raw"],
                                 dict(os.environ), tmp_path / f"play{i}.log")
            try:
                assert spin_until(t.ex, lambda: play.poll() is not None or len(got) > n + 25,
                                  60), "play --loop published nothing"
                spin_until(t.ex, lambda: False, random.uniform(0.0, 0.2))
                play.send_signal(signal.SIGINT)
                code = _wait_exit(play, 20)
            finally:
                if play.poll() is None:
                    play.kill()
            text = (tmp_path / f"play{i}.log").read_text()
            _check_output(text, code, 130)
            assert "published " in text and " messages on /camera/image_raw" in text, text
        rec.send_signal(signal.SIGINT)
        code = _wait_exit(rec, 20)
    finally:
        t.node.destroy_subscription(sub)
        if rec.poll() is None:
            rec.kill()
    text = (tmp_path / "rec.log").read_text()
    _check_output(text, code, 0)
    assert "recorded " in text and "messages on /sdplay/image_raw" in text, text


def test_stop_request_turns_signals_into_a_flag_and_interrupts_only_start_up():
    from mono_depth_ros.ros.shutdown import StopRequest
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    stop = StopRequest().install()
    try:
        assert not stop.requested and not stop.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)  # no exception: only the flag
        assert stop.sleep(5.0) and stop.requested and stop.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):  # already requested: start-up does not begin
            with stop.interrupting():
                pass
        stop.event.clear()
        with pytest.raises(KeyboardInterrupt):
            with stop.interrupting():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5.0)  # interrupted at once
        assert stop.signum == signal.SIGTERM  # the first signal is the one reported
        os.kill(os.getpid(), signal.SIGINT)  # outside the block: a flag again
        assert stop.sleep(5.0)
    finally:
        stop.restore()
    assert {s: signal.getsignal(s) for s in before} == before
