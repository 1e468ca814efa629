"""dds-check: how many best-effort VGA point clouds survive Fast DDS, with and without the profile.

Runs a subscriber in a separate process and publishes ``count`` VGA messages - organized 640x480
XYZRGB clouds (4.9 MB) or rgb8 images (0.9 MB) - at ``rate`` Hz with sensor-data QoS, once with the environment as it is minus
``FASTDDS_DEFAULT_PROFILES_FILE`` and once with ``config/fastdds.xml``. Each run gets its own
random domain on localhost discovery. This is the measurement behind the README's Fast DDS claim.
"""

from __future__ import annotations

import array
import json
import os
import random
import subprocess
import sys
import time
from typing import Optional

#: kind -> (message type name, data bytes)
KINDS = {"cloud": ("PointCloud2", 640 * 480 * 16), "image": ("Image", 640 * 480 * 3)}


def _message(kind: str):
    import sensor_msgs.msg as sm
    name, nbytes = KINDS[kind]
    msg = getattr(sm, name)(height=480, width=640)
    if kind == "cloud":
        msg.point_step, msg.row_step = 16, 640 * 16
    else:
        msg.encoding, msg.step = "rgb8", 640 * 3
    return msg, nbytes


def _subscriber(seconds: float, kind: str) -> None:
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    msg, nbytes = _message(kind)
    rclpy.init()
    node = Node("dds_check_sub")
    got = []
    node.create_subscription(type(msg), "dds_check", lambda m: got.append(len(m.data)),
                             qos_profile_sensor_data)
    print("ready", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    print(json.dumps({"received": sum(n == nbytes for n in got)}), flush=True)
    rclpy.try_shutdown()


def _publish(count: int, rate: float, wait: float, kind: str) -> int:
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    msg, nbytes = _message(kind)
    rclpy.init()
    node = Node("dds_check_pub")
    pub = node.create_publisher(type(msg), "dds_check", qos_profile_sensor_data)
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
    node.destroy_node()
    rclpy.try_shutdown()
    return matched


def measure(profile: Optional[str], count: int = 20, rate: float = 5.0, kind: str = "cloud") -> dict:
    """Publish ``count`` messages of ``kind`` (``cloud`` or ``image``) to a subscriber process;
    returns ``{"profile", "kind", "sent", "received"}``. Every wait is bounded (about
    ``count / rate + 25`` s)."""
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_DOMAIN_ID=str(random.randint(1, 101)), PYTHONUNBUFFERED="1")
    env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    if profile:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = profile
    listen = count / rate + 12.0
    sub = subprocess.Popen([sys.executable, "-m", "mono_depth_ros.ros.dds_check", "--subscriber",
                            str(listen), kind], env=env, stdout=subprocess.PIPE, text=True)
    try:
        sub.stdout.readline()  # "ready"
        # rclpy reads the environment at init: the publisher runs in a child process too
        pub = subprocess.run([sys.executable, "-c", "from mono_depth_ros.ros.dds_check import _publish; "
                              f"_publish({count}, {rate}, 15.0, {kind!r})"], env=env, timeout=count / rate + 30)
        out, _ = sub.communicate(timeout=listen + 15)
        received = json.loads(out.strip().splitlines()[-1])["received"]
    finally:
        if sub.poll() is None:
            sub.kill()
    return {"profile": profile or "none", "kind": kind, "sent": count, "received": received,
            "publisher_rc": pub.returncode}


def main(argv=None) -> None:
    """``python -m mono_depth_ros.ros.dds_check``: both measurements as JSON lines."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--subscriber"]:
        _subscriber(float(argv[1]), argv[2])
        return
    from ..tools.cli import fastdds_profile
    for kind in KINDS:
        for prof in (None, str(fastdds_profile())):
            print(json.dumps(measure(prof, kind=kind)), flush=True)


if __name__ == "__main__":
    main()
