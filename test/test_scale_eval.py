"""``evaluate --scale-source``: references simulated from ground truth, metrics.json fields."""

import json
import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from mono_depth_ros.tools.evaluate import evaluate_model
from mono_depth_ros.tools.scale_eval import (SCAN_COLUMN_STEP, SimulatedScaleSource,
                                             parse_scale_source, pose_height_pitch,
                                             scan_reference, sparse_reference)
from mono_depth_ros.tools.synth.render import camera_pose

H, W = 60, 80
K = np.array([[70.0, 0, 39.5], [0, 70.0, 29.5], [0, 0, 1]])


def test_parse_scale_source():
    assert parse_scale_source("sparse:64").count == 64
    assert parse_scale_source("scan").band == 2 and parse_scale_source("scan:0").band == 0
    g = parse_scale_source("ground:1.65:-2.5")
    assert (g.height, g.pitch, g.from_pose) == (1.65, -2.5, False)
    assert parse_scale_source("ground:pose").from_pose
    assert parse_scale_source("fixed:1.7").scale == 1.7
    for bad in ("sparse", "sparse:0", "sparse:x", "ground", "ground:-1", "fixed:0", "lidar:3",
                "scan:1:2"):
        with pytest.raises(ValueError, match="--scale-source"):
            parse_scale_source(bad)


def test_simulated_references():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 9.0, (H, W)).astype(np.float32)
    gt[:10] = np.nan
    ref = sparse_reference(gt, 64, np.random.default_rng(1), (1e-3, 10.0))
    m = np.isfinite(ref)
    assert m.sum() == 64 and not m[:10].any()
    np.testing.assert_array_equal(ref[m], gt[m])
    again = sparse_reference(gt, 64, np.random.default_rng(1), (1e-3, 10.0))
    np.testing.assert_array_equal(np.isfinite(again), m)  # a fixed seed repeats exactly
    band = scan_reference(gt, K, band=1)
    rows, cols = np.nonzero(np.isfinite(band))
    assert set(rows) == {29, 30, 31} and set(cols % SCAN_COLUMN_STEP) == {0}
    assert len(cols) == 3 * W // SCAN_COLUMN_STEP


def test_pose_height_and_pitch():
    h, p = pose_height_pitch(camera_pose((3.0, -1.0, 1.62), yaw_deg=20.0, pitch_deg=-4.0))
    assert h == pytest.approx(1.62) and p == pytest.approx(-4.0)


def _floor_sample(h=1.5, pitch=-10.0):
    """A flat floor h m below a camera pitched by ``pitch`` degrees (upper half: a wall at 6 m)."""
    pose = camera_pose((0.0, 0.0, h), pitch_deg=pitch)
    up = pose[2, :3]
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones((H, W))], -1)
    den = rays @ up
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(den < -1e-6, -h / den, 6.0)
    z = np.minimum(z, 6.0).astype(np.float32)
    return SimpleNamespace(rgb=np.zeros((H, W, 3), np.uint8), depth=z, K=K, pose=pose, name="f0")


class _HalfDepth:
    """A model that predicts half the true depth."""

    name, checkpoint = "half", None
    spec = SimpleNamespace(output_kind="metric_depth")

    def __init__(self, samples):
        self.gt = {id(s.rgb): s.depth for s in samples}

    def predict(self, rgb, K):
        return SimpleNamespace(depth=self.gt[id(rgb)] / 2.0)


@pytest.mark.parametrize("source", ["sparse:64", "scan", "ground:1.5:-10", "ground:pose", "fixed:2"])
def test_evaluate_with_each_scale_source(tmp_path, source):
    samples = [_floor_sample()]
    summary = evaluate_model(_HalfDepth(samples), samples, tmp_path, 1e-3, 10.0, panels=0,
                             progress=False, scale_source=source)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["scale_source"] == summary["scale_source"] == source
    fit = saved["per_frame"][0]["scale_fit"]
    assert fit["status"] in ("fitted", "fixed") and fit["scale"] == pytest.approx(2.0, rel=1e-3)
    assert saved["mean"]["abs_rel"] < 1e-3  # after the scale the prediction is the ground truth
    assert saved["mean_median_scaled"]["abs_rel"] < 1e-3
    assert saved["scale_fits"]["fitted"] == 1
    unscaled = evaluate_model(_HalfDepth(samples), samples, tmp_path / "none", 1e-3, 10.0,
                              panels=0, progress=False)
    assert unscaled["mean"]["abs_rel"] == pytest.approx(0.5, abs=1e-6)
    assert unscaled["scale_source"] == "none" and "scale_fit" not in unscaled["per_frame"][0]


