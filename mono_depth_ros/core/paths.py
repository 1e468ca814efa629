"""Where the package's data files live: ``launch/``, ``config/``, ``models/`` (ROS-free, no torch)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional


def package_share_dir() -> Path:
    """Directory holding ``launch/``, ``config/`` and ``models/``.

    In a colcon install this is ``share/mono_depth_ros`` (found with ament_index_python when
    available); in a source checkout it is the repository root.
    """
    try:
        from ament_index_python.packages import get_package_share_directory
        share = Path(get_package_share_directory("mono_depth_ros"))
        if (share / "config").is_dir():
            return share
    except Exception:  # noqa: BLE001 - not in an ament environment
        pass
    return Path(__file__).resolve().parents[2]


def shipped_file(name: Optional[str]) -> Optional[Path]:
    """``models/<name>`` of the installed package if that file exists, else None."""
    path = package_share_dir() / "models" / name if name else None
    return path if path is not None and path.is_file() else None


#: Environment variable naming the folder of imported third-party weights.
WEIGHTS_ENV = "MONO_DEPTH_ROS_WEIGHTS"


def imported_weights_dir() -> Path:
    """Folder of third-party weights converted by ``mono-depth-ros import-weights``.

    ``$MONO_DEPTH_ROS_WEIGHTS`` when set, else ``models/imported/`` of the package (ignored by
    git: third-party weights and their conversions are never committed). The README's set-up
    fills it from ``../shared/weights`` when that folder exists.
    """
    env = os.environ.get(WEIGHTS_ENV)
    return Path(env) if env else package_share_dir() / "models" / "imported"


def file_sha256(path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks): how a weights or ONNX file is named
    in checkpoints and project-kept spec files.

    Raises:
        OSError: the file cannot be read.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
