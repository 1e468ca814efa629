"""Depth-estimation metrics (ROS-free, numpy).

Definitions follow Eigen et al., NIPS 2014, as used by the NYU / KITTI literature (and the
Das et al. and Calderoni et al. papers).

Protocol: every pixel with valid ground truth is scored (``gt`` finite and in ``[min_depth,
max_depth]``, inside the crop if one is given). The prediction is clipped to that range first,
and a missing prediction is filled, as in the evaluation code of BTS (Lee et al., 2019), which
follows Eigen et al.: ``pred < min_depth -> min_depth``, ``pred > max_depth`` or ``+inf ->
max_depth``, ``NaN`` (no value) ``-> min_depth``. A model therefore cannot improve its score by
leaving hard pixels out; ``coverage`` reports the share of scored pixels where it gave a finite
value inside the range. Over the scored pixels ``i``:

- ``abs_rel``  = mean |p - g| / g                      (AbsRel; Valdez-Rodriguez ABSR)
- ``sq_rel``   = mean (p - g)^2 / g                    (SqRel; ABSQ)
- ``rmse``     = sqrt(mean (p - g)^2)                  (RMSE, metres; RMS)
- ``rmse_log`` = sqrt(mean (ln p - ln g)^2)            (RMSElog; RMSL)
- ``log10``    = mean |log10 p - log10 g|
- ``silog``    = sqrt(mean e^2 - (mean e)^2) * 100, e = ln p - ln g   (SILog; RMSLSI ~ /100)
- ``delta1..3`` = fraction with max(p/g, g/p) < 1.25^k (δ<1.25^k; σ1-3)
- ``mse``      = mean (p - g)^2                        (m²; Valdez-Rodriguez MQE, our reading)
- ``r2``       = 1 - sum (p - g)^2 / sum (g - mean g)^2 (coefficient of determination; NaN
  when the ground truth is constant)

:data:`APPENDIX_A` maps the Valdez-Rodriguez et al. (Sensors 2022) Appendix A names onto these
(:func:`format_appendix_a` prints their table layout). KITTI evaluations use the Eigen or Garg
crops (:func:`eigen_crop_mask`, :func:`garg_crop_mask`, ``compute_depth_metrics(crop=...)``)
and the ranges :data:`KITTI_RANGE_80` / :data:`KITTI_RANGE_50`. Semantic segmentation:
per-class IoU and mIoU (:func:`segmentation_iou`, :class:`ConfusionMatrix`).
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog",
                "delta1", "delta2", "delta3", "mse", "r2")
#: Metrics where lower is better (the rest, the δ thresholds and R², are higher-is-better).
LOWER_IS_BETTER = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog", "mse")

#: KITTI evaluation range 0-80 m (Eigen split convention; ``min_depth, max_depth`` metres):
#: ``compute_depth_metrics(pred, gt, *KITTI_RANGE_80, crop="garg")``.
KITTI_RANGE_80 = (1e-3, 80.0)
#: KITTI range 1-50 m (Garg et al.'s capped evaluation), metres.
KITTI_RANGE_50 = (1.0, 50.0)

#: Crop boxes as fractions of the image ``(top, bottom, left, right)``; the standard KITTI
#: constants (Eigen et al., NIPS 2014; Garg et al., ECCV 2016), truncated to pixel indices.
_CROPS = {
    "eigen": (0.3324324, 0.91351351, 0.0359477, 0.96405229),
    "garg": (0.40810811, 0.99189189, 0.03594771, 0.96405229),
}


def _crop_mask(name: str, h: int, w: int) -> np.ndarray:
    if h <= 0 or w <= 0:
        raise ValueError(f"image size must be positive, got {h} x {w}")
    top, bottom, left, right = _CROPS[name]
    m = np.zeros((h, w), dtype=bool)
    m[int(top * h):int(bottom * h), int(left * w):int(right * w)] = True
    return m


def eigen_crop_mask(h: int, w: int) -> np.ndarray:
    """Boolean ``h x w`` mask of the Eigen KITTI crop (True inside).

    Rows ``[int(0.3324324 h), int(0.91351351 h))``, columns ``[int(0.0359477 w),
    int(0.96405229 w))``: the region the Eigen split evaluates (sky and car bonnet excluded).

    Raises:
        ValueError: non-positive size.
    """
    return _crop_mask("eigen", h, w)


def garg_crop_mask(h: int, w: int) -> np.ndarray:
    """Boolean ``h x w`` mask of the Garg KITTI crop (True inside).

    Rows ``[int(0.40810811 h), int(0.99189189 h))``, columns ``[int(0.03594771 w),
    int(0.96405229 w))``: the region covered by the Velodyne (Garg et al., ECCV 2016).

    Raises:
        ValueError: non-positive size.
    """
    return _crop_mask("garg", h, w)


def valid_mask(gt: np.ndarray, min_depth: float = 1e-3, max_depth: float = np.inf) -> np.ndarray:
    """Boolean ``H x W`` mask of the pixels that are scored: ``gt`` finite and inside
    ``[min_depth, max_depth]`` (metres). The prediction plays no part (see the module docstring)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(gt) & (gt >= min_depth) & (gt <= max_depth)