def test_a_rejected_frame_has_no_depth_and_says_why(tmp_path):
    """As the node with its default scale_fallback (skip): no depth, and the row says why."""
    s = _floor_sample()
    src = SimulatedScaleSource("ground:1.5:60", "metric_depth", (1e-3, 10.0))  # "looking up"
    depth, info = src(s, s.depth / 2.0)
    assert info["status"] == "fallback" and info["reason"] in ("not_a_floor", "low_inlier_fraction")
    assert depth is None and not math.isnan(info["scale"])
    unscaled = SimulatedScaleSource("ground:1.5:60", "metric_depth", (1e-3, 10.0),
                                    fallback="unscaled")
    np.testing.assert_array_equal(unscaled(s, s.depth / 2.0)[0], s.depth / 2.0)


class _MaskedHalfDepth:
    """Half the true depth (1.27-3 m), masked by the network's own range (1.5, 2.5) m as the
    estimator does; the node masks to (min_depth, max_depth) = (0.5, 5) m after the scale."""

    name, checkpoint, min_depth, max_depth = "masked_half", None, 0.5, 5.0
    spec = SimpleNamespace(output_kind="metric_depth")
    palette = None

    def __init__(self, gt):
        self.gt = gt

    def segmentation_info(self, key):
        return None

    def predict(self, rgb, K):
        half = (self.gt / 2.0).astype(np.float32)
        masked = np.where((half >= 1.5) & (half <= 2.5), half, np.nan).astype(np.float32)
        return SimpleNamespace(depth=masked, unmasked=half, labels=None, timings={})


def test_evaluate_scores_exactly_what_the_node_publishes(tmp_path):
    """The same frame through the node's pipeline and through evaluate --scale-source gives the
    same array: scaled from the depth before the network's mask, masked after, in metres."""
    from mono_depth_ros.core.pipeline import FramePipeline
    from mono_depth_ros.core.scale import MetricScaler, ScaleConfig
    s = _floor_sample()
    est = _MaskedHalfDepth(s.depth)
    src = SimulatedScaleSource("fixed:2", "metric_depth", (1e-3, 10.0),
                               mask_range=(est.min_depth, est.max_depth))
    scored, info = src(s, est.predict(s.rgb, s.K))
    node = FramePipeline(est, scaler=MetricScaler(ScaleConfig(source="fixed", fixed_scale=2.0)))
    published = node.process(s.rgb, s.K, ("depth",), stamp=0.0).depth
    np.testing.assert_array_equal(scored, published)
    # masks in metres after the scale: 0.5-5 m kept (the 2.5-3 m the network's own mask cut
    # at 1.5 m * 2 too), beyond 5 m NaN
    want = np.where((s.depth >= 0.5) & (s.depth <= 5.0), s.depth, np.nan)
    np.testing.assert_allclose(published, want, rtol=1e-6)
    assert np.isfinite(published[s.depth < 3.0]).sum() > 100
    summary = evaluate_model(est, [s], tmp_path, 1e-3, 10.0, panels=0, progress=False,
                             scale_source="fixed:2")
    assert summary["mean"]["coverage"] == pytest.approx(np.isfinite(want).mean(), abs=1e-6)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mono_depth_ros.tools.cli", *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_refuses_bad_scale_sources(tmp_path):
    res = _cli("evaluate", "--data", str(tmp_path), "--scale-source", "sparse")
    assert res.returncode == 2 and "bad --scale-source 'sparse'" in res.stderr
    res = _cli("evaluate", "--bag", str(tmp_path), "--scale-source", "sparse:8")
    assert res.returncode == 2 and "needs --data" in res.stderr
