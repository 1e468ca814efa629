"""A clean stop on SIGINT / SIGTERM for the project's ROS processes (depth_node, play, record).

rclpy's own signal handlers shut the context down from a signal-handling thread at once, while
the program may still be inside an executor wait, a publish or a log call: that is the race behind
``RCLError: failed to initialize wait set: the given context is not valid``, ``RCLError: Failed
to publish: publisher's context is invalid`` and ``Failed to publish log message to rosout``
(anything logged after the signal). Here the signal only *requests* the stop: the process leaves
its loop at the next check (at most one ``spin_once`` timeout later), logs its last lines while
the context is still valid, destroys its nodes, and then shuts the context down itself
(``rclpy.try_shutdown``). Long start-up work that publishes nothing (a model load) runs inside
:meth:`StopRequest.interrupting`, where the signal raises ``KeyboardInterrupt`` at once.

Exit codes (one rule for the project): a process whose normal end is a signal (``depth_node``,
``depth_lifecycle_node``, ``record``) exits 0 on SIGINT / SIGTERM; ``play``, whose job is to play
the bag to its end, exits 128 + the signal when one cuts it short (130 for Ctrl-C, 143 for
SIGTERM; ``--loop`` included), after printing what it published.

Usage::

    stop = init_ros(args)          # rclpy.init without rclpy's handlers + ours
    while not stop.requested:
        executor.spin_once(timeout_sec=0.1)
    ...log, destroy nodes...
    rclpy.try_shutdown()
    stop.restore()
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Dict, Iterable, Optional

#: The signals that request a stop (launch sends SIGINT, then SIGTERM after a timeout).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Turns SIGINT / SIGTERM into a flag (:attr:`requested`) and an :class:`threading.Event`
    (:attr:`event`, for interruptible sleeps). Python runs the handler in the main thread
    between two bytecodes, so it never interrupts a publish or a log call half way."""

    def __init__(self, signals: Iterable[int] = STOP_SIGNALS):
        self.signals = tuple(signals)
        self.event = threading.Event()
        self.signum: Optional[int] = None
        self._previous: Dict[int, object] = {}
        self._interrupting = False

    def install(self) -> "StopRequest":
        """Install the handlers (main thread only); returns self."""
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def restore(self) -> None:
        """Put back the handlers that were there before :meth:`install`."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handler(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        if self.signum is None:
            self.signum = signum
        self.event.set()
        if self._interrupting:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def interrupting(self):
        """Within this block a stop signal also raises ``KeyboardInterrupt`` (as Python's own
        SIGINT handler does), for long work that publishes nothing, such as loading a model or
        building an engine, which should not have to finish before the process can stop."""
        self._interrupting = True
        try:
            if self.requested:
                raise KeyboardInterrupt
            yield self
        finally:
            self._interrupting = False

    @property
    def requested(self) -> bool:
        """True once a stop signal arrived."""
        return self.event.is_set()

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, returning early (True) when a stop is requested."""
        return self.event.wait(max(0.0, seconds))


def init_ros(args=None, context=None) -> StopRequest:
    """``rclpy.init`` without rclpy's signal handlers, then :class:`StopRequest`'s installed."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    rclpy.init(args=args, context=context, signal_handler_options=SignalHandlerOptions.NO)
    return StopRequest().install()


def context_gone(exc: BaseException, context=None) -> bool:
    """True when ``exc`` is what rclpy raises because the context was shut down under a call
    (by someone else: ``rclpy.shutdown()`` from another thread, a parent's rclpy handler): an
    ``ExternalShutdownException``, or an ``RCLError`` / ``InvalidHandle`` while the context is no
    longer valid. Such an error ends the process normally; any other error is a bug."""
    import rclpy
    from rclpy.exceptions import InvalidHandle
    from rclpy.executors import ExternalShutdownException
    from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
    if isinstance(exc, ExternalShutdownException):
        return True
    return isinstance(exc, (_rclpy.RCLError, InvalidHandle)) and not rclpy.ok(context=context)
