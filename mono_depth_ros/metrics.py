"""Depth-estimation metrics (ROS-free, numpy).

Definitions follow Eigen et al., NIPS 2014, as used by the NYU / KITTI literature (and the
Das et al. and Calderoni et al. papers). Over the valid pixels ``i`` (``gt`` finite and in
``[min_depth, max_depth]``, ``pred`` finite and > 0, ``pred`` clipped to the same range):

- ``abs_rel``  = mean |p - g| / g                      (AbsRel; Valdez-Rodriguez ABSR)
- ``sq_rel``   = mean (p - g)^2 / g                    (SqRel; ABSQ)
- ``rmse``     = sqrt(mean (p - g)^2)                  (RMSE, metres; RMS)
- ``rmse_log`` = sqrt(mean (ln p - ln g)^2)            (RMSElog; RMSL)
- ``log10``    = mean |log10 p - log10 g|
- ``silog``    = sqrt(mean e^2 - (mean e)^2) * 100, e = ln p - ln g   (SILog; RMSLSI ~ /100)
- ``delta1..3`` = fraction with max(p/g, g/p) < 1.25^k (δ<1.25^k; σ1-3)
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional

import numpy as np

METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog",
                "delta1", "delta2", "delta3")
#: Metrics where lower is better (the rest, the δ thresholds, are higher-is-better).
LOWER_IS_BETTER = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "silog")


def valid_mask(gt: np.ndarray, pred: Optional[np.ndarray] = None, min_depth: float = 1e-3,
               max_depth: float = np.inf) -> np.ndarray:
    """Boolean ``H x W`` mask of pixels usable for evaluation.

    ``gt`` must be finite and inside ``[min_depth, max_depth]``; ``pred``, when given, finite.
    """
    with np.errstate(invalid="ignore"):
        m = np.isfinite(gt) & (gt >= min_depth) & (gt <= max_depth)
    if pred is not None:
        m &= np.isfinite(pred)
    return m


def compute_depth_metrics(pred: np.ndarray, gt: np.ndarray, min_depth: float = 1e-3,
                          max_depth: float = np.inf, median_scaling: bool = False
                          ) -> Dict[str, float]:
    """Standard depth metrics between a prediction and ground truth.

    Args:
        pred: ``H x W`` predicted depth, metres, NaN where the model gives none.
        gt: ``H x W`` ground truth depth, metres, NaN/0 invalid.
        min_depth, max_depth: evaluation range (e.g. NYU 1e-3..10, KITTI 1e-3..80); the
            prediction is clipped to it, as in the Eigen evaluation code.
        median_scaling: multiply ``pred`` by median(gt)/median(pred) first (for relative-depth
            models); the factor is returned as ``scale``.

    Returns:
        dict of :data:`METRIC_NAMES` plus ``valid_pixels`` and ``scale``; metrics are NaN when
        no pixel is valid.

    Raises:
        ValueError: shapes differ.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} differ in shape")
    m = valid_mask(gt, pred, min_depth, max_depth)
    with np.errstate(invalid="ignore"):
        m &= pred > 0
    n = int(m.sum())
    out: Dict[str, float] = {k: float("nan") for k in METRIC_NAMES}
    out.update(valid_pixels=n, scale=1.0)
    if n == 0:
        return out
    g = gt[m].astype(np.float64)
    p = pred[m].astype(np.float64)
    if median_scaling:
        s = float(np.median(g) / np.median(p))
        p *= s
        out["scale"] = s
    p = np.clip(p, max(min_depth, 1e-6), max_depth)
    err = p - g
    log_err = np.log(p) - np.log(g)
    ratio = np.maximum(p / g, g / p)
    out.update(
        abs_rel=float(np.mean(np.abs(err) / g)),
        sq_rel=float(np.mean(err ** 2 / g)),
        rmse=float(np.sqrt(np.mean(err ** 2))),
        rmse_log=float(np.sqrt(np.mean(log_err ** 2))),
        log10=float(np.mean(np.abs(np.log10(p) - np.log10(g)))),
        silog=float(np.sqrt(max(np.mean(log_err ** 2) - np.mean(log_err) ** 2, 0.0)) * 100.0),
        delta1=float(np.mean(ratio < 1.25)),
        delta2=float(np.mean(ratio < 1.25 ** 2)),
        delta3=float(np.mean(ratio < 1.25 ** 3)),
    )
    return out


def mean_metrics(per_frame: Iterable[Dict[str, float]]) -> Dict[str, float]:
    """Average per-frame metric dicts (frames with no valid pixel are skipped)."""
    rows: List[Dict[str, float]] = [r for r in per_frame if r.get("valid_pixels", 0) > 0]
    out: Dict[str, float] = {"frames": len(rows)}
    for k in METRIC_NAMES + ("scale",):
        vals = [r[k] for r in rows if k in r]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    return out
