"""Pairing an image with its camera_info or its metric reference by stamp (ROS-free; stamps in
integer nanoseconds).

Camera drivers stamp an image and its camera_info alike, so the exact stamp is the normal
case. Some publish camera_info at another rate or with other stamps; then the newest one within
``max_age`` seconds of the image is used, and an older one is refused rather than silently
paired with a camera that may have changed (zoom, binning, a replaced camera).

Metric references (a lidar, a scan) come on their own clock and often after the image:
:class:`ApproximatePairer` waits a bounded time for the nearest one.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Optional, Tuple


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


class ApproximatePairer:
    """Pairs an image with a reference message (lidar, ToF, scan) by stamp, waiting a bounded
    time for one that has not arrived yet (thread-safe; stamps in integer nanoseconds).

    The policy is message_filters' approximate time for one image and one stream: of the
    references kept (the last ``size``, a short queue), the one whose stamp is nearest the
    image's wins, if within ``tolerance``. A reference stream arrives in stamp order, so the
    choice is final once a reference stamped at or after the image is in the queue (any later
    one is further away). Until then :meth:`pair` waits - a 10 Hz lidar stamped at the start of
    its sweep arrives ~0.1 s after the images it covers - but never longer than ``max_wait``
    seconds after the image was received, and not at all when the stream has been silent for
    :data:`STREAM_SILENT_S` (a dead sensor must not delay every frame).

    Args:
        size: references kept (oldest dropped).
        clock: monotonic time in seconds (tests pass a fake one).
    """

    #: Seconds without any reference after which :meth:`pair` does not wait for one.
    STREAM_SILENT_S = 1.0

    def __init__(self, size: int = 16, clock: Callable[[], float] = time.monotonic):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size, self.clock = int(size), clock
        self._items: "OrderedDict[int, Any]" = OrderedDict()
        self._arrival: Optional[float] = None
        self._cond = threading.Condition()

    def add(self, stamp_ns: int, item: Any) -> None:
        """Store a reference and wake a waiting :meth:`pair`."""
        with self._cond:
            self._items.pop(stamp_ns, None)
            self._items[stamp_ns] = item
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            self._arrival = self.clock()
            self._cond.notify_all()

    def clear(self) -> None:
        """Forget every reference (a source switch)."""
        with self._cond:
            self._items.clear()
            self._arrival = None
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def _decided(self, stamp_ns: int) -> bool:
        return any(st >= stamp_ns for st in self._items)

    def pair(self, stamp_ns: int, tolerance: float, max_wait: float = 0.0,
             received_at: Optional[float] = None) -> Tuple[Optional[Any], str, str]:
        """The reference for an image stamped ``stamp_ns``.

        Args:
            stamp_ns: the image's stamp, nanoseconds.
            tolerance: largest stamp difference accepted, seconds (>= 0).
            max_wait: longest time the image is held for a reference, seconds after
                ``received_at`` (0: no wait).
            received_at: ``clock()`` when the image arrived (default: now).

        Returns:
            ``(item, "", "")``, or ``(None, reason, detail)`` with reason ``no_reference``
            (nothing received) or ``stale_reference`` (nothing within ``tolerance``; ``detail``
            gives the gap).
        """
        start = self.clock() if received_at is None else float(received_at)
        deadline = start + max(0.0, float(max_wait))
        with self._cond:
            while not self._decided(stamp_ns):
                now = self.clock()
                alive = self._arrival is not None and now - self._arrival <= self.STREAM_SILENT_S
                if now >= deadline or not alive:
                    break
                self._cond.wait(min(deadline - now, 0.05))
            if not self._items:
                return None, "no_reference", "no reference message received yet"
            best = min(self._items, key=lambda s: abs(s - stamp_ns))
            item = self._items[best]
        dt = (best - stamp_ns) * 1e-9
        if abs(dt) > tolerance:
            return None, "stale_reference", (
                f"nearest reference is {dt:+.3f} s from the image (reference_stamp_tolerance "
                f"{tolerance:g} s, waited up to {max_wait:g} s)")
        return item, "", ""
