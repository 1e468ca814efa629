"""Shared helpers for the ROS 2 tests: isolated environment, bounded waits, PID-based stop."""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from mono_depth_ros.core.dds_env import DDS_VARIABLES, SHIPPED_SETUP, setup_variables
from mono_depth_ros.tools.demo import stop_process  # noqa: F401  (re-exported for the tests)

ROOT = Path(__file__).resolve().parents[1]


def isolated_ros_env(log_dir: Path) -> dict:
    """Environment for a ROS test: localhost discovery, a random domain, the shipped DDS setup
    (whatever the caller's environment chose: the tests check what the project ships) and a
    temporary log dir, so parallel runs and other graphs never meet."""
    env = {k: v for k, v in os.environ.items() if k not in DDS_VARIABLES}
    env.update(setup_variables(SHIPPED_SETUP))
    env.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_DOMAIN_ID=str(random.randint(1, 101)),
               ROS_LOG_DIR=str(log_dir), PYTHONUNBUFFERED="1")
    return env


@pytest.fixture(scope="module")
def rclpy_context(tmp_path_factory):
    """rclpy initialised in this process with an isolated environment (module scope)."""
    import rclpy
    env = isolated_ros_env(tmp_path_factory.mktemp("ros_log"))
    saved = {k: os.environ.get(k) for k in (*env, *DDS_VARIABLES)}
    for k in DDS_VARIABLES:
        os.environ.pop(k, None)
    os.environ.update(env)
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.shutdown(context=ctx)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def start_process(args, env: dict, log_path: Path) -> subprocess.Popen:
    """Start ``python args...`` with output to ``log_path``; returns the Popen (stop by PID)."""
    log = open(log_path, "w")
    return subprocess.Popen([sys.executable, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)




def spin_until(executor, predicate, timeout: float) -> bool:
    """Spin ``executor`` until ``predicate()`` is true or ``timeout`` s pass; returns it."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        executor.spin_once(timeout_sec=0.05)
    return predicate()


@contextlib.contextmanager
def spinning_node(context, name: str):
    """A plain rclpy node with its own single-threaded executor in ``context``:
    ``SimpleNamespace(node=, ex=)``, destroyed on exit (for the tests' fixtures)."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    node = Node(name, context=context)
    ex = SingleThreadedExecutor(context=context)
    ex.add_node(node)
    try:
        yield SimpleNamespace(node=node, ex=ex)
    finally:
        ex.shutdown()
        node.destroy_node()
