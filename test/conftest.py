"""Shared test helpers: where the real RGB-D sample data lives.

The data sit beside the repository at ``../shared/data`` (see its README.md), or where
``MONO_DEPTH_ROS_DATA`` points (e.g. from a git worktree elsewhere). Tests that need
them take the ``data_dir`` fixture (or one of the per-dataset fixtures), which skips with a clear
message only when the folder is absent.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Never reach a model hub from tests, and keep ONNX exports (backend auto / onnxruntime) in a
# folder of this run; subprocesses (node, CLI) inherit both.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["MONO_DEPTH_ROS_CACHE"] = tempfile.mkdtemp(prefix="mono_depth_ros_cache_")
atexit.register(shutil.rmtree, os.environ["MONO_DEPTH_ROS_CACHE"], True)

from ros_helpers import rclpy_context  # noqa: F401  (fixture shared by the ROS tests)

#: Repository root (the folder holding ``mono_depth_ros/`` and ``test/``).
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Real sample data: ``<repo>/../shared/data`` unless ``MONO_DEPTH_ROS_DATA`` is set.
DATA_DIR = Path(os.environ.get("MONO_DEPTH_ROS_DATA") or REPO_ROOT.parent / "shared" / "data")
#: Alias kept for tests that import ``DATA``.
DATA = DATA_DIR

SEVEN_SCENES = DATA_DIR / "7scenes-redkitchen"
NYU_MINI = DATA_DIR / "nyu-mini"
KITTI_FRAME = DATA_DIR / "kitti-raw-frame"


def _require(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"real sample data not found at {path} (expected ../shared/data beside the repo)")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``../shared/data``; skips the test when the folder is absent."""
    return _require(DATA_DIR)


@pytest.fixture(scope="session")
def seven_scenes_dir() -> Path:
    """``7scenes-redkitchen`` (1000 frames, 640x480); skips when absent."""
    return _require(SEVEN_SCENES)


@pytest.fixture(scope="session")
def nyu_dir() -> Path:
    """``nyu-mini`` (10 NYU Depth V2 test frames); skips when absent."""
    return _require(NYU_MINI)


@pytest.fixture(scope="session")
def kitti_dir() -> Path:
    """``kitti-raw-frame`` (one KITTI raw frame); skips when absent."""
    return _require(KITTI_FRAME)
