"""Offline evaluation: predicted depth vs ground truth, as JSON and PNG panels (ROS-free).

Two sources of predictions share one evaluator:

- :func:`evaluate_bags` - a bag recorded from the running node (``depth/image``) matched by
  header stamp against the ground-truth depth (and RGB) of the input bag;
- :func:`evaluate_model` - a model run directly over a dataset folder.

Both write ``metrics.json`` (per-frame and mean AbsRel, SqRel, RMSE, RMSElog, log10, SILog,
δ<1.25^k, metric and median-scaled) and ``panel_*.png`` (RGB | ground truth | prediction |
absolute error) for a few evenly spaced frames.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..core.metrics import METRIC_NAMES, compute_depth_metrics, mean_metrics
from ..core.visualize import error_panel


class Evaluation:
    """Accumulates frames and writes the report.

    Args:
        out_dir: where ``metrics.json`` and panels go (created).
        min_depth, max_depth: evaluation range in metres.
        panels: number of frames rendered as PNG panels (evenly spaced).
        expected_frames: total frames expected (to space the panels); 0 = unknown.
        crop: ``None``, ``"eigen"`` or ``"garg"`` (KITTI evaluation crops).
    """

    def __init__(self, out_dir: Union[str, Path], min_depth: float = 1e-3, max_depth: float = 10.0,
                 panels: int = 4, expected_frames: int = 0, crop: Optional[str] = None):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self.crop = crop
        self.rows: List[dict] = []
        self.panel_paths: List[Path] = []
        n = max(int(expected_frames), 1)
        self._panel_at = set(np.linspace(0, n - 1, num=min(panels, n)).round().astype(int).tolist()) \
            if panels > 0 else set()
        self._panels_left = panels

    def add(self, name: str, pred: np.ndarray, gt: np.ndarray, rgb: Optional[np.ndarray] = None,
            extra: Optional[dict] = None) -> Dict[str, float]:
        """Score one frame (``H x W`` metres, NaN invalid; ``pred`` resized to ``gt`` if needed);
        ``extra`` is stored in the frame's row (e.g. ``scale_fit``)."""
        if pred.shape != gt.shape:
            pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_NEAREST)
        metric = compute_depth_metrics(pred, gt, self.min_depth, self.max_depth, crop=self.crop)
        scaled = compute_depth_metrics(pred, gt, self.min_depth, self.max_depth, median_scaling=True,
                                       crop=self.crop)
        row = {"frame": name, **metric, "median_scaled": {k: scaled[k] for k in METRIC_NAMES + ("scale",)}}
        row.update(extra or {})
        idx = len(self.rows)
        self.rows.append(row)
        if rgb is not None and self._panels_left > 0 and (idx in self._panel_at or not self._panel_at):
            title = f"{name}  AbsRel {metric['abs_rel']:.3f}  RMSE {metric['rmse']:.2f} m  d1 {metric['delta1']:.2f}"
            panel = error_panel(rgb, gt, pred, title, vmax=min(self.max_depth, np.nanpercentile(gt, 98)))
            path = self.out_dir / f"panel_{len(self.panel_paths):02d}_{name}.png"
            cv2.imwrite(str(path), cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
            self.panel_paths.append(path)
            self._panels_left -= 1
        return metric

    def summary(self) -> dict:
        """Mean metrics (metric and median-scaled) plus the per-frame rows."""
        return {
            "frames": len(self.rows),
            "range_m": [self.min_depth, self.max_depth],
            "crop": self.crop,
            "mean": mean_metrics(self.rows),
            "mean_median_scaled": mean_metrics(
                [{**r["median_scaled"], "valid_pixels": r["valid_pixels"]} for r in self.rows]),
            "per_frame": self.rows,
            "panels": [str(p) for p in self.panel_paths],
        }

    def write(self, extra: Optional[dict] = None) -> Path:
        """Write ``metrics.json`` (summary + ``extra``); returns its path."""
        path = self.out_dir / "metrics.json"
        with open(path, "w") as f:
            json.dump({**(extra or {}), **self.summary()}, f, indent=2, default=float)
        return path


def evaluate_model(estimator, samples: Sequence, out_dir: Union[str, Path],
                   min_depth: float = 1e-3, max_depth: float = 10.0, panels: int = 4,
                   progress: bool = True, crop: Optional[str] = None,
                   scale_source: Optional[str] = None) -> dict:
    """Run ``estimator`` (a ``DepthEstimator``) over dataset ``samples`` and score it.

    ``scale_source`` (``sparse:N``, ``scan[:B]``, ``ground:H[:P]``, ``ground:pose``, ``fixed:S``;
    see :mod:`mono_depth_ros.tools.scale_eval`) scales each prediction with a reference simulated
    from the ground truth before scoring: ``mean`` is then after that scale, and each frame's
    row has its ``scale_fit``.

    Returns:
        the summary dict (also written to ``out_dir/metrics.json``).
    """
    ev = Evaluation(out_dir, min_depth, max_depth, panels, len(samples), crop)
    scaler = None
    if scale_source:
        from .scale_eval import SimulatedScaleSource
        scaler = SimulatedScaleSource(scale_source, estimator.spec.output_kind,
                                      (min_depth, max_depth))
    items: Iterable = samples
    if progress:
        from tqdm import tqdm
        items = tqdm(samples, desc=f"evaluate {estimator.name}", unit="frame", disable=None)
    for s in items:
        if s.depth is None:
            continue
        pred = estimator.predict(s.rgb, s.K)
        depth, extra = pred.depth, None
        if scaler is not None:
            depth, fit = scaler(s, pred.depth)
            depth = np.full_like(pred.depth, np.nan) if depth is None else depth
            extra = {"scale_fit": fit}
        ev.add(s.name, depth, s.depth, s.rgb, extra)
    extra = {"model": estimator.name, "checkpoint": estimator.checkpoint,
             "scale_source": scale_source or "none"}
    if scaler is not None:
        from .scale_eval import summarize_fits
        extra["scale_fits"] = summarize_fits(ev.rows)
    ev.write(extra)
    return {**extra, **ev.summary()}


def evaluate_bags(pred_bag: Union[str, Path], gt_bag: Union[str, Path], out_dir: Union[str, Path],
                  pred_topic: str, gt_topic: str, image_topic: Optional[str] = None,
                  min_depth: float = 1e-3, max_depth: float = 10.0, panels: int = 4,
                  crop: Optional[str] = None) -> dict:
    """Score recorded ``pred_topic`` (32FC1) against ``gt_topic`` matched by header stamp.

    ``pred_bag`` and ``gt_bag`` may be the same bag. Predictions without a ground-truth frame of
    the same stamp are counted as ``unmatched``.

    Returns:
        the summary dict with ``matched`` / ``unmatched`` counts (also in ``metrics.json``).
    """
    from ..data.bag import read_topics_by_stamp
    from ..core.image_codec import depth_msg_to_metres, image_msg_to_rgb

    preds = read_topics_by_stamp(pred_bag, [pred_topic])[pred_topic]
    gt_topics = [gt_topic] + ([image_topic] if image_topic else [])
    gts = read_topics_by_stamp(gt_bag, gt_topics, stamps=preds)
    stamps = sorted(s for s in preds if s in gts[gt_topic])
    ev = Evaluation(out_dir, min_depth, max_depth, panels, len(stamps), crop)
    for st in stamps:
        rgb = None
        if image_topic and st in gts[image_topic]:
            rgb = image_msg_to_rgb(gts[image_topic][st])
        ev.add(f"t{st}", depth_msg_to_metres(preds[st]), depth_msg_to_metres(gts[gt_topic][st]), rgb)
    extra = {"pred_bag": str(pred_bag), "gt_bag": str(gt_bag), "matched": len(stamps),
             "unmatched": len(preds) - len(stamps)}
    ev.write(extra)
    return {**extra, **ev.summary()}


def format_table(summary: dict, keys: Tuple[str, ...] = METRIC_NAMES) -> str:
    """Markdown table of the mean metrics (metric and median-scaled rows)."""
    head = "| | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys) + "\n"
    rows = []
    for label, key in (("metric", "mean"), ("median-scaled", "mean_median_scaled")):
        m = summary[key]
        rows.append(f"| {label} | " + " | ".join(f"{m[k]:.3f}" for k in keys) + " |")
    return head + "\n".join(rows)
