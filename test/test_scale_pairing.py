"""Reference pairing with a bounded wait (core.stamp_pairing.ApproximatePairer), on a fake clock
so no result depends on timing."""

import threading

import pytest

from mono_depth_ros.core.stamp_pairing import ApproximatePairer

NS = 1_000_000_000


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def _pair_in_thread(pairer, *args, **kwargs):
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("r", pairer.pair(*args, **kwargs)),
                          daemon=True)  # a broken pairer that never returns fails, not hangs
    th.start()
    return th, out


def _wait_blocked(th):
    th.join(0.2)  # the pair call is waiting for a reference (it would return at once otherwise)
    return th.is_alive()


def test_a_lidar_stamped_at_sweep_start_arriving_80_ms_after_the_image_pairs():
    """10 Hz lidar stamped at the start of each sweep: the scan covering an image at t = 10.03 s
    is stamped 10.00 s and arrives at 10.10 s + latency, ~80 ms after the image."""
    clock = FakeClock()
    pairer = ApproximatePairer(8, clock=clock)
    pairer.add(int(9.9 * NS), "scan 9.9")  # the previous sweep: the stream is alive
    clock.t += 0.05
    received = clock.t
    th, out = _pair_in_thread(pairer, int(10.03 * NS), 0.05, max_wait=0.15, received_at=received)
    assert _wait_blocked(th)  # nothing stamped at or after the image yet: it waits ...
    clock.t = received + 0.08
    pairer.add(int(10.0 * NS), "scan 10.0")  # ... still nothing after the image ...
    assert _wait_blocked(th)
    pairer.add(int(10.1 * NS), "scan 10.1")  # ... the next sweep decides: 10.0 is nearest
    th.join(5.0)
    assert out["r"] == ("scan 10.0", "", "")


def test_the_image_is_not_held_longer_than_max_wait():
    clock = FakeClock()
    pairer = ApproximatePairer(8, clock=clock)
    pairer.add(int(9.9 * NS), "scan 9.9")
    th, out = _pair_in_thread(pairer, int(10.03 * NS), 0.05, max_wait=0.15, received_at=clock.t)
    assert _wait_blocked(th)
    clock.t += 0.16  # past the wait: decided with what is there (nothing within 0.05 s)
    th.join(5.0)
    item, reason, detail = out["r"]
    assert item is None and reason == "stale_reference" and "-0.130 s" in detail


def test_no_wait_without_a_live_stream_and_nearest_stamp_wins():
    clock = FakeClock()
    pairer = ApproximatePairer(3, clock=clock)
    # nothing received: no wait at all, even with a long max_wait
    assert pairer.pair(10 * NS, 0.05, max_wait=1.0)[1] == "no_reference"
    for t in (9.8, 9.9, 10.02, 10.2):  # a short queue: the oldest goes
        pairer.add(int(t * NS), t)
    assert len(pairer) == 3
    assert pairer.pair(10 * NS, 0.05, max_wait=1.0) == (10.02, "", "")
    clock.t += ApproximatePairer.STREAM_SILENT_S + 0.5  # a dead sensor does not delay frames
    assert pairer.pair(int(10.5 * NS), 0.05, max_wait=1.0)[1] == "stale_reference"
    with pytest.raises(ValueError):
        ApproximatePairer(0)
