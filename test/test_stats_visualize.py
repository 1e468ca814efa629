"""Pipeline statistics and depth colouring / evaluation panels."""

import threading

import cv2
import numpy as np
import pytest

from mono_depth_ros.core.stats import PipelineStats
from mono_depth_ros.core.visualize import colorize_depth, colorize_labels, depth_range, error_panel


# --------------------------------------------------------------------------- PipelineStats

def test_counts_and_skip_reasons():
    st = PipelineStats()
    st.count("received", 5)
    st.count("processed", 3)
    st.count("dropped")
    st.skip("size_mismatch")
    st.skip("size_mismatch")
    st.skip("zero_intrinsics")
    assert st.counts["received"] == 5 and st.counts["processed"] == 3
    assert st.counts["dropped"] == 1 and st.counts["skipped"] == 3
    assert dict(st.skipped) == {"size_mismatch": 2, "zero_intrinsics": 1}
    line = st.summary_line()
    assert "received=5" in line and "processed=3" in line and "dropped=1" in line
    assert "skipped=3" in line
    assert "(size_mismatch=2, zero_intrinsics=1)" in line


def test_percentiles():
    st = PipelineStats()
    for v in range(1, 101):
        st.add_timings({"inference": float(v), "total": 2.0 * v})
    p = st.percentiles()
    assert p["inference"]["p50"] == pytest.approx(50.5)
    assert p["inference"]["p95"] == pytest.approx(95.05)
    assert p["total"]["p50"] == pytest.approx(101.0)
    assert set(st.percentiles(["inference"])) == {"inference"}
    assert st.percentiles(["never_recorded"]) == {}
    line = st.summary_line()
    assert "inference=50.5/95.0ms" in line and line.endswith("[p50/p95]")


def test_latency_window_drops_oldest():
    st = PipelineStats(window=10)
    for v in range(1, 101):
        st.add_timings({"x": float(v)})
    assert st.percentiles()["x"]["p50"] == pytest.approx(95.5)  # median of 91..100


def test_empty_summary_line():
    line = PipelineStats().summary_line()
    assert line.startswith("received=0 processed=0 dropped=0 skipped=0")
    assert "(" not in line


def test_thread_safe_counting():
    st = PipelineStats()

    def work():
        for _ in range(2000):
            st.count("received")
            st.skip("bad_step")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert st.counts["received"] == 8000 and st.skipped["bad_step"] == 8000
    assert st.counts["skipped"] == 8000


# --------------------------------------------------------------------------- colouring

def test_colorize_depth_nan_black_and_shape():
    depth = np.linspace(0.5, 5.0, 6 * 8, dtype=np.float32).reshape(6, 8)
    depth[2, 3] = np.nan
    depth[4, 1] = np.inf
    out = colorize_depth(depth, 0.0, 6.0)
    assert out.shape == (6, 8, 3) and out.dtype == np.uint8
    assert out[2, 3].tolist() == [0, 0, 0]
    assert out[4, 1].tolist() == [0, 0, 0]
    assert (out.reshape(-1, 3).sum(axis=1) > 0).sum() == 6 * 8 - 2


def test_colorize_depth_fixed_range_near_red_far_blue():
    depth = np.array([[0.5, 9.5, 5.0]], dtype=np.float32)
    out = colorize_depth(depth, 0.0, 10.0)  # BGR
    near, far, mid = out[0, 0].astype(int), out[0, 1].astype(int), out[0, 2].astype(int)
    assert not np.array_equal(near, far)
    assert near[2] > near[0]  # near: red dominates (BGR index 2)
    assert far[0] > far[2]  # far: blue dominates
    # the fixed range maps exactly like OpenCV's TURBO on the reversed normalised value
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[None], cv2.COLORMAP_TURBO)[0]
    for val, px in ((0.5, near), (9.5, far), (5.0, mid)):
        idx = int((10.0 - val) * 25.5)
        np.testing.assert_array_equal(px, lut[idx])
    # values outside the range saturate at the ends
    sat = colorize_depth(np.array([[-3.0, 0.0, 10.0, 50.0]], np.float32), 0.0, 10.0)
    np.testing.assert_array_equal(sat[0, 0], lut[255])
    np.testing.assert_array_equal(sat[0, 1], lut[255])
    np.testing.assert_array_equal(sat[0, 2], lut[0])
    np.testing.assert_array_equal(sat[0, 3], lut[0])


