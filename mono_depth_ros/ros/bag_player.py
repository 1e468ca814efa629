"""bag_player: publish a ROS 2 bag (MCAP or sqlite3) on DDS at its recorded rate.

What ``ros2 bag play`` does on a ROS install, for machines with only the rclpy wheels. The CDR
bytes stored in the bag are published as they are (``Publisher.publish(bytes)``), so no message
is deserialised on the way. With ``--clock`` the bag's time (the recorded log time, scaled by
``--rate``) is published on ``/clock`` for nodes that run with ``use_sim_time:=true``.

Stopping: SIGINT (Ctrl-C) or SIGTERM ends the playback between two messages (``--loop`` plays
until then); the counts published so far are printed and the exit status is 128 + the signal
(130 for Ctrl-C, 143 for SIGTERM), as for any interrupted command. A playback that ran to its
end exits 0; no subscriber for ``--wait-for`` in time exits 2. See :mod:`.shutdown`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Dict, List, Optional, Sequence

import rclpy
from rclpy.node import Node

from ..data.bag import bag_topics, iter_raw
from .bag_args import player_parser as build_parser
from .conversions import message_class, qos_profile
from .shutdown import StopRequest, init_ros


def parse_remaps(remaps: Sequence[str]) -> Dict[str, str]:
    """``["/a:=/b", ...]`` -> ``{"/a": "/b"}``.

    Raises:
        ValueError: an entry without ``:=``.
    """
    out = {}
    for r in remaps:
        src, sep, dst = r.partition(":=")
        if not sep or not src or not dst:
            raise ValueError(f"remap must look like FROM:=TO, got {r!r}")
        out[src] = dst
    return out


class BagPlayer(Node):
    """Publishes every topic of ``bag`` with the recorded timing divided by ``rate``."""

    def __init__(self, bag: str, rate: float = 1.0, topics: Optional[List[str]] = None,
                 remap: Optional[Dict[str, str]] = None, reliability: str = "reliable",
                 depth: int = 10, clock_hz: float = 0.0, stop: Optional[StopRequest] = None):
        super().__init__("bag_player")
        #: Ends the playback, the waits and the sleeps when a stop is requested (never if None).
        self.stop = stop or StopRequest(signals=())
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.bag, self.rate = bag, rate
        info = bag_topics(bag)
        self.topics = [t for t in info if topics is None or t in topics]
        remap = remap or {}
        qos = qos_profile(reliability, depth)
        self.pubs = {t: self.create_publisher(message_class(info[t][0]), remap.get(t, t), qos)
                     for t in self.topics}
        self.published: Dict[str, int] = {t: 0 for t in self.topics}
        self.clock_hz = clock_hz
        self.clock_pub = None
        if clock_hz > 0:
            from rosgraph_msgs.msg import Clock
            # reliable keep-last: matches the best-effort reader of rclpy/rclcpp time sources too
            self.clock_pub = self.create_publisher(Clock, "/clock", qos_profile("reliable", 1))
            self._clock_msg = Clock()
        self.clock_published = 0

    def publish_clock(self, t_ns: int) -> None:
        """Publish bag time ``t_ns`` (nanoseconds) on ``/clock`` (with ``clock_hz`` > 0)."""
        if self.clock_pub is None:
            return
        self._clock_msg.clock.sec, self._clock_msg.clock.nanosec = divmod(int(t_ns), 10**9)
        self.clock_pub.publish(self._clock_msg)
        self.clock_published += 1

    def _sleep_until(self, wall: float, bag_start_ns: int, start_wall: float) -> None:
        """Sleep until monotonic time ``wall`` (or a stop), publishing the bag time on /clock
        meanwhile."""
        while not self.stop.requested:
            now = time.monotonic()
            if now >= wall:
                return
            if self.clock_pub is None:
                self.stop.sleep(wall - now)
                return
            self.publish_clock(bag_start_ns + int((now - start_wall) * self.rate * 1e9))
            self.stop.sleep(min(wall - now, 1.0 / self.clock_hz))

    def wait_for_subscribers(self, topics: Sequence[str], timeout: float) -> bool:
        """Wait up to ``timeout`` s until every topic in ``topics`` (bag names) has a subscriber."""
        pubs = [self.pubs[t] for t in topics]
        end = time.monotonic() + timeout
        while (any(p.get_subscription_count() == 0 for p in pubs) and time.monotonic() < end
               and not self.stop.requested):
            self.stop.sleep(0.05)
        return all(p.get_subscription_count() > 0 for p in pubs)

    def wait_for_acks(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s (or a stop) until reliable subscribers acknowledged every
        message."""
        from rclpy.duration import Duration
        end = time.monotonic() + timeout
        while not self.stop.requested:  # short waits: a signal is handled between two of them
            if all(p.wait_for_all_acked(Duration(seconds=0.1)) for p in self.pubs.values()):
                return True
            if time.monotonic() >= end:
                return False
        return False

    def play(self, loop: bool = False) -> Dict[str, int]:
        """Publish the bag (once, or forever with ``loop``) until its end or a stop; returns
        messages per topic."""
        while True:
            start_wall, t0 = time.monotonic(), None
            for topic, _, t, data in iter_raw(self.bag, self.topics):
                t0 = t if t0 is None else t0
                self._sleep_until(start_wall + (t - t0) / 1e9 / self.rate, t0, start_wall)
                if self.stop.requested or not rclpy.ok():
                    return self.published
                self.publish_clock(t)  # the clock reaches a message's time before the message
                self.pubs[topic].publish(bytes(data))
                self.published[topic] += 1
            if not loop or self.stop.requested:
                return self.published


def run(args: argparse.Namespace) -> int:
    """Play a bag as parsed by :func:`build_parser`; prints messages per topic. Exit status: 0
    played to the end, 2 no subscriber for ``--wait-for``, 128 + signal when stopped by SIGINT
    (130) or SIGTERM (143)."""
    stop = init_ros(sys.argv[:1])  # the CLI arguments are not ROS arguments (FROM:=TO remaps)
    node = None
    try:
        node = BagPlayer(args.bag, args.rate, args.topics, parse_remaps(args.remap),
                         args.qos_reliability, clock_hz=args.clock, stop=stop)
        if args.wait_for and not node.wait_for_subscribers(args.wait_for, args.wait_timeout):
            if not stop.requested:
                node.get_logger().error(f"no subscriber on {args.wait_for} after "
                                        f"{args.wait_timeout}s")
                return 2
        stop.sleep(args.start_delay)
        counts = node.play(loop=args.loop)  # returns at once after a stop
        if not stop.requested:
            # like `ros2 bag play --wait-for-all-acked`: reliable readers get the last messages
            node.wait_for_acks(args.ack_timeout)
        for topic, n in counts.items():
            print(f"published {n} messages on {topic}", flush=True)
        if stop.requested:
            print(f"bag_player: stopped by {signal.Signals(stop.signum).name}", file=sys.stderr,
                  flush=True)
            return 128 + stop.signum
        return 0
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        stop.restore()


def main(argv=None) -> None:
    """Console entry point ``bag_player``."""
    raise SystemExit(run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    main()
