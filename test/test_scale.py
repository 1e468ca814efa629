"""The ROS-free metric scale estimator (core/scale.py) on synthetic maps with known answers."""

import math

import numpy as np
import pytest

from mono_depth_ros.core.pipeline import FramePipeline
from mono_depth_ros.core.scale import (LEVEL_SCANNER_RPY, MODE_INVERSE_AFFINE, MODE_SCALE,
                                       RELATIVE_INVERSE, MetricScaler, Reference, ScaleConfig,
                                       ScaleEstimator, ScaleFit, apply_scale, check_reference,
                                       expected_up, fit_ground_plane, fit_scale, ground_plane_scale,
                                       points_to_sparse_depth, pose_matrix, quaternion_pose,
                                       scan_points)

H, W = 120, 160
K = np.array([[150.0, 0, 79.5], [0, 150.0, 59.5], [0, 0, 1]])


def _scene(seed=0):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0.5, 8.0, (H, W)).astype(np.float32)
    return rng, gt


def _sparse(rng, gt, n, outliers=0, noise=0.0):
    ref = np.full_like(gt, np.nan)
    idx = rng.choice(gt.size, n, replace=False)
    ref.flat[idx] = gt.flat[idx] * np.exp(rng.normal(0, noise, n)) if noise else gt.flat[idx]
    # gross outliers: 2-4x too far or too near (a beam through glass, a point on another object)
    factor = rng.uniform(2.0, 4.0, outliers) ** rng.choice([-1.0, 1.0], outliers)
    ref.flat[idx[:outliers]] = gt.flat[idx[:outliers]] * factor
    return ref


def test_scale_recovered_despite_40_percent_outliers():
    rng, gt = _scene()
    pred = gt / 2.5 * np.exp(rng.normal(0, 0.03, gt.shape)).astype(np.float32)
    fit = fit_scale(pred, _sparse(rng, gt, 200, outliers=80))
    assert fit.ok and fit.reason == ""
    assert fit.scale == pytest.approx(2.5, rel=0.01)
    assert fit.support == 120 and fit.candidates == 200  # exactly the true references
    assert fit.residual < 0.05
    # plain least squares over every reference is pulled far off by the outliers
    ref = _sparse(np.random.default_rng(0), gt, 200, outliers=80)
    m = np.isfinite(ref)
    assert abs(np.sum(ref[m] * pred[m]) / np.sum(pred[m] ** 2) - 2.5) > 0.1


def test_inverse_depth_scale_and_shift_recovered():
    """Relative models: 1 / depth = s * x + t (Ranftl et al.) with outliers."""
    rng, gt = _scene(1)
    s_true, t_true = 0.3, 0.05
    x = (1.0 / gt - t_true) / s_true
    fit = fit_scale(1.0 / x, _sparse(rng, gt, 300, outliers=60, noise=0.01), MODE_INVERSE_AFFINE)
    assert fit.ok
    assert fit.scale == pytest.approx(s_true, rel=0.02)
    assert fit.shift == pytest.approx(t_true, abs=0.005)
    depth = apply_scale(1.0 / x, fit.scale, fit.shift, MODE_INVERSE_AFFINE)
    assert np.nanmedian(np.abs(depth - gt) / gt) < 0.02


def test_too_little_support_and_low_agreement_are_rejected():
    rng, gt = _scene(2)
    pred = gt / 2.0
    few = _sparse(rng, gt, 10)
    fit = fit_scale(pred, few, min_support=16)
    assert not fit.ok and fit.reason == "too_little_support"
    assert fit_scale(pred, few, min_support=8).ok  # the same references pass a lower bar
    # 200 references of which only 40 agree: below min_inlier_fraction
    noisy = _sparse(rng, gt, 200, outliers=160)
    fit = fit_scale(pred, noisy, min_support=16, min_inlier_fraction=0.3)
    assert not fit.ok and fit.reason == "low_inlier_fraction"
    assert fit_scale(pred, np.full_like(gt, np.nan)).reason == "empty_reference"


def test_check_reference_names_the_problem():
    assert check_reference(None, (H, W))[0] == "no_reference"
    assert check_reference(np.ones((H, W + 1), np.float32), (H, W))[0] == "wrong_size"
    assert check_reference(np.full((H, W), np.nan, np.float32), (H, W))[0] == "empty_reference"
    assert check_reference(np.full((H, W), np.inf, np.float32), (H, W))[0] == "non_finite"
    assert check_reference(np.ones((H, W), np.float32), (H, W)) == ("", "")


