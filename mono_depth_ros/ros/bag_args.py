"""Command-line arguments of ``bag_player`` / ``bag_recorder`` (``mono-depth-ros play`` / ``record``).

Kept apart from the nodes so that building the CLI parser needs no rclpy: the training,
evaluation and benchmark commands run on machines without ROS 2 (a GPU box, CI).
"""

from __future__ import annotations

import argparse
from typing import Optional

PLAYER_DESCRIPTION = "publish a ROS 2 bag (MCAP or sqlite3) on DDS at its recorded rate"
RECORDER_DESCRIPTION = "record DDS topics to an MCAP bag"


def player_parser(p: Optional[argparse.ArgumentParser] = None) -> argparse.ArgumentParser:
    """Arguments of ``mono-depth-ros play`` / ``bag_player``."""
    p = p or argparse.ArgumentParser(prog="bag_player", description=PLAYER_DESCRIPTION)
    p.add_argument("bag", help="bag folder (MCAP or sqlite3)")
    p.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    p.add_argument("--topics", nargs="*", help="only these topics")
    p.add_argument("--remap", nargs="*", default=[], metavar="FROM:=TO", help="rename topics")
    p.add_argument("--loop", action="store_true", help="play forever")
    p.add_argument("--qos-reliability", default="reliable", choices=["reliable", "best_effort"])
    p.add_argument("--wait-for", nargs="*", metavar="TOPIC", default=[],
                   help="bag topics that must have a subscriber before playing")
    p.add_argument("--wait-timeout", type=float, default=30.0, help="seconds to wait for it")
    p.add_argument("--ack-timeout", type=float, default=5.0,
                   help="seconds to wait for reliable subscribers to acknowledge the last messages")
    p.add_argument("--start-delay", type=float, default=1.0,
                   help="seconds after discovery before the first message (lets all readers match)")
    p.add_argument("--clock", type=float, nargs="?", const=40.0, default=0.0, metavar="HZ",
                   help="publish the bag's time on /clock, HZ times a second (default 40), for "
                        "nodes run with use_sim_time:=true (like `ros2 bag play --clock`)")
    return p


def recorder_parser(p: Optional[argparse.ArgumentParser] = None) -> argparse.ArgumentParser:
    """Arguments of ``mono-depth-ros record`` / ``bag_recorder``."""
    p = p or argparse.ArgumentParser(prog="bag_recorder", description=RECORDER_DESCRIPTION)
    p.add_argument("out", help="bag folder to write (replaced if it exists)")
    p.add_argument("topics", nargs="+", help="TOPIC or TOPIC:pkg/msg/Type")
    p.add_argument("--duration", type=float, default=0.0, help="stop after N seconds (0 = never)")
    p.add_argument("--idle-stop", type=float, default=0.0,
                   help="stop N seconds after the last message (0 = never)")
    p.add_argument("--discovery-timeout", type=float, default=30.0)
    p.add_argument("--qos-reliability", default="best_effort", choices=["reliable", "best_effort"])
    p.add_argument("--summary", help="also write the counts as JSON to this file")
    return p
