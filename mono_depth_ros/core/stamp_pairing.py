"""Pairing an image with its camera_info by stamp (ROS-free; stamps in integer nanoseconds).

Camera drivers stamp an image and its camera_info alike, so the exact stamp is the normal
case. Some publish camera_info at another rate or with other stamps; then the newest one within
``max_age`` seconds of the image is used, and an older one is refused rather than silently
paired with a camera that may have changed (zoom, binning, a replaced camera).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Optional, Tuple


class StampedBuffer:
    """The last ``size`` items (camera_infos) by stamp, thread-safe.

    Args:
        size: items kept (oldest dropped).
    """

    def __init__(self, size: int = 64):
        self.size = size
        self._items: "OrderedDict[int, Any]" = OrderedDict()
        self._lock = threading.Lock()

    def add(self, stamp_ns: int, item: Any) -> None:
        """Store ``item`` under ``stamp_ns`` (replacing one with the same stamp)."""
        with self._lock:
            self._items.pop(stamp_ns, None)
            self._items[stamp_ns] = item
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget every item."""
        with self._lock:
            self._items.clear()

    def match(self, stamp_ns: int, max_age: float) -> Tuple[Optional[Any], Optional[str], str]:
        """The item for an image stamped ``stamp_ns``.

        Args:
            stamp_ns: the image's stamp in nanoseconds.
            max_age: seconds; without an exact match, the newest item whose stamp is at most
                this far from ``stamp_ns`` (either side) is used. 0: exact stamps only.

        Returns:
            ``(item, None, "")`` on success, else ``(None, reason, detail)`` with reason
            ``missing_camera_info`` (nothing received yet) or ``stale_camera_info`` (none close
            enough; ``detail`` gives the gap).
        """
        with self._lock:
            if stamp_ns in self._items:
                return self._items[stamp_ns], None, ""
            if not self._items:
                return None, "missing_camera_info", "no camera_info received yet"
            limit = int(round(max_age * 1e9))
            for st in reversed(self._items):  # newest first
                if abs(stamp_ns - st) <= limit:
                    return self._items[st], None, ""
            newest = next(reversed(self._items))
        gap = (stamp_ns - newest) / 1e9
        return None, "stale_camera_info", (
            f"no camera_info within camera_info_max_age={max_age:g} s of the image (newest is "
            f"{gap:+.3f} s from it)")
