"""Depth metrics against hand-computed values, output-kind conversion and device selection."""

import math

import numpy as np
import pytest
import torch

from mono_depth_ros.core.metrics import (APPENDIX_A, KITTI_RANGE_50, KITTI_RANGE_80, LOWER_IS_BETTER,
                                    METRIC_NAMES, ConfusionMatrix, compute_depth_metrics,
                                    eigen_crop_mask, format_appendix_a, garg_crop_mask,
                                    mean_metrics, segmentation_iou, valid_mask)
from mono_depth_ros.models.spec import ModelSpec, output_to_metric_depth
from mono_depth_ros.inference.estimator import select_device, select_precision


def _expected(pred, gt):
    """The module docstring's definitions, in plain Python."""
    n = len(gt)
    err = [p - g for p, g in zip(pred, gt)]
    le = [math.log(p) - math.log(g) for p, g in zip(pred, gt)]
    ratio = [max(p / g, g / p) for p, g in zip(pred, gt)]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return dict(
        abs_rel=mean([abs(e) / g for e, g in zip(err, gt)]),
        sq_rel=mean([e * e / g for e, g in zip(err, gt)]),
        rmse=math.sqrt(mean([e * e for e in err])),
        rmse_log=math.sqrt(mean([x * x for x in le])),
        log10=mean([abs(math.log10(p) - math.log10(g)) for p, g in zip(pred, gt)]),
        silog=math.sqrt(mean([x * x for x in le]) - mean(le) ** 2) * 100.0,
        delta1=sum(r < 1.25 for r in ratio) / n,
        delta2=sum(r < 1.25 ** 2 for r in ratio) / n,
        delta3=sum(r < 1.25 ** 3 for r in ratio) / n,
        mse=mean([e * e for e in err]),
        r2=1 - sum(e * e for e in err) / sum((g - mean(gt)) ** 2 for g in gt),
    )


def test_metrics_hand_computed_example():
    gt = np.array([1.0, 2.0, 4.0])
    pred = np.array([1.1, 1.8, 5.0])
    m = compute_depth_metrics(pred, gt)
    exp = _expected([1.1, 1.8, 5.0], [1.0, 2.0, 4.0])
    for k in METRIC_NAMES:
        assert m[k] == pytest.approx(exp[k], rel=1e-9, abs=1e-12), k
    # literal values worked out on paper
    assert m["abs_rel"] == pytest.approx((0.1 + 0.1 + 0.25) / 3)
    assert m["sq_rel"] == pytest.approx((0.01 + 0.02 + 0.25) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt((0.01 + 0.04 + 1.0) / 3))
    # ratios 1.1, 1.111, 1.25: the last one is not < 1.25
    assert m["delta1"] == pytest.approx(2 / 3)
    assert m["delta2"] == 1.0 and m["delta3"] == 1.0
    assert m["valid_pixels"] == 3 and m["scale"] == 1.0
    # SS_res = 0.01 + 0.04 + 1 = 1.05; mean gt 7/3, SS_tot = (16 + 1 + 25) / 9 = 42/9
    assert m["mse"] == pytest.approx(1.05 / 3)
    assert m["r2"] == pytest.approx(1 - 1.05 / (42 / 9)) and m["r2"] == pytest.approx(0.775)


def test_every_valid_gt_pixel_is_scored_and_bad_predictions_are_clipped():
    gt = np.array([[1.0, 2.0, 4.0], [np.nan, 0.0, 3.0], [np.inf, 2.0, 5.0]], dtype=np.float32)
    pred = np.array([[1.1, 1.8, 5.0], [7.0, 9.0, np.nan], [1.0, 0.0, np.inf]], dtype=np.float32)
    m = compute_depth_metrics(pred, gt, min_depth=0.5, max_depth=8.0)
    # gt NaN / 0 / inf are not scored; every other pixel is: NaN -> min_depth (0.5),
    # 0 -> min_depth, +inf -> max_depth (BTS / Eigen protocol)
    assert m["valid_pixels"] == 6
    assert m["coverage"] == pytest.approx(3 / 6)
    exp = _expected([1.1, 1.8, 5.0, 0.5, 0.5, 8.0], [1.0, 2.0, 4.0, 3.0, 2.0, 5.0])
    for k in METRIC_NAMES:
        assert m[k] == pytest.approx(exp[k], rel=1e-5, abs=1e-7), k
    np.testing.assert_array_equal(valid_mask(gt, 0.5, 8.0),
                                  [[True, True, True], [False, False, True], [False, True, True]])


