"""Where the package's data files live: ``launch/``, ``config/``, ``models/`` (ROS-free, no torch)."""

from __future__ import annotations

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
