"""Frame counters and per-stage latency percentiles for the periodic status line (ROS-free)."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict, deque
from typing import Any, Callable, Deque, Dict, Iterable, Tuple

import numpy as np


class PipelineStats:
    """Thread-safe counters and rolling latency windows.

    Args:
        window: latency samples kept per stage (oldest dropped).
    """

    def __init__(self, window: int = 300):
        self._lock = threading.Lock()
        self.counts: Counter = Counter()
        self.skipped: Counter = Counter()  # reason -> frames skipped for bad input
        self._lat: Dict[str, Deque[float]] = defaultdict(lambda: deque(maxlen=window))

    def count(self, key: str, n: int = 1) -> None:
        """Increment counter ``key`` (e.g. ``received``, ``processed``, ``dropped``)."""
        with self._lock:
            self.counts[key] += n

    def skip(self, reason: str) -> None:
        """Count a frame skipped for bad input under ``reason``."""
        with self._lock:
            self.skipped[reason] += 1
            self.counts["skipped"] += 1

    def snapshot(self) -> Tuple[Dict[str, int], Dict[str, int]]:
        """Consistent copies of ``(counts, skipped)`` (for another thread, e.g. diagnostics)."""
        with self._lock:
            return dict(self.counts), dict(self.skipped)

    def add_timings(self, timings: Dict[str, float]) -> None:
        """Record one frame's stage latencies in milliseconds."""
        with self._lock:
            for k, v in timings.items():
                self._lat[k].append(float(v))

    def percentiles(self, stages: Iterable[str] = ()) -> Dict[str, Dict[str, float]]:
        """``{stage: {"p50": ms, "p95": ms}}`` over the current window."""
        with self._lock:
            keys = list(stages) or list(self._lat)
            return {k: {"p50": float(np.percentile(self._lat[k], 50)),
                        "p95": float(np.percentile(self._lat[k], 95))}
                    for k in keys if self._lat.get(k)}

    def summary_line(self) -> str:
        """One log line: counts, skip reasons and p50/p95 per stage (a consistent snapshot: the
        worker thread may be counting while the timer thread formats)."""
        with self._lock:
            c, skipped = Counter(self.counts), dict(self.skipped)
        parts = [f"received={c['received']} processed={c['processed']} dropped={c['dropped']} "
                 f"skipped={c['skipped']}"]
        if skipped:
            parts.append("(" + ", ".join(f"{k}={v}" for k, v in sorted(skipped.items())) + ")")
        for k, p in self.percentiles().items():
            parts.append(f"{k}={p['p50']:.1f}/{p['p95']:.1f}ms")
        return " ".join(parts) + " [p50/p95]"


class Snapshot:
    """``fn()`` for a reader thread, never computed while the owner thread mutates what it reads.

    The owner (the node's worker) holds ``lock`` while it changes the state ``fn`` reads (one
    frame) and calls :meth:`refresh` before releasing it. A reader (a timer on the executor
    thread) calls the snapshot: ``fn()`` fresh when the lock is free (the owner is idle), else
    the owner's last refreshed value, so it never blocks behind a long frame (a first-frame
    engine build) nor iterates a dict the owner is changing.

    Args:
        fn: the reading function (no arguments); called once here, so the first read has a value.
        lock: the owner's ``threading.Lock`` (held by the owner during each mutation).
    """

    def __init__(self, fn: Callable[[], Any], lock: threading.Lock):
        self._fn, self._lock = fn, lock
        with lock:
            self._value = fn()

    def refresh(self) -> None:
        """Recompute the value; the caller holds the lock (the owner, at the end of a frame)."""
        self._value = self._fn()

    def __call__(self) -> Any:
        """A fresh value when the owner is idle, else the one it refreshed last."""
        if self._lock.acquire(blocking=False):
            try:
                self._value = self._fn()
            finally:
                self._lock.release()
        return self._value