def test_a_model_cannot_hide_its_errors_behind_nan():
    """The case from the review: 3x too far on the far half, which the model's range masks to
    NaN. Dropping NaN scored AbsRel 0.05; scoring every valid-GT pixel gives the real error."""
    gt = np.concatenate([np.full(50, 2.0), np.full(50, 6.0)])
    pred = np.concatenate([np.full(50, 2.1), np.full(50, 18.0)])
    masked = np.where(pred <= 10.0, pred, np.nan)  # what the node publishes (model range 10 m)
    m = compute_depth_metrics(pred, gt, 1e-3, 20.0)
    assert m["abs_rel"] == pytest.approx(0.5 * 0.05 + 0.5 * 2.0)  # 1.025
    assert m["coverage"] == 1.0
    honest = compute_depth_metrics(masked, gt, 1e-3, 20.0)
    assert honest["abs_rel"] > 0.5 and honest["coverage"] == pytest.approx(0.5)


def test_no_valid_pixel_gives_nan():
    m = compute_depth_metrics(np.ones((2, 2)), np.full((2, 2), np.nan))
    assert m["valid_pixels"] == 0
    assert all(math.isnan(m[k]) for k in METRIC_NAMES)


def test_range_capping_clips_pred_and_drops_gt_outside():
    gt = np.array([1.0, 2.0, 4.0, 12.0, 0.5])
    pred = np.array([0.5, 2.0, 20.0, 12.0, 0.5])
    m = compute_depth_metrics(pred, gt, min_depth=0.8, max_depth=5.0)
    # gt 12 (> max) and 0.5 (< min) excluded; pred clipped to [0.8, 5]: 0.5 -> 0.8, 20 -> 5
    assert m["valid_pixels"] == 3 and m["coverage"] == pytest.approx(1 / 3)
    exp = _expected([0.8, 2.0, 5.0], [1.0, 2.0, 4.0])
    for k in METRIC_NAMES:
        assert m[k] == pytest.approx(exp[k], rel=1e-9), k
    assert m["abs_rel"] == pytest.approx((0.2 + 0.0 + 0.25) / 3)


def test_median_scaling():
    gt = np.array([1.0, 2.0, 4.0, 3.0, 6.0])
    m = compute_depth_metrics(2.0 * gt, gt, median_scaling=True)
    assert m["scale"] == pytest.approx(0.5)
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert m["rmse"] == pytest.approx(0.0, abs=1e-12)
    assert m["silog"] == pytest.approx(0.0, abs=1e-5)
    assert m["delta1"] == 1.0
    # without scaling the same prediction is 100 % off
    assert compute_depth_metrics(2.0 * gt, gt)["abs_rel"] == pytest.approx(1.0)
    # general case: scale = median(g) / median(p)
    pred = np.array([1.1, 1.8, 5.0])
    m = compute_depth_metrics(pred, np.array([1.0, 2.0, 4.0]), median_scaling=True)
    s = 2.0 / 1.8
    assert m["scale"] == pytest.approx(s)
    exp = _expected([1.1 * s, 1.8 * s, 5.0 * s], [1.0, 2.0, 4.0])
    for k in METRIC_NAMES:
        assert m[k] == pytest.approx(exp[k], rel=1e-9), k


def test_metrics_shape_mismatch():
    with pytest.raises(ValueError):
        compute_depth_metrics(np.ones((2, 3)), np.ones((3, 2)))


def test_mean_metrics_skips_empty_frames():
    a = compute_depth_metrics(np.array([1.1, 1.8, 5.0]), np.array([1.0, 2.0, 4.0]))
    b = compute_depth_metrics(np.array([2.0, 2.0]), np.array([2.0, 2.0]))
    empty = compute_depth_metrics(np.array([1.0]), np.array([np.nan]))
    out = mean_metrics([a, empty, b])
    assert out["frames"] == 2
    assert out["abs_rel"] == pytest.approx((0.15 + 0.0) / 2)
    assert out["delta1"] == pytest.approx((2 / 3 + 1.0) / 2)
    only_empty = mean_metrics([empty])
    assert only_empty["frames"] == 0 and math.isnan(only_empty["abs_rel"])


# --------------------------------------------------------------------------- output kinds

def _spec(kind, **kw):
    return ModelSpec(name="t", input_size=(32, 32), output_kind=kind, citation="test", **kw)


def test_output_metric_depth_identity():
    out = np.array([[0.5, 3.0]], dtype=np.float32)
    np.testing.assert_array_equal(output_to_metric_depth(out, _spec("metric_depth"), 500.0, 640),
                                  out)


