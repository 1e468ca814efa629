"""Frame counters and per-stage latency percentiles for the periodic status line (ROS-free)."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict, deque
from typing import Deque, Dict, Iterable, Tuple

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
