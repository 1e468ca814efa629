"""bag_recorder: write what arrives on DDS topics into an MCAP bag (``ros2 bag record``).

Subscriptions are raw (``raw=True``): the CDR bytes received are written unchanged. Topic types
come from discovery (or ``TOPIC:pkg/msg/Type`` arguments). Best-effort subscriptions match both
best-effort and reliable publishers. Stops on SIGINT/SIGTERM (its normal stop: exit 0, like
``ros2 bag record``), ``--duration`` or ``--idle-stop``, and prints the message count per topic;
the bag is closed complete in every case. A signal during topic discovery, before anything was
recorded, exits 130 / 143 (128 + the signal). See :mod:`.shutdown`.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Dict, List, Optional

import rclpy
from rclpy.node import Node

from ..data.bag import McapWriter
from .bag_args import recorder_parser as build_parser
from .conversions import message_class, qos_profile
from .shutdown import StopRequest, init_ros


class BagRecorder(Node):
    """Records ``topics`` (``{name: msgtype}``) into ``writer``; thread-safe writes."""

    def __init__(self, writer: McapWriter, topics: Dict[str, str], reliability: str = "best_effort",
                 depth: int = 10):
        super().__init__("bag_recorder")
        self.writer = writer
        self._lock = threading.Lock()
        self.last_message = time.monotonic()
        qos = qos_profile(reliability, depth)
        for topic, msgtype in topics.items():
            self.create_subscription(message_class(msgtype), topic,
                                     self._writer_cb(topic, msgtype), qos, raw=True)

    def _writer_cb(self, topic: str, msgtype: str):
        def cb(data: bytes) -> None:
            with self._lock:
                self.writer.write_raw(topic, msgtype, time.time_ns(), data)
                self.last_message = time.monotonic()
        return cb


def discover_types(node: Node, topics: List[str], timeout: float,
                   stop: Optional[StopRequest] = None) -> Dict[str, str]:
    """Resolve ``TOPIC`` or ``TOPIC:pkg/msg/Type`` arguments to ``{topic: type}``.

    Untyped topics are looked up in the ROS graph for up to ``timeout`` seconds (less when
    ``stop`` is requested meanwhile).

    Raises:
        TimeoutError: some topic never appeared (the message names them).
    """
    out, pending = {}, []
    for t in topics:
        name, _, typ = t.partition(":")
        if typ:
            out[name] = typ
        else:
            pending.append(name)
    end = time.monotonic() + timeout
    while pending and time.monotonic() < end and not (stop and stop.requested):
        graph = dict(node.get_topic_names_and_types())
        for name in list(pending):
            if graph.get(name):
                out[name] = graph[name][0]
                pending.remove(name)
        if pending:
            rclpy.spin_once(node, timeout_sec=0.1)
    if pending:
        raise TimeoutError(f"topics not found within {timeout}s (give TOPIC:pkg/msg/Type): "
                           f"{pending}")
    return out


def run(args: argparse.Namespace) -> int:
    """Record as parsed by :func:`build_parser`; prints ``recorded N messages on TOPIC``. Exit
    status: 0 (stopped by a signal, ``--duration`` or ``--idle-stop``), 2 a topic not found,
    128 + signal when stopped during discovery."""
    stop = init_ros(sys.argv[:1])  # the CLI arguments are not ROS arguments (FROM:=TO remaps)
    try:
        return _record(args, stop)
    finally:
        rclpy.try_shutdown()
        stop.restore()


def _record(args: argparse.Namespace, stop: StopRequest) -> int:
    probe = Node("bag_recorder_discovery")
    try:
        types = discover_types(probe, args.topics, args.discovery_timeout, stop)
    except TimeoutError as exc:
        if not stop.requested:
            print(f"error: {exc}", flush=True)
            return 2
    finally:
        probe.destroy_node()
    if stop.requested:
        print("bag_recorder: stopped before recording", file=sys.stderr, flush=True)
        return 128 + stop.signum
    with McapWriter(args.out) as writer:
        node = BagRecorder(writer, types, args.qos_reliability)
        executor = rclpy.executors.SingleThreadedExecutor()
        executor.add_node(node)
        print(f"recording {', '.join(types)} to {args.out}", flush=True)
        start = time.monotonic()
        try:
            while not stop.requested:
                executor.spin_once(timeout_sec=0.1)
                now = time.monotonic()
                if args.duration and now - start > args.duration:
                    break
                if args.idle_stop and writer.counts and now - node.last_message > args.idle_stop:
                    break
        finally:
            executor.shutdown()
            node.destroy_node()
        counts = {t: writer.counts.get(t, 0) for t in types}
    for topic, n in counts.items():
        print(f"recorded {n} messages on {topic}", flush=True)
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(counts, f, indent=2)
    return 0


def main(argv=None) -> None:
    """Console entry point ``bag_recorder``."""
    raise SystemExit(run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    main()