def test_output_normalized_depth():
    spec = _spec("normalized_depth", depth_range=(0.5, 10.5))
    out = output_to_metric_depth(np.array([[0.0, 0.25, 1.0]], np.float32), spec, 500.0, 640)
    np.testing.assert_allclose(out, [[0.5, 3.0, 10.5]], rtol=1e-6)
    assert out.dtype == np.float32


def test_output_inverse_depth():
    out = output_to_metric_depth(np.array([[0.5, 2.0, 0.0, -1.0]], np.float32),
                                 _spec("inverse_depth"), 500.0, 640)
    np.testing.assert_allclose(out[0, :2], [2.0, 0.5], rtol=1e-6)
    assert np.isposinf(out[0, 2:]).all()
    assert out.dtype == np.float32


def test_output_disparity_with_baseline():
    B, fx, W = 0.54, 721.5377, 1242
    spec = _spec("disparity", stereo_baseline=B)
    d = np.array([[0.05, 0.1, 0.0]], np.float32)
    out = output_to_metric_depth(d, spec, fx, W)
    np.testing.assert_allclose(out[0, :2], [fx * B / (0.05 * W), fx * B / (0.1 * W)], rtol=1e-5)
    assert out[0, 0] == pytest.approx(6.2744, rel=1e-4)  # 721.5377*0.54/62.1
    assert np.isposinf(out[0, 2])
    with pytest.raises(ValueError):
        _spec("disparity")  # no baseline


def test_focal_rescaling():
    train_focal = 585.0 / 640.0
    spec = _spec("metric_depth", train_focal=train_focal, rescale_by_focal=True)
    raw = np.array([[2.0, 4.0]], np.float32)
    fx, W = 721.5377, 1242
    factor = (fx / W) / train_focal
    np.testing.assert_allclose(output_to_metric_depth(raw, spec, fx, W), raw * factor, rtol=1e-6)
    # the training camera itself (and the same camera at half resolution) gives factor 1
    np.testing.assert_allclose(output_to_metric_depth(raw, spec, 585.0, 640), raw, rtol=1e-6)
    np.testing.assert_allclose(output_to_metric_depth(raw, spec, 292.5, 320), raw, rtol=1e-6)
    # off unless asked for
    off = _spec("metric_depth", train_focal=train_focal, rescale_by_focal=False)
    np.testing.assert_array_equal(output_to_metric_depth(raw, off, fx, W), raw)
    # applies after the kind conversion
    inv = _spec("inverse_depth", train_focal=train_focal, rescale_by_focal=True)
    np.testing.assert_allclose(output_to_metric_depth(np.array([[0.5]], np.float32), inv, fx, W),
                               [[2.0 * factor]], rtol=1e-6)


@pytest.mark.parametrize("kind,raw,true_depth", [
    ("metric_depth", 4.0, lambda f: 4.0 * f),
    ("normalized_depth", 0.5, lambda f: (0.1 + 0.5 * 9.9) * f),
    ("inverse_depth", 0.25, lambda f: 4.0 * f),
    # disparity is converted with the camera's own fx: no further factor (the bug counted it twice)
    ("disparity", 0.05, lambda f: 1.5 * (585.0 / 640.0) * 0.54 / 0.05),
])
def test_focal_handling_for_each_output_kind(kind, raw, true_depth):
    """A camera whose fx / W is 1.5x the training camera's: each kind is corrected exactly once."""
    train_focal = 585.0 / 640.0
    spec = _spec(kind, train_focal=train_focal, rescale_by_focal=True, depth_range=(0.1, 10.0),
                 **({"stereo_baseline": 0.54} if kind == "disparity" else {}))
    W = 640
    fx = 1.5 * train_focal * W
    out = output_to_metric_depth(np.array([[raw]], np.float32), spec, fx, W)
    assert out[0, 0] == pytest.approx(true_depth(1.5), rel=1e-5)


def test_output_conversion_rejects_bad_camera():
    for fx, w in ((0.0, 640), (-1.0, 640), (500.0, 0), (float("nan"), 640)):
        with pytest.raises(ValueError):
            output_to_metric_depth(np.ones((1, 1), np.float32), _spec("metric_depth"), fx, w)


# --------------------------------------------------------------------------- device / precision

def test_select_device():
    dev, warns = select_device("cpu")
    assert dev == torch.device("cpu") and warns == []
    dev, warns = select_device("auto")
    if torch.cuda.is_available():
        assert dev.type == "cuda" and warns == []
    else:
        assert dev.type == "cpu" and len(warns) == 1 and "CUDA" in warns[0]
        with pytest.raises(ValueError):
            select_device("cuda")
        with pytest.raises(ValueError):
            select_device("cuda:0")
    with pytest.raises(ValueError):
        select_device("tpu-ish")