def clip_prediction(pred: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """The prediction as scored: float64, clipped to ``[min_depth, max_depth]`` with ``+inf`` to
    ``max_depth`` and ``NaN`` / ``-inf`` / non-positive values to ``min_depth`` (BTS evaluation
    code, Lee et al. 2019, after Eigen et al. 2014). ``min_depth`` is raised to 1e-6 so logs stay
    finite."""
    lo = max(float(min_depth), 1e-6)
    p = np.nan_to_num(np.asarray(pred, np.float64), nan=lo, posinf=max_depth, neginf=lo)
    return np.clip(p, lo, max_depth)


def compute_depth_metrics(pred: np.ndarray, gt: np.ndarray, min_depth: float = 1e-3,
                          max_depth: float = np.inf, median_scaling: bool = False,
                          crop: Optional[str] = None) -> Dict[str, float]:
    """Standard depth metrics between a prediction and ground truth, over every valid-GT pixel.

    Args:
        pred: ``H x W`` predicted depth, metres; NaN where the model gives none, ``inf`` beyond
            its range. Clipped / filled by :func:`clip_prediction` (never dropped).
        gt: ``H x W`` ground truth depth, metres, NaN/0 invalid.
        min_depth, max_depth: evaluation range (e.g. NYU 1e-3..10, KITTI 1e-3..80).
        median_scaling: multiply the clipped prediction by median(gt)/median(pred) and clip again
            (for relative-depth models); the factor is returned as ``scale``.
        crop: None, ``"eigen"`` or ``"garg"``: evaluate only inside that KITTI crop
            (:func:`eigen_crop_mask`, :func:`garg_crop_mask`; needs ``H x W`` arrays).

    Returns:
        dict of :data:`METRIC_NAMES` plus ``valid_pixels`` (scored pixels), ``coverage``
        (share of them where ``pred`` was finite and inside the range) and ``scale``; metrics
        are NaN when no pixel has valid ground truth.

    Raises:
        ValueError: shapes differ; unknown ``crop``, or ``crop`` with arrays that are not 2-D.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} differ in shape")
    m = valid_mask(gt, min_depth, max_depth)
    if crop is not None:
        if crop not in _CROPS:
            raise ValueError(f"unknown crop {crop!r}; valid: None, {', '.join(sorted(_CROPS))}")
        if gt.ndim != 2:
            raise ValueError(f"crop {crop!r} needs H x W arrays, got shape {gt.shape}")
        m &= _crop_mask(crop, *gt.shape)
    n = int(m.sum())
    out: Dict[str, float] = {k: float("nan") for k in METRIC_NAMES}
    out.update(valid_pixels=n, coverage=float("nan"), scale=1.0)
    if n == 0:
        return out
    g = gt[m].astype(np.float64)
    raw = pred[m]
    with np.errstate(invalid="ignore"):
        out["coverage"] = float(np.mean(np.isfinite(raw) & (raw >= min_depth) & (raw <= max_depth)))
    p = clip_prediction(raw, min_depth, max_depth)
    if median_scaling:
        s = float(np.median(g) / np.median(p))
        p = clip_prediction(p * s, min_depth, max_depth)
        out["scale"] = s
    out.update(_error_metrics(p, g))
    return out


def _error_metrics(p: np.ndarray, g: np.ndarray) -> Dict[str, float]:
    """:data:`METRIC_NAMES` of clipped predictions ``p`` against ground truth ``g`` (1-D, m)."""
    err = p - g
    log_err = np.log(p) - np.log(g)
    ratio = np.maximum(p / g, g / p)
    return dict(
        abs_rel=float(np.mean(np.abs(err) / g)),
        sq_rel=float(np.mean(err ** 2 / g)),
        rmse=float(np.sqrt(np.mean(err ** 2))),
        rmse_log=float(np.sqrt(np.mean(log_err ** 2))),
        log10=float(np.mean(np.abs(np.log10(p) - np.log10(g)))),
        silog=float(np.sqrt(max(np.mean(log_err ** 2) - np.mean(log_err) ** 2, 0.0)) * 100.0),
        delta1=float(np.mean(ratio < 1.25)),
        delta2=float(np.mean(ratio < 1.25 ** 2)),
        delta3=float(np.mean(ratio < 1.25 ** 3)),
        mse=float(np.mean(err ** 2)),
        r2=_r2(p, g),
    )


def _r2(p: np.ndarray, g: np.ndarray) -> float:
    """Coefficient of determination of ``p`` against ``g``; NaN when ``g`` is constant."""
    ss_tot = float(np.sum((g - g.mean()) ** 2))
    if ss_tot == 0.0:  # undefined: no variance to explain
        return float("nan")
    return 1.0 - float(np.sum((p - g) ** 2)) / ss_tot


def mean_metrics(per_frame: Iterable[Dict[str, float]]) -> Dict[str, float]:
    """Average per-frame metric dicts.

    Frames without valid ground truth are skipped, and so are NaN values of a metric (``r2`` of a
    frame with constant ground truth); ``r2`` is thus the mean per-frame R², not the R² of all
    pixels pooled.
    """
    rows: List[Dict[str, float]] = [r for r in per_frame if r.get("valid_pixels", 0) > 0]
    out: Dict[str, float] = {"frames": len(rows)}
    for k in METRIC_NAMES + ("scale", "coverage"):
        vals = [r[k] for r in rows if k in r and not math.isnan(r[k])]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    return out


# ------------------------------------------------------------------------------ Appendix A

#: Valdez-Rodriguez et al. (Sensors 2022) Appendix A names -> our metric keys, in the paper's
#: table order. MQE (mean quadratic error) is read as the mean squared error in m² (``mse``);
#: RMSLSI, the scale-invariant log RMSE, is ``silog / 100`` (see :data:`APPENDIX_A_SCALE`).
APPENDIX_A = {"RMS": "rmse", "MQE": "mse", "RMSL": "rmse_log", "RMSLSI": "silog",
              "ABSR": "abs_rel", "ABSQ": "sq_rel", "σ1": "delta1", "σ2": "delta2",
              "σ3": "delta3"}
#: Factor from our value to the paper's unit (only RMSLSI differs: ``silog`` is x100).
APPENDIX_A_SCALE = {"RMSLSI": 0.01}


def _appendix_row(m: Dict[str, float]) -> List[str]:
    cells = []
    for name, key in APPENDIX_A.items():
        v = m.get(key)
        cells.append("n/a" if v is None else f"{float(v) * APPENDIX_A_SCALE.get(name, 1.0):.4f}")
    return cells


def format_appendix_a(summary_or_metrics: Dict) -> str:
    """Markdown table in the Valdez-Rodriguez et al. layout (RMS, MQE, RMSL, RMSLSI, ABSR,
    ABSQ, σ1, σ2, σ3).

    Args:
        summary_or_metrics: a metric dict (:func:`compute_depth_metrics` /
            :func:`mean_metrics`; one row ``metric``), or an evaluation summary with ``mean``
            and optionally ``mean_median_scaled`` (rows ``metric`` - or the summary's
            ``mean_label``, e.g. ``aligned to ground truth (per frame)`` for a relative model -
            and ``median-scaled``).
            Missing metrics print as ``n/a``.

    Returns:
        The table (header, separator, one line per row), no trailing newline.
    """
    if "mean" in summary_or_metrics and isinstance(summary_or_metrics["mean"], dict):
        rows: List[Tuple[str, Dict]] = [(summary_or_metrics.get("mean_label", "metric"),
                                         summary_or_metrics["mean"])]
        if isinstance(summary_or_metrics.get("mean_median_scaled"), dict):
            rows.append(("median-scaled", summary_or_metrics["mean_median_scaled"]))
    else:
        rows = [("metric", summary_or_metrics)]
    lines = ["| | " + " | ".join(APPENDIX_A) + " |", "|---|" + "---|" * len(APPENDIX_A)]
    lines += [f"| {label} | " + " | ".join(_appendix_row(m)) + " |" for label, m in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ segmentation

class ConfusionMatrix:
    """Accumulating ``num_classes x num_classes`` confusion matrix for dataset-level IoU.

    ``matrix[g, p]`` counts pixels of ground-truth class ``g`` predicted as ``p`` (int64).
    Pixels whose ground truth equals ``ignore_index`` are skipped.

    Args:
        num_classes: number of classes ``C`` (ids ``0 .. C-1``).
        ignore_index: ground-truth id to skip (255 = void by default; None for none).

    Raises:
        ValueError: ``num_classes < 1``.
    """

    def __init__(self, num_classes: int, ignore_index: Optional[int] = 255):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def reset(self) -> None:
        """Zero the counts."""
        self.matrix[:] = 0

    def update(self, pred, gt) -> None:
        """Add one prediction / ground-truth pair of integer class-id arrays (any equal shape;
        numpy arrays or CPU tensors).

        Raises:
            ValueError: shapes differ, or a non-ignored id lies outside ``[0, num_classes)``.
        """
        pred = np.asarray(pred).astype(np.int64, copy=False)
        gt = np.asarray(gt).astype(np.int64, copy=False)
        if pred.shape != gt.shape:
            raise ValueError(f"pred {pred.shape} and gt {gt.shape} differ in shape")
        keep = (np.ones(gt.shape, dtype=bool) if self.ignore_index is None
                else gt != self.ignore_index)
        g, p = gt[keep], pred[keep]
        c = self.num_classes
        for name, ids in (("gt", g), ("pred", p)):
            if ids.size and (ids.min() < 0 or ids.max() >= c):
                raise ValueError(f"{name} ids must lie in [0, {c}) (or be ignore_index "
                                 f"{self.ignore_index} in gt), got {ids.min()}..{ids.max()}")
        self.matrix += np.bincount(g * c + p, minlength=c * c).reshape(c, c)

    def iou(self) -> List[float]:
        """Per-class IoU ``TP / (TP + FP + FN)``; NaN for classes absent from both."""
        tp = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return [float(v) for v in np.where(union > 0, tp / np.maximum(union, 1), np.nan)]

    def miou(self) -> float:
        """Mean of the defined per-class IoUs (NaN when none is defined)."""
        vals = [v for v in self.iou() if not math.isnan(v)]
        return float(np.mean(vals)) if vals else float("nan")


def segmentation_iou(pred_ids, gt_ids, num_classes: int, ignore_index: Optional[int] = 255
                     ) -> Dict[str, object]:
    """Per-class IoU and mean IoU of one prediction (integer class-id arrays, equal shapes).

    Returns:
        ``{"iou": list of num_classes floats (NaN for classes absent from both), "miou": float}``.

    Raises:
        ValueError: as :meth:`ConfusionMatrix.update`.
    """
    cm = ConfusionMatrix(num_classes, ignore_index)
    cm.update(pred_ids, gt_ids)
    return {"iou": cm.iou(), "miou": cm.miou()}