def _floor(h, pitch_deg, scale=1.0, max_depth=30.0):
    """Depth of a flat floor ``h`` m below a camera pitched by ``pitch_deg`` (divided by scale)."""
    up = expected_up(pitch_deg)
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones((H, W))], -1)
    den = rays @ up
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(den < -1e-6, -h / den, np.nan)
    z[z > max_depth] = np.nan
    return (z / scale).astype(np.float32)


def test_expected_up_in_the_optical_frame():
    np.testing.assert_allclose(expected_up(0), [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(expected_up(90), [0, 0, 1], atol=1e-12)  # looking straight up
    np.testing.assert_allclose(expected_up(-30), [0, -math.cos(math.radians(30)), -0.5], atol=1e-12)


def test_ground_plane_scale_from_camera_height():
    pred = _floor(1.5, -20.0, scale=2.0)
    pred[:, 120:] = 3.0  # a wall on the right takes a quarter of the region
    fit, plane = ground_plane_scale(pred, K, camera_height=1.5, pitch_deg=-20.0)
    assert fit.ok and plane.ok
    assert fit.scale == pytest.approx(2.0, rel=1e-3)
    assert plane.distance == pytest.approx(0.75, rel=1e-3) and plane.tilt_deg < 0.5
    np.testing.assert_allclose(plane.normal, expected_up(-20.0), atol=1e-3)
    # the same floor with the pitch read 10 degrees wrong still passes within max_tilt ...
    assert ground_plane_scale(pred, K, 1.5, pitch_deg=-10.0)[0].ok
    # ... but not when the floor normal is further than max_tilt from the expected up
    fit, _ = ground_plane_scale(_floor(1.5, -20.0), K, 1.5, pitch_deg=10.0, max_tilt_deg=15.0)
    assert not fit.ok and fit.reason == "not_a_floor"
    assert ground_plane_scale(_floor(1.5, -20.0), K, 1.5, pitch_deg=10.0, max_tilt_deg=35.0)[0].ok


def test_a_wall_is_not_a_floor():
    wall = np.full((H, W), 3.0, np.float32)  # fronto-parallel: normal along z
    fit = fit_ground_plane(wall, K)
    assert not fit.ok and fit.reason == "not_a_floor"
    # accepted only when the expected "up" is the wall's normal (toward the camera)
    assert fit_ground_plane(wall, K, up=np.array([0.0, 0.0, -1.0])).ok


def test_pose_and_scan_projection():
    T = pose_matrix([0.1, 0.2, 0.3], LEVEL_SCANNER_RPY)
    # a level scanner: its x (forward) is the optical z, y (left) is -x, z (up) is -y
    np.testing.assert_allclose(T[:3, :3], [[0, -1, 0], [0, 0, -1], [1, 0, 0]], atol=1e-12)
    np.testing.assert_allclose(T[:3, 3], [0.1, 0.2, 0.3])
    q = quaternion_pose([0, 0, 0], [0.5, -0.5, 0.5, 0.5])  # the same rotation as a quaternion
    np.testing.assert_allclose(q[:3, :3], T[:3, :3], atol=1e-12)
    pts = scan_points([2.0, np.inf, 0.01, 4.0], angle_min=0.0, angle_increment=math.pi / 2,
                      range_min=0.05, range_max=10.0)
    np.testing.assert_allclose(pts, [[2.0, 0, 0], [0, -4.0, 0]], atol=1e-12)  # inf / too near dropped
    ref = points_to_sparse_depth(pts[:1], K, (H, W), T)  # 2 m ahead, 0.2 m below the centre
    v, u = np.nonzero(np.isfinite(ref))
    assert ref[v[0], u[0]] == pytest.approx(2.3)
    assert (u[0], v[0]) == (round(150 * 0.1 / 2.3 + 79.5), round(150 * 0.2 / 2.3 + 59.5))
    # two points on one pixel: the nearer wins
    two = points_to_sparse_depth(np.array([[0, 0, 5.0], [0, 0, 2.0]]), K, (H, W))
    assert np.nanmax(two) == 2.0 and np.isfinite(two).sum() == 1


def _good(s, shift=0.0, x_ref=float("nan")):
    return ScaleFit(scale=s, shift=shift, support=50, candidates=60, residual=0.02, ok=True,
                    x_ref=x_ref)


def test_temporal_filter_smooths_with_the_previous_weight_and_expires():
    est = ScaleEstimator(MODE_SCALE, smoothing=0.2, jump_ratio=1.5, max_age=2.0, jump_confirm=1)
    assert est.update(_good(2.0), 0.0).scale == pytest.approx(2.0)
    # log EMA, weight 0.2 on the previous value (swapping the weights gives 2.0^0.8 * 2.4^0.2)
    assert est.update(_good(2.4), 0.1).scale == pytest.approx(2.0 ** 0.2 * 2.4 ** 0.8)
    held = est.update(ScaleFit(reason="no_reference"), 1.1)
    assert (held.status, held.reason, held.age) == ("held", "no_reference", pytest.approx(1.0))
    gone = est.update(ScaleFit(reason="no_reference"), 2.5)
    assert gone.status == "fallback" and est.rejected["no_reference"] == 2
    assert gone.rejections == 2
    assert est.update(_good(1.0), 0.0).scale == 1.0  # time went back (a bag restarted): reset
    inv = ScaleEstimator(MODE_INVERSE_AFFINE, smoothing=0.2, jump_confirm=1)
    inv.update(_good(0.3, 0.05), 0.0)
    st = inv.update(_good(0.32, 0.04), 0.1)
    assert (st.scale, st.shift) == (pytest.approx(0.2 * 0.3 + 0.8 * 0.32),
                                    pytest.approx(0.2 * 0.05 + 0.8 * 0.04))


@pytest.mark.parametrize("factor", [2.0, 0.5])  # a jump up and a jump down
def test_a_jump_needs_agreeing_fits_in_a_row_in_both_directions(factor):
    est = ScaleEstimator(MODE_SCALE, smoothing=0.5, jump_ratio=1.5, max_age=2.0, jump_confirm=3)
    # the first scale needs confirming as well: nothing to compare it with
    assert [est.update(_good(2.0), t).status for t in (0.0, 0.1, 0.2)] == \
        ["fallback", "fallback", "fitted"]
    new = 2.0 * factor
    # one outlier fit: held at the old scale
    st = est.update(_good(new), 0.3)
    assert (st.status, st.scale, st.reason, st.pending) == ("held", 2.0, "scale_jump", 1)
    assert est.update(_good(2.0), 0.4).scale == pytest.approx(2.0)  # back: the run is broken
    # a real change: held for two fits, taken at the third (a rejected frame in between
    # neither confirms nor breaks the run)
    assert est.update(_good(new), 0.5).scale == 2.0
    assert est.update(ScaleFit(reason="stale_reference"), 0.55).scale == 2.0
    assert est.update(_good(new * 1.1), 0.6).status == "held"
    st = est.update(_good(new), 0.7)
    assert (st.status, st.scale, st.pending) == ("fitted", pytest.approx(new), 0)
    assert est.resets == 1 and est.rejected["scale_jump"] == 2 + 1 + 2  # start, outlier, run
    # disagreeing jump candidates never confirm one another
    est2 = ScaleEstimator(MODE_SCALE, jump_confirm=2)
    est2.update(_good(2.0 * factor), 0.0)
    assert est2.update(_good(2.0 / factor), 0.1).status == "fallback"


def test_inverse_affine_jumps_are_measured_in_depth_not_in_scale():
    """Scale and shift trade off: (0.3, 0.05) and (0.2, 0.15) give the same inverse depth at x=1,
    so the second is no jump there; (0.3, 0.5) is one."""
    est = ScaleEstimator(MODE_INVERSE_AFFINE, smoothing=0.0, jump_ratio=1.5, jump_confirm=2)
    est.update(_good(0.3, 0.05, x_ref=1.0), 0.0)
    assert est.update(_good(0.3, 0.05, x_ref=1.0), 0.1).status == "fitted"
    assert est.update(_good(0.2, 0.15, x_ref=1.0), 0.2).status == "fitted"
    assert est.update(_good(0.3, 0.5, x_ref=1.0), 0.3).status == "held"


def test_one_outlier_reference_frame_moves_the_published_depth_by_at_most_15_percent():
    """Default settings: a frame whose references are 1.8x the others (fitted with full support)
    is held out, in both directions."""
    rng, gt = _scene(6)
    pred = gt / 2.0
    for factor in (1.8, 1 / 1.8):
        sc = MetricScaler(ScaleConfig(source="sparse_depth"))
        depths = []
        for i in range(8):
            f = factor if i == 5 else 1.0
            out = sc(pred, K, 0.1 * i, "metric_depth", Reference(f * _sparse(rng, gt, 64)),
                     valid_range=(0.0, 100.0))
            assert out.fit.ok  # the outlier frame's own fit is good: support 64 of 64
            depths.append(out.depth)
        assert depths[0] is None and depths[1] is None  # the first scale is being confirmed
        for before, after in zip(depths[2:], depths[3:]):
            change = np.nanmax(np.abs(after / before - 1.0))
            assert change <= 0.15, (factor, change)
        np.testing.assert_allclose(depths[-1], gt, rtol=1e-4)


def test_support_counts_only_the_agreeing_references():
    """15 of 40 references agree on a scale (the other 25 scatter): below min_support 16, so no
    scale, although 40 references were offered and 15 >= 0.3 * 40."""
    rng, gt = _scene(7)
    pred = gt / 2.0
    ref = np.full_like(gt, np.nan)
    idx = rng.choice(gt.size, 40, replace=False)
    ref.flat[idx[:15]] = 3.0 * pred.flat[idx[:15]]
    # the 25 others: scales spread in log space far from 3 (each agrees with a few neighbours)
    others = np.concatenate([np.geomspace(0.05, 1.2, 13), np.geomspace(8.0, 80.0, 12)])
    ref.flat[idx[15:]] = pred.flat[idx[15:]] * others[rng.permutation(25)]
    fit = fit_scale(pred, ref, min_support=16, min_inlier_fraction=0.3)
    assert not fit.ok and fit.reason == "too_little_support" and fit.support == 15
    assert fit.candidates == 40 and "15 agreeing of 40" in fit.detail
    assert fit_scale(pred, ref, min_support=15).ok  # the same minority passes a bar of 15


def test_scale_and_shift_need_references_spread_in_depth():
    """A wall at 7.7 m: any (scale, shift) line through that one inverse depth fits, so the fit
    is degenerate; the same model against references from 1 to 8 m fits."""
    rng, gt = _scene(8)
    s_true, t_true = 0.3, 0.05
    x = (1.0 / gt - t_true) / s_true
    wall = np.full_like(gt, np.nan)
    idx = rng.choice(gt.size, 200, replace=False)
    wall.flat[idx] = 7.7 * np.exp(rng.normal(0, 0.02, 200))  # the wall, 2 % range noise
    xw = x.copy()
    xw.flat[idx] = (1.0 / 7.7 - t_true) / s_true * np.exp(rng.normal(0, 0.05, 200))
    fit = fit_scale(1.0 / xw, wall, MODE_INVERSE_AFFINE)
    assert not fit.ok and fit.reason == "degenerate" and "spread" in fit.detail
    assert fit_scale(1.0 / xw, wall, MODE_SCALE).ok  # one parameter is fixed by one depth
    ok = fit_scale(1.0 / x, _sparse(rng, gt, 200), MODE_INVERSE_AFFINE)
    assert ok.ok and ok.scale == pytest.approx(s_true, rel=1e-3)
    # a prediction with one value on every reference cannot tell scale from shift either
    flat = np.full_like(gt, 2.0)
    fit = fit_scale(1.0 / flat, _sparse(rng, gt, 200), MODE_INVERSE_AFFINE, inlier_threshold=5.0,
                    min_inlier_fraction=0.0)
    assert not fit.ok and fit.reason == "degenerate"


def test_metric_scaler_sources_fallback_and_skip():
    rng, gt = _scene(3)
    pred = gt / 2.0
    ref = Reference(_sparse(rng, gt, 100))
    sc = MetricScaler(ScaleConfig(source="sparse_depth", max_age=1.0, jump_confirm=1,
                                  fallback="unscaled"))
    out = sc(pred, K, 0.0, "metric_depth", ref, valid_range=(0.1, 10.0))
    assert out.state.status == "fitted" and out.state.scale == pytest.approx(2.0, rel=1e-4)
    assert np.nanmax(out.depth) <= 10.0 and np.isnan(out.depth[gt * 1.0 > 10.0]).all()
    np.testing.assert_allclose(out.depth[gt <= 10.0], gt[gt <= 10.0], rtol=1e-4)
    out = sc(pred, K, 0.5, "metric_depth", Reference(np.ones((H, 3), np.float32)))
    assert out.state.status == "held" and out.warnings[0][0] == "scale_wrong_size"
    np.testing.assert_allclose(out.depth, gt, rtol=1e-4)  # the held scale still applies
    out = sc(pred, K, 2.0, "metric_depth", Reference(problem="stale_reference", detail="0.3 s"),
             valid_range=(0.1, 10.0))
    assert out.state.status == "fallback"  # unscaled fallback, masked like any output
    np.testing.assert_array_equal(out.depth, np.where(pred <= 10.0, pred, np.nan))
    assert sc.rejected == {"scale_wrong_size"[6:]: 1, "stale_reference": 1}
    assert ScaleConfig().fallback == "skip"  # the default: no depth rather than unscaled depth
    skip = MetricScaler(ScaleConfig(source="sparse_depth"))
    out = skip(pred, K, 0.0, "metric_depth", None)
    assert out.depth is None and out.warnings[-1][0] == "no_scale"
    fixed = MetricScaler(ScaleConfig(source="fixed", fixed_scale=3.0))(pred, K, 0.0, "metric_depth")
    np.testing.assert_allclose(fixed.depth, pred * 3.0)
    with pytest.raises(ValueError, match="camera_height"):
        ScaleConfig(source="ground_plane")
    with pytest.raises(ValueError, match="scale_source"):
        ScaleConfig(source="lidar")


class _RelativeEstimator:
    """A relative model: its 'depth' is 1 / x of an affine-invariant inverse depth x."""

    def __init__(self, gt):
        from types import SimpleNamespace
        self.gt, self.palette, self.min_depth, self.max_depth = gt, None, 0.0, 100.0
        self.spec = SimpleNamespace(output_kind=RELATIVE_INVERSE)

    def segmentation_info(self, key):
        return None

    def predict(self, rgb, K):
        from types import SimpleNamespace
        x = (1.0 / self.gt - 0.05) / 0.3
        return SimpleNamespace(depth=(1.0 / x).astype(np.float32), labels=None, timings={})


def test_pipeline_scales_relative_model_output_before_the_cloud():
    rng, gt = _scene(4)
    pipe = FramePipeline(_RelativeEstimator(gt), scaler=MetricScaler(
        ScaleConfig(source="sparse_depth", min_support=16, jump_confirm=1)))
    rgb = np.zeros((H, W, 3), np.uint8)
    res = pipe.process(rgb, K, ("depth", "points"), Reference(_sparse(rng, gt, 100)), stamp=1.0)
    assert res.scale.status == "fitted" and res.skip is None
    np.testing.assert_allclose(res.depth, gt, rtol=1e-3)
    np.testing.assert_allclose(res.points.points[..., 2], gt, rtol=1e-3)  # cloud from scaled depth
    assert "scale" in res.timings
    # no reference, no earlier scale: a relative model has no metric depth to fall back on
    pipe2 = FramePipeline(_RelativeEstimator(gt), scaler=MetricScaler(ScaleConfig(source="scan")))
    res = pipe2.process(rgb, K, ("depth",), None, stamp=1.0)
    assert res.skip[0] == "no_scale" and res.depth is None and res.points is None


def test_a_scaled_relative_model_keeps_a_40_m_road():
    """A relative model's default range is no metric range: after a metric scale a road to 40 m
    keeps every pixel (it used to stop at the spec's 10 m)."""
    from mono_depth_ros.models import get_spec
    lo, hi = get_spec("depth_anything_v2_small").depth_range
    road = np.linspace(2.0, 40.0, H * W, dtype=np.float32).reshape(H, W)
    est = _RelativeEstimator(road)
    est.min_depth, est.max_depth = lo, hi
    pipe = FramePipeline(est, scaler=MetricScaler(ScaleConfig(
        source="sparse_depth", jump_confirm=1)))
    rng = np.random.default_rng(9)
    res = pipe.process(np.zeros((H, W, 3), np.uint8), K, ("depth",),
                       Reference(_sparse(rng, road, 200)), stamp=0.0)
    assert res.scale.status == "fitted"
    np.testing.assert_allclose(res.depth, road, rtol=1e-3)  # all of it, up to 40 m