def test_select_precision():
    cpu = torch.device("cpu")
    assert select_precision("fp32", cpu) == (torch.float32, [])
    dtype, warns = select_precision("fp16", cpu)
    assert dtype == torch.float32 and len(warns) == 1
    assert select_precision("bf16", cpu) == (torch.bfloat16, [])
    with pytest.raises(ValueError):
        select_precision("fp64", cpu)
    if torch.cuda.is_available():
        assert select_precision("fp16", torch.device("cuda")) == (torch.float16, [])


# --------------------------------------------------------------------------- R², MSE, Appendix A

def test_metric_names_and_r2_edge_cases():
    assert METRIC_NAMES[:9] == ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog",
                                "delta1", "delta2", "delta3")
    assert "mse" in METRIC_NAMES and "r2" in METRIC_NAMES
    assert "mse" in LOWER_IS_BETTER and "r2" not in LOWER_IS_BETTER
    gt = np.array([1.0, 2.0, 3.0, 4.0])
    assert compute_depth_metrics(gt.copy(), gt)["r2"] == pytest.approx(1.0)
    # predicting the mean explains nothing: R² = 0; worse than the mean: negative
    assert compute_depth_metrics(np.full(4, 2.5), gt)["r2"] == pytest.approx(0.0, abs=1e-12)
    assert compute_depth_metrics(gt[::-1].copy(), gt)["r2"] == pytest.approx(1 - 20 / 5)
    # constant ground truth: undefined -> NaN, and mean_metrics skips it
    flat = compute_depth_metrics(np.array([2.0, 2.1]), np.array([2.0, 2.0]))
    assert math.isnan(flat["r2"]) and flat["mse"] == pytest.approx(0.005)
    good = compute_depth_metrics(gt.copy(), gt)
    out = mean_metrics([flat, good])
    assert out["frames"] == 2 and out["r2"] == pytest.approx(1.0)
    assert out["mse"] == pytest.approx(0.0025)
    assert math.isnan(mean_metrics([flat])["r2"])


def test_appendix_a_mapping_and_table():
    assert list(APPENDIX_A) == ["RMS", "MQE", "RMSL", "RMSLSI", "ABSR", "ABSQ", "σ1", "σ2", "σ3"]
    assert APPENDIX_A["RMS"] == "rmse" and APPENDIX_A["MQE"] == "mse"
    assert APPENDIX_A["RMSL"] == "rmse_log" and APPENDIX_A["RMSLSI"] == "silog"
    assert APPENDIX_A["ABSR"] == "abs_rel" and APPENDIX_A["ABSQ"] == "sq_rel"
    assert [APPENDIX_A[f"σ{k}"] for k in (1, 2, 3)] == ["delta1", "delta2", "delta3"]
    assert set(APPENDIX_A.values()) <= set(METRIC_NAMES)
    m = compute_depth_metrics(np.array([1.1, 1.8, 5.0]), np.array([1.0, 2.0, 4.0]))
    lines = format_appendix_a(m).split("\n")
    assert lines[0] == "| | RMS | MQE | RMSL | RMSLSI | ABSR | ABSQ | σ1 | σ2 | σ3 |"
    assert lines[1] == "|---|" + "---|" * 9 and len(lines) == 3
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[0] == "metric"
    vals = [float(c) for c in cells[1:]]
    assert vals[0] == pytest.approx(m["rmse"], abs=1e-4)
    assert vals[1] == pytest.approx(1.05 / 3, abs=1e-4)
    assert vals[3] == pytest.approx(m["silog"] / 100, abs=1e-4)   # RMSLSI is not x100
    assert vals[4] == pytest.approx(0.15, abs=1e-4) and vals[6] == pytest.approx(2 / 3, abs=1e-4)
    # an evaluation summary gives the metric and median-scaled rows; missing keys print n/a
    summary = {"mean": m, "mean_median_scaled": {"rmse": 0.5}}
    lines = format_appendix_a(summary).split("\n")
    assert len(lines) == 4 and lines[3].startswith("| median-scaled | 0.5000 | n/a |")


# --------------------------------------------------------------------------- KITTI crops