def test_depth_range_auto_and_fixed():
    assert depth_range(np.ones((2, 2)), 1.0, 4.0) == (1.0, 4.0)
    d = np.arange(1, 101, dtype=np.float32).reshape(10, 10)
    d[0, 0] = np.nan
    lo, hi = depth_range(d)
    assert lo == pytest.approx(np.percentile(np.arange(2, 101), 2))
    assert hi == pytest.approx(np.percentile(np.arange(2, 101), 98))
    assert depth_range(np.full((2, 2), np.nan)) == (0.0, 1.0)
    lo, hi = depth_range(np.full((2, 2), 3.0))
    assert hi > lo  # constant image still gives a usable range


def test_colorize_all_nan():
    out = colorize_depth(np.full((3, 4), np.nan, np.float32))
    assert out.shape == (3, 4, 3) and not out.any()


def test_colorize_labels_bgr():
    labels = np.array([[0, 1], [2, 1]], np.uint8)
    out = colorize_labels(labels, [(255, 0, 0), (0, 255, 0), (10, 20, 30)])
    assert out[0, 0].tolist() == [0, 0, 255]  # red in BGR
    assert out[1, 0].tolist() == [30, 20, 10]


def test_error_panel_shape_and_tiles():
    h, w = 80, 120
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    gt = rng.uniform(1.0, 4.0, (h, w)).astype(np.float32)
    gt[36:50, 100:] = np.nan
    pred = gt + 0.1
    panel = error_panel(rgb, gt, pred, "title", vmax=5.0)
    assert panel.shape == (h, 4 * w, 3) and panel.dtype == np.uint8
    # rows 38..48 are clear of the tile labels (top) and the title (bottom)
    rows = slice(38, 48)
    np.testing.assert_array_equal(panel[rows, :w], rgb[rows])  # tile 1: the RGB input
    # tiles 2-3: RGB versions of colorize_depth's BGR on the shared 0..vmax range
    gt_tile = cv2.cvtColor(colorize_depth(gt, 0.0, 5.0), cv2.COLOR_BGR2RGB)
    pr_tile = cv2.cvtColor(colorize_depth(pred, 0.0, 5.0), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(panel[rows, w:2 * w], gt_tile[rows])
    np.testing.assert_array_equal(panel[rows, 2 * w:3 * w], pr_tile[rows])
    # invalid GT is black in the GT, prediction-error tiles
    assert not panel[rows, w + 100:2 * w].any()
    assert not panel[rows, 3 * w + 100:].any()
    # constant |error| 0.1 of a 2.5 m error range -> one uniform INFERNO colour elsewhere
    err_colour = cv2.applyColorMap(np.array([[int(0.1 / 2.5 * 255)]], np.uint8),
                                   cv2.COLORMAP_INFERNO)[0, 0][::-1]
    np.testing.assert_array_equal(panel[rows, 3 * w:3 * w + 100].reshape(-1, 3),
                                  np.broadcast_to(err_colour, (10 * 100, 3)))
    auto = error_panel(rgb, gt, pred)  # automatic range
    assert auto.shape == (h, 4 * w, 3)


def test_summary_line_reads_the_counters_under_the_lock():
    """The status timer formats while the worker thread counts: every read of the counters
    happens with the lock held (a dict iterated while another thread adds a reason raises, and
    counts read apart disagree)."""
    from collections import Counter

    from mono_depth_ros.core.stats import PipelineStats
    stats = PipelineStats()

    class Guarded(Counter):
        def items(self):
            assert stats._lock.locked(), "counter read without the lock"
            return super().items()

        def __iter__(self):
            assert stats._lock.locked(), "counter read without the lock"
            return super().__iter__()

    stats.skipped = Guarded()
    stats.counts = Guarded()
    stats.skip("bad_step")
    stats.count("received", 3)
    line = stats.summary_line()
    assert "received=3" in line and "skipped=1" in line and "bad_step=1" in line
    assert stats.snapshot()[1] == {"bad_step": 1}
