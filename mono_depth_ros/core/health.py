"""The node's health for ``/diagnostics``: rates, ratios and an OK / WARN / ERROR level (ROS-free).

:class:`HealthMonitor` turns two snapshots of the node's counters (``PipelineStats``) taken one
diagnostics period apart into the values of a ``diagnostic_msgs/DiagnosticStatus`` and a level:

* ERROR: frames failed inside the node (``internal_error``), or images arrived in the period but
  every one was skipped for bad input (nothing can be published).
* WARN: no input image for more than ``input_timeout`` s; more than ``drop_warn`` of the
  received frames dropped (the network is slower than the camera); more than ``skip_warn`` of
  them skipped for bad input; p95 frame latency above ``latency_warn_ms``.
* OK otherwise. Every problem found is named in the message.

The levels are the numbers of ``DiagnosticStatus`` (OK 0, WARN 1, ERROR 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

OK, WARN, ERROR = 0, 1, 2
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR"}


@dataclass
class HealthThresholds:
    """Limits of :class:`HealthMonitor` (the node's ``diag_*`` parameters).

    Attributes:
        input_timeout: seconds without an input image before WARN (0 disables).
        drop_warn: fraction of received frames dropped in a period above which WARN.
        skip_warn: fraction of received frames skipped for bad input above which WARN.
        latency_warn_ms: p95 total frame latency above which WARN (0 disables).
    """

    input_timeout: float = 3.0
    drop_warn: float = 0.5
    skip_warn: float = 0.1
    latency_warn_ms: float = 500.0


@dataclass
class HealthReport:
    """One diagnostics status: ``level`` (OK/WARN/ERROR), ``message`` and ``values``
    (``(key, text)`` pairs, rates in Hz, ratios 0-1, latencies in ms)."""

    level: int
    message: str
    values: List[Tuple[str, str]] = field(default_factory=list)


class HealthMonitor:
    """Rates and levels from successive counter snapshots.

    Args:
        thresholds: :class:`HealthThresholds`.
    """

    def __init__(self, thresholds: Optional[HealthThresholds] = None):
        self.thresholds = thresholds or HealthThresholds()
        self._prev: Optional[Tuple[float, Dict[str, int], Dict[str, int]]] = None

    def update(self, now: float, counts: Mapping[str, int], skipped: Mapping[str, int],
               latency: Mapping[str, Mapping[str, float]], input_age: Optional[float],
               info: Mapping[str, str] = ()) -> HealthReport:
        """Assess the period since the previous call.

        Args:
            now: time in seconds (any monotonic clock; the rates use its differences).
            counts: cumulative counters (``received``, ``processed``, ``dropped``, ``skipped``).
            skipped: cumulative skips per reason.
            latency: ``{stage: {"p50": ms, "p95": ms}}``; the ``total`` stage is used.
            input_age: seconds since the last input image, None if none arrived yet.
            info: extra values reported as they are (model, device, scale, ...).

        Returns:
            :class:`HealthReport`.
        """
        counts, skipped = dict(counts), dict(skipped)
        prev_t, prev_c, prev_s = self._prev or (None, {}, {})
        self._prev = (now, counts, skipped)
        d = {k: counts.get(k, 0) - prev_c.get(k, 0) for k in
             ("received", "processed", "dropped", "skipped")}
        d_skip = {k: n - prev_s.get(k, 0) for k, n in skipped.items() if n - prev_s.get(k, 0)}
        dt = now - prev_t if prev_t is not None and now > prev_t else None
        th = self.thresholds
        problems: List[Tuple[int, str]] = []
        if d_skip.get("internal_error"):
            problems.append((ERROR, f"{d_skip['internal_error']} frame(s) failed inside the node"))
        bad_input = d["skipped"] - d_skip.get("internal_error", 0)
        if d["received"] and not d["processed"] and bad_input:
            reasons = ", ".join(f"{k}={n}" for k, n in sorted(d_skip.items()))
            problems.append((ERROR, f"every input frame was skipped ({reasons})"))
        if th.input_timeout > 0 and (input_age is None or input_age > th.input_timeout):
            problems.append((WARN, "no input image yet" if input_age is None else
                             f"no input image for {input_age:.1f} s"))
        drop = d["dropped"] / d["received"] if d["received"] else 0.0
        skip = bad_input / d["received"] if d["received"] else 0.0
        if drop > th.drop_warn:
            problems.append((WARN, f"{100 * drop:.0f}% of the frames dropped (the network is "
                                   "slower than the camera)"))
        if skip > th.skip_warn:
            problems.append((WARN, f"{100 * skip:.0f}% of the frames skipped for bad input"))
        total = latency.get("total")
        if total and th.latency_warn_ms > 0 and total["p95"] > th.latency_warn_ms:
            problems.append((WARN, f"p95 latency {total['p95']:.0f} ms > "
                                   f"{th.latency_warn_ms:.0f} ms"))
        level = max((lvl for lvl, _ in problems), default=OK)
        message = "; ".join(text for _, text in problems) or "running"
        rate = (lambda n: f"{n / dt:.2f}") if dt else (lambda n: "n/a")  # noqa: E731
        values = [("input rate (Hz)", rate(d["received"])),
                  ("processed rate (Hz)", rate(d["processed"])),
                  ("drop ratio", f"{drop:.3f}"), ("skip ratio", f"{skip:.3f}"),
                  ("latency p50 (ms)", f"{total['p50']:.1f}" if total else "n/a"),
                  ("latency p95 (ms)", f"{total['p95']:.1f}" if total else "n/a"),
                  ("received", str(counts.get("received", 0))),
                  ("processed", str(counts.get("processed", 0))),
                  ("dropped", str(counts.get("dropped", 0))),
                  ("skipped", str(counts.get("skipped", 0)))]
        values += [(f"skipped: {k}", str(n)) for k, n in sorted(skipped.items())]
        values += [(k, str(v)) for k, v in dict(info).items()]
        return HealthReport(level, message, values)
