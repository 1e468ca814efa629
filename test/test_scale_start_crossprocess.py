"""depth_node as a process: a scale configuration that cannot run stops it at start (exit 2,
the reasons on stderr), and a node waiting for references says so on /diagnostics (WARN)."""

from __future__ import annotations

import os

import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402

from ros_helpers import spin_until, start_process, stop_process  # noqa: E402

NODE = ["-m", "mono_depth_ros.ros.depth_node", "--ros-args", "-p", "device:=cpu",
        "-p", "stats_period:=0.0"]
BAD = {  # the three settings, and the reason each must name
    "ground_plane": (["scale_source:=ground_plane"], "camera_height > 0"),
    "smoothing": (["scale_smoothing:=1.5"], "scale_smoothing"),
    "lidar": (["scale_source:=lidar"], "scale_source must be one of"),
}


def test_bad_scale_settings_stop_the_node_and_a_waiting_scale_warns(tmp_path, rclpy_context):
    procs = {}
    try:
        for name, (params, _) in BAD.items():
            args = NODE + [a for p in params for a in ("-p", p)]
            procs[name] = start_process(args, dict(os.environ), tmp_path / f"{name}.log")
        waiting = start_process(NODE + ["-r", "__ns:=/waiting", "-p", "scale_source:=sparse_depth",
                                        "-p", "diagnostics_period:=0.5"],
                                dict(os.environ), tmp_path / "waiting.log")
        node = Node("diag_listener", context=rclpy_context)
        ex = SingleThreadedExecutor(context=rclpy_context)
        ex.add_node(node)
        seen = []
        node.create_subscription(DiagnosticArray, "/diagnostics",
                                 lambda m: seen.extend(m.status), 10)

        def scale_warn():
            return any(s.name == "/waiting/depth_node" and s.level == b"\x01"
                       and "scale (sparse_depth): no frame scaled yet" in s.message
                       and {"scale: source": "sparse_depth"}.items()
                       <= {kv.key: kv.value for kv in s.values}.items() for s in seen)

        assert spin_until(ex, lambda: scale_warn() or waiting.poll() is not None, 120), \
            (tmp_path / "waiting.log").read_text()[-2000:]
        assert waiting.poll() is None and scale_warn()
        for name, proc in procs.items():
            proc.wait(timeout=120)
            log = (tmp_path / f"{name}.log").read_text()
            assert proc.returncode == 2, (name, log[-2000:])
            assert "depth_node: invalid parameters:" in log and BAD[name][1] in log, log[-2000:]
        node.destroy_node()
    finally:
        for proc in [*procs.values(), *([waiting] if "waiting" in locals() else [])]:
            if proc.poll() is None:
                stop_process(proc)
