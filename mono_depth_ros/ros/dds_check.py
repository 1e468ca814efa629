"""dds-check: how many VGA images / point clouds Fast DDS delivers between two processes.

Runs a subscriber in one process and publishes ``count`` VGA messages - organized 640x480
XYZRGB clouds (4.9 MB) or rgb8 images (0.9 MB) - at ``rate`` Hz from another, with best-effort
(sensor-data) or reliable QoS, keep-last 1 on the publisher as the node's outputs. Each process
gets the environment of a named DDS *setup* (:data:`SETUPS`): the variables a user could have
set (``FASTDDS_DEFAULT_PROFILES_FILE``, ``FASTDDS_BUILTIN_TRANSPORTS``) are cleared first, then
the setup's are applied. Publisher and subscriber may use different setups, e.g. the node's
setup against ``udp_only`` (what a peer on another host can use: no shared memory) to check
that the node stays reachable from other computers. Each run has its own random domain with
localhost discovery. This is the measurement behind the README's DDS section.
"""

from __future__ import annotations

import array
import json
import os
import random
import subprocess
import sys
import time
from typing import Dict, Optional

from ..core.dds_env import DDS_VARIABLES, SETUPS, setup_env

#: kind -> (message type name, data bytes)
KINDS = {"cloud": ("PointCloud2", 640 * 480 * 16), "image": ("Image", 640 * 480 * 3)}
RELIABILITIES = ("best_effort", "reliable")


def _message(kind: str):
    import sensor_msgs.msg as sm
    name, nbytes = KINDS[kind]
    msg = getattr(sm, name)(height=480, width=640)
    if kind == "cloud":
        msg.point_step, msg.row_step = 16, 640 * 16
    else:
        msg.encoding, msg.step = "rgb8", 640 * 3
    return msg, nbytes


def _qos(reliability: str, publisher: bool):
    from rclpy.qos import qos_profile_sensor_data
    from .conversions import qos_profile
    if reliability == "best_effort" and not publisher:
        return qos_profile_sensor_data  # what a REP 2003 consumer uses
    return qos_profile(reliability, 1 if publisher else 5)


def _subscriber(seconds: float, kind: str, reliability: str) -> None:
    import rclpy
    from rclpy.node import Node
    msg, nbytes = _message(kind)
    rclpy.init()
    node = Node("dds_check_sub")
    got = []
    node.create_subscription(type(msg), "dds_check", lambda m: got.append(len(m.data)),
                             _qos(reliability, publisher=False))
    print("ready", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    print(json.dumps({"received": sum(n == nbytes for n in got)}), flush=True)
    rclpy.try_shutdown()


def _publish(count: int, rate: float, wait: float, kind: str, reliability: str = "best_effort"
             ) -> int:
    import rclpy
    from rclpy.node import Node
    msg, nbytes = _message(kind)
    rclpy.init()
    node = Node("dds_check_pub")
    pub = node.create_publisher(type(msg), "dds_check", _qos(reliability, publisher=True))
    data = array.array("B", bytes(nbytes))
    end = time.monotonic() + wait
    while pub.get_subscription_count() == 0 and time.monotonic() < end:
        time.sleep(0.05)
    matched = pub.get_subscription_count()
    time.sleep(1.0)
    for i in range(count):
        msg.header.stamp.sec = i
        msg.data = data
        pub.publish(msg)
        time.sleep(1.0 / rate)
    if reliability == "reliable":
        from rclpy.duration import Duration
        pub.wait_for_all_acked(Duration(seconds=5.0))
    node.destroy_node()
    rclpy.try_shutdown()
    print(json.dumps({"matched": matched}), flush=True)
    return matched


def measure(setup: str = "default", count: int = 20, rate: float = 5.0, kind: str = "cloud",
            reliability: str = "best_effort", sub_setup: Optional[str] = None,
            base_env: Optional[Dict[str, str]] = None) -> dict:
    """Publish ``count`` messages of ``kind`` from a process with DDS setup ``setup`` to a
    subscriber process with ``sub_setup`` (default: the same).

    Args:
        setup, sub_setup: names from :data:`SETUPS`.
        kind: ``cloud`` or ``image``; reliability: ``best_effort`` or ``reliable``.
        base_env: environment to start from (default ``os.environ``).

    Returns:
        ``{"setup", "sub_setup", "kind", "reliability", "sent", "received", "matched",
        "publisher_rc"}``. Every wait is bounded (about ``count / rate + 35`` s).

    Raises:
        KeyError: unknown setup, kind or reliability.
    """
    sub_setup = sub_setup or setup
    if kind not in KINDS or reliability not in RELIABILITIES:
        raise KeyError(f"kind must be one of {sorted(KINDS)} and reliability one of "
                       f"{RELIABILITIES}, got {kind!r}, {reliability!r}")
    base = dict(os.environ if base_env is None else base_env,
                ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
                ROS_DOMAIN_ID=str(random.randint(1, 101)), PYTHONUNBUFFERED="1")
    for var in DDS_VARIABLES:  # a user's own settings would blur the comparison
        base.pop(var, None)
    pub_env, sub_env = setup_env(setup, base), setup_env(sub_setup, base)
    listen = count / rate + 12.0
    sub = subprocess.Popen([sys.executable, "-m", "mono_depth_ros.ros.dds_check", "--subscriber",
                            str(listen), kind, reliability], env=sub_env, stdout=subprocess.PIPE,
                           text=True)
    matched = 0
    try:
        sub.stdout.readline()  # "ready"
        # rclpy reads the environment at init: the publisher runs in a child process too
        pub = subprocess.run([sys.executable, "-c", "from mono_depth_ros.ros.dds_check import "
                              f"_publish; _publish({count}, {rate}, 15.0, {kind!r}, "
                              f"{reliability!r})"], env=pub_env, timeout=count / rate + 35,
                             stdout=subprocess.PIPE, text=True)
        lines = pub.stdout.strip().splitlines()
        matched = json.loads(lines[-1])["matched"] if lines else 0
        out, _ = sub.communicate(timeout=listen + 15)
        received = json.loads(out.strip().splitlines()[-1])["received"]
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait(timeout=5)
    return {"setup": setup, "sub_setup": sub_setup, "kind": kind, "reliability": reliability,
            "sent": count, "received": received, "matched": matched,
            "publisher_rc": pub.returncode}


def main(argv=None) -> None:
    """``python -m mono_depth_ros.ros.dds_check``: every setup, kind and reliability as JSON
    lines (the subscriber half runs with ``--subscriber SECONDS KIND RELIABILITY``)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--subscriber"]:
        _subscriber(float(argv[1]), argv[2], argv[3])
        return
    for setup in SETUPS:
        for kind in KINDS:
            for rel in RELIABILITIES:
                print(json.dumps(measure(setup, kind=kind, reliability=rel)), flush=True)


if __name__ == "__main__":
    main()