def test_crop_masks_standard_kitti_size():
    h, w = 375, 1242
    garg = garg_crop_mask(h, w)
    assert garg.shape == (h, w) and garg.dtype == bool
    rows, cols = np.nonzero(garg)
    # int(0.40810811 * 375) = 153, int(0.99189189 * 375) = 371, int(0.03594771 * 1242) = 44,
    # int(0.96405229 * 1242) = 1197 (end exclusive)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (153, 371, 44, 1197)
    assert garg.sum() == (371 - 153) * (1197 - 44)
    eigen = eigen_crop_mask(h, w)
    rows, cols = np.nonzero(eigen)
    # int(0.3324324 * 375) = 124, int(0.91351351 * 375) = 342
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (124, 342, 44, 1197)
    with pytest.raises(ValueError):
        garg_crop_mask(0, 10)


def test_compute_depth_metrics_crop_and_ranges():
    h, w = 37, 40
    gt = np.full((h, w), 10.0)
    pred = np.full((h, w), 10.0)
    crop = garg_crop_mask(h, w)
    pred[~crop] = 50.0  # wrong only outside the crop
    m = compute_depth_metrics(pred, gt, *KITTI_RANGE_80, crop="garg")
    assert m["valid_pixels"] == crop.sum() and m["abs_rel"] == 0.0
    assert compute_depth_metrics(pred, gt, *KITTI_RANGE_80)["abs_rel"] > 0.0
    m = compute_depth_metrics(pred, gt, crop="eigen")
    assert m["valid_pixels"] == eigen_crop_mask(h, w).sum()
    assert KITTI_RANGE_80 == (1e-3, 80.0) and KITTI_RANGE_50 == (1.0, 50.0)
    # the 1-50 m range drops ground truth beyond 50 m and clips predictions to it
    gt2 = np.array([[0.5, 10.0, 60.0]])
    m = compute_depth_metrics(np.array([[1.0, 70.0, 60.0]]), gt2, *KITTI_RANGE_50)
    assert m["valid_pixels"] == 1 and m["abs_rel"] == pytest.approx(4.0)  # 70 -> 50 vs 10
    with pytest.raises(ValueError):
        compute_depth_metrics(pred, gt, crop="kitti")
    with pytest.raises(ValueError):
        compute_depth_metrics(np.ones(5), np.ones(5), crop="garg")


# --------------------------------------------------------------------------- segmentation IoU

def test_segmentation_iou_hand_computed():
    gt = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 3, 1]])
    out = segmentation_iou(pred, gt, num_classes=4)
    # class 0: TP 1, FP 1 (gt 2 -> 0), FN 1 (gt 0 -> 1): 1/3; class 1: TP 3, FP 1: 3/4;
    # class 2: TP 1, FN 1: 1/2; class 3: only predicted at an ignored pixel: absent -> NaN
    iou = out["iou"]
    assert iou[:3] == pytest.approx([1 / 3, 3 / 4, 1 / 2]) and math.isnan(iou[3])
    assert out["miou"] == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    # without an ignore index 255 is an error, as are out-of-range predictions
    with pytest.raises(ValueError):
        segmentation_iou(pred, gt, 4, ignore_index=None)
    with pytest.raises(ValueError):
        segmentation_iou(np.array([0, 5]), np.array([0, 1]), 4)
    with pytest.raises(ValueError):
        segmentation_iou(pred, gt[:, :3], 4)
    # a class predicted but never in gt has IoU 0 (counted in the mean)
    out = segmentation_iou(np.array([0, 1]), np.array([0, 0]), 2)
    assert out["iou"] == pytest.approx([0.5, 0.0]) and out["miou"] == pytest.approx(0.25)


def test_confusion_matrix_accumulates():
    rng = np.random.default_rng(0)
    preds = [rng.integers(0, 3, (4, 5)) for _ in range(3)]
    gts = [rng.integers(0, 3, (4, 5)) for _ in range(3)]
    gts[1][0, :] = 255
    cm = ConfusionMatrix(3)
    for p, g in zip(preds, gts):
        cm.update(p, g)
    pooled = segmentation_iou(np.concatenate(preds), np.concatenate(gts), 3)
    assert cm.iou() == pytest.approx(pooled["iou"]) and cm.miou() == pytest.approx(pooled["miou"])
    assert cm.matrix.sum() == 3 * 20 - 5
    # dataset IoU differs from averaging per-image IoUs in general; torch tensors work too
    cm2 = ConfusionMatrix(3)
    cm2.update(torch.from_numpy(preds[0]), torch.from_numpy(gts[0]))
    assert cm2.iou() == pytest.approx(segmentation_iou(preds[0], gts[0], 3)["iou"])
    cm.reset()
    assert cm.matrix.sum() == 0 and math.isnan(cm.miou())
    with pytest.raises(ValueError):
        ConfusionMatrix(0)
