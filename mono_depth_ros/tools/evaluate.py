"""Offline evaluation: predicted depth vs ground truth, as JSON and PNG panels (ROS-free).

Two sources of predictions share one evaluator:

- :func:`evaluate_bags` - a bag recorded from the running node (``depth/image``) matched by
  header stamp against the ground-truth depth (and RGB) of the input bag;
- :func:`evaluate_model` - a model run directly over a dataset folder.

Both write ``metrics.json`` (per-frame and mean AbsRel, SqRel, RMSE, RMSElog, log10, SILog,
δ<1.25^k, metric and median-scaled, and ``coverage``) and ``panel_*.png`` (RGB | ground truth |
prediction | absolute error) for a few evenly spaced frames. Every valid ground-truth pixel is
scored (:mod:`mono_depth_ros.core.metrics`). Beside the model, every evaluation scores a trivial
reference, one constant depth everywhere (:class:`Baseline`): a model that does not beat it has
learnt nothing that transfers.

Every summary counts the ground-truth frames ``frames_expected``, ``frames_scored`` and
``frames_missing`` (on a recorded bag: ground-truth frames without a recorded prediction, i.e.
dropped or skipped by the node, listed in ``missing_stamps``); the means are over the scored
frames only, so a node that drops its hard frames is visible here. The model's mean row is
labelled ``mean_label``: ``metric``, or, for a relative model aligned to each frame's ground
truth, ``aligned to ground truth (per frame)``: not a metric result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..core.metrics import METRIC_NAMES, compute_depth_metrics, mean_metrics
from ..core.relative import align_inverse_depth
from ..core.visualize import error_panel


#: Label of the model's mean row when its depth is metric (as published, or scaled by a source).
METRIC_LABEL = "metric"
#: Label of the mean row of a relative model aligned per frame to the ground truth: it has seen
#: the answer's scale and shift, so it is not a metric result.
ALIGNED_LABEL = "aligned to ground truth (per frame)"


def frame_counts(expected: int, scored: int) -> dict:
    """``{"frames_expected", "frames_scored", "frames_missing"}`` of an evaluation."""
    return {"frames_expected": int(expected), "frames_scored": int(scored),
            "frames_missing": int(expected) - int(scored)}


def format_frames(summary: dict) -> str:
    """One line: frames expected / scored / missing, saying why frames are missing."""
    n_exp = summary.get("frames_expected", summary["frames"])
    n_sc = summary.get("frames_scored", summary["frames"])
    n_miss = summary.get("frames_missing", 0)
    text = f"frames: expected {n_exp}, scored {n_sc}, missing {n_miss}"
    if n_miss:
        text += (" (ground-truth frames without a prediction: dropped or skipped by the node; "
                 "not in the means)")
    return text


@dataclass
class Baseline:
    """The constant-depth reference: ``value`` metres at every pixel.

    Attributes:
        value: the constant (m).
        source: where it comes from: ``"given"``, ``"median training depth (checkpoint)"`` or
            ``"oracle: median ground truth of the evaluated set"`` (an oracle has seen the answers:
            a model should beat even that).
    """

    value: float
    source: str


def parse_baseline(text: Optional[str]) -> Tuple[Optional[str], Optional[float]]:
    """``"constant"`` / ``"constant:METRES"`` / ``"none"`` -> ``(kind, metres)``.

    Raises:
        ValueError: anything else, or a non-positive constant.
    """
    if text in (None, "", "none"):
        return None, None
    kind, _, value = text.partition(":")
    if kind != "constant":
        raise ValueError(f"--baseline must be constant[:METRES] or none, got {text!r}")
    if not value:
        return "constant", None
    metres = float(value)
    if not metres > 0:
        raise ValueError(f"the constant baseline must be > 0 m, got {metres}")
    return "constant", metres


def median_gt_depth(samples: Iterable, min_depth: float, max_depth: float, step: int = 4) -> float:
    """Median of the valid ground-truth depth (m) over ``samples`` (objects with ``depth``), on
    every ``step``-th pixel in both directions (bounded memory on large sets)."""
    vals = []
    for s in samples:
        if s.depth is not None:
            d = s.depth[::step, ::step]
            vals.append(d[np.isfinite(d) & (d >= min_depth) & (d <= max_depth)])
    vals = [v for v in vals if v.size]
    if not vals:
        raise ValueError("no valid ground truth to take a median of")
    return float(np.median(np.concatenate(vals)))


class Evaluation:
    """Accumulates frames and writes the report.

    Args:
        out_dir: where ``metrics.json`` and panels go (created).
        min_depth, max_depth: evaluation range in metres.
        panels: number of frames rendered as PNG panels (evenly spaced).
        expected_frames: total frames expected (to space the panels); 0 = unknown.
        crop: ``None``, ``"eigen"`` or ``"garg"`` (KITTI evaluation crops).
        baseline: the constant reference scored beside every frame, or None.
        mean_label: what the model's mean row is (:data:`METRIC_LABEL` or
            :data:`ALIGNED_LABEL`), stored as the summary's ``mean_label``.
    """

    def __init__(self, out_dir: Union[str, Path], min_depth: float = 1e-3, max_depth: float = 10.0,
                 panels: int = 4, expected_frames: int = 0, crop: Optional[str] = None,
                 baseline: Optional[Baseline] = None, mean_label: str = METRIC_LABEL):
        self.baseline = baseline
        self.mean_label = mean_label
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

    def _score(self, pred: np.ndarray, gt: np.ndarray) -> dict:
        metric = compute_depth_metrics(pred, gt, self.min_depth, self.max_depth, crop=self.crop)
        scaled = compute_depth_metrics(pred, gt, self.min_depth, self.max_depth, median_scaling=True,
                                       crop=self.crop)
        return {**metric, "median_scaled": {k: scaled[k] for k in METRIC_NAMES + ("scale",)}}

    def add(self, name: str, pred: np.ndarray, gt: np.ndarray, rgb: Optional[np.ndarray] = None,
            extra: Optional[dict] = None) -> Dict[str, float]:
        """Score one frame: ``pred`` and ``gt`` are ``H x W`` metres (``pred`` NaN or inf where the
        model gave no in-range value, resized to ``gt`` if needed; ``gt`` NaN/0 invalid);
        ``extra`` is stored in the frame's row (e.g. ``scale_fit``)."""
        if pred.shape != gt.shape:
            pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_NEAREST)
        row = {"frame": name, **self._score(pred, gt)}
        row.update(extra or {})
        metric = {k: row[k] for k in METRIC_NAMES}
        if self.baseline is not None:
            row["baseline"] = self._score(np.full(gt.shape, self.baseline.value, np.float32), gt)
        idx = len(self.rows)
        self.rows.append(row)
        if rgb is not None and self._panels_left > 0 and (idx in self._panel_at or not self._panel_at):
            title = f"{name}  AbsRel {metric['abs_rel']:.3f}  RMSE {metric['rmse']:.2f} m  d1 {metric['delta1']:.2f}"
            panel = error_panel(rgb, gt, pred, title, vmax=min(self.max_depth, np.nanpercentile(gt, 98)))
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)  # seq/000 names
            path = self.out_dir / f"panel_{len(self.panel_paths):02d}_{safe}.png"
            cv2.imwrite(str(path), cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
            self.panel_paths.append(path)
            self._panels_left -= 1
        return metric

    @staticmethod
    def _means(rows: List[dict]) -> Tuple[dict, dict]:
        return mean_metrics(rows), mean_metrics(
            [{**r["median_scaled"], "valid_pixels": r["valid_pixels"]} for r in rows])

    def summary(self) -> dict:
        """Mean metrics (metric and median-scaled, with coverage), the constant baseline's means
        (``baseline``: ``value_m``, ``source``, ``mean``, ``mean_median_scaled``) and the
        per-frame rows."""
        mean, scaled = self._means(self.rows)
        out = {
            "frames": len(self.rows),
            "mean_label": self.mean_label,
            "range_m": [self.min_depth, self.max_depth],
            "crop": self.crop,
            "protocol": "every valid-GT pixel scored; predictions clipped to the range, "
                        "NaN -> min, inf -> max (BTS / Eigen)",
            "mean": mean,
            "mean_median_scaled": scaled,
            "per_frame": self.rows,
            "panels": [str(p) for p in self.panel_paths],
        }
        if self.baseline is not None:
            b_mean, b_scaled = self._means([{**r["baseline"], "valid_pixels": r["valid_pixels"]}
                                            for r in self.rows])
            out["baseline"] = {"kind": "constant", "value_m": self.baseline.value,
                               "source": self.baseline.source, "mean": b_mean,
                               "mean_median_scaled": b_scaled}
        return out

    def write(self, extra: Optional[dict] = None) -> Path:
        """Write ``metrics.json`` (summary + ``extra``); returns its path."""
        path = self.out_dir / "metrics.json"
        with open(path, "w") as f:
            json.dump({**(extra or {}), **self.summary()}, f, indent=2, default=float)
        return path


def resolve_baseline(text: Optional[str], samples: Iterable, min_depth: float, max_depth: float,
                     train_median: Optional[float] = None) -> Optional[Baseline]:
    """The :class:`Baseline` for ``--baseline text``: the given metres, else the median training
    depth stored with the model (``train_median``), else the evaluated set's median ground truth
    (labelled as an oracle). None for ``"none"``."""
    kind, metres = parse_baseline(text)
    if kind is None:
        return None
    if metres is not None:
        return Baseline(metres, "given")
    if train_median:
        return Baseline(float(train_median), "median training depth (checkpoint)")
    return Baseline(median_gt_depth(samples, min_depth, max_depth),
                    "oracle: median ground truth of the evaluated set")


def evaluate_model(estimator, samples: Sequence, out_dir: Union[str, Path],
                   min_depth: float = 1e-3, max_depth: float = 10.0, panels: int = 4,
                   progress: bool = True, crop: Optional[str] = None,
                   baseline: Optional[str] = "constant", scale_source: Optional[str] = None) -> dict:
    """Run ``estimator`` (a ``DepthEstimator``) over dataset ``samples`` and score it.

    The network's depth before its range mask (``Prediction.unmasked``) is scored, clipped to the
    evaluation range as the protocol says; ``baseline`` is ``"constant[:METRES]"`` or ``"none"``
    (see :func:`resolve_baseline`). ``scale_source`` (``sparse:N``, ``scan[:B]``,
    ``ground:H[:P]``, ``ground:pose``, ``fixed:S``; see :mod:`mono_depth_ros.tools.scale_eval`)
    scales each prediction with a reference simulated from the ground truth before scoring:
    ``mean`` is then after that scale, and each frame's row has its ``scale_fit``. Relative
    models (no metric scale) without a ``scale_source`` are aligned per frame to the ground
    truth (:func:`~mono_depth_ros.core.relative.align_inverse_depth`, the MiDaS protocol); the
    report says so under ``alignment``.

    Returns:
        the summary dict (also written to ``out_dir/metrics.json``).
    """
    base = resolve_baseline(baseline, samples, min_depth, max_depth,
                            getattr(estimator.spec, "train_median_depth", None))
    aligned = getattr(estimator.spec, "is_relative", False) and not scale_source
    ev = Evaluation(out_dir, min_depth, max_depth, panels, len(samples), crop, base,
                    ALIGNED_LABEL if aligned else METRIC_LABEL)
    scaler = None
    if scale_source:
        from .scale_eval import SimulatedScaleSource
        # the node's own range mask, after the scale (what depth_node publishes)
        scaler = SimulatedScaleSource(scale_source, estimator.spec.output_kind,
                                      (min_depth, max_depth),
                                      mask_range=(getattr(estimator, "min_depth", 0.0),
                                                  getattr(estimator, "max_depth", np.inf)))
    items: Iterable = samples
    if progress:
        from tqdm import tqdm
        items = tqdm(samples, desc=f"evaluate {estimator.name}", unit="frame", disable=None)
    expected = 0
    for s in items:
        if s.depth is None:
            continue
        expected += 1
        pred = estimator.predict(s.rgb, s.K)
        unmasked = getattr(pred, "unmasked", None)  # before the range mask, when the model has it
        depth, extra = pred.depth if unmasked is None else unmasked, None
        relative = getattr(pred, "relative", None)
        if scaler is not None:
            # exactly what the node publishes: the same input, scale and mask in metres
            # (core.scale.scaler_input + MetricScaler); no depth (skip) scores as NaN
            depth, fit = scaler(s, pred)
            depth = np.full(s.rgb.shape[:2], np.nan, np.float32) if depth is None else depth
            extra = {"scale_fit": fit}
        elif relative is not None:  # no scale source: scale and shift from the ground truth
            depth = align_inverse_depth(relative, s.depth, min_depth, max_depth)[0]
        ev.add(s.name, depth, s.depth, s.rgb, extra)
    extra = {**frame_counts(expected, len(ev.rows)),
             "model": estimator.name, "checkpoint": estimator.checkpoint,
             "backend": getattr(estimator, "backend", None),
             "precision": getattr(estimator, "precision", None),
             "scale_source": scale_source or "none"}
    if scaler is not None:
        from .scale_eval import summarize_fits
        extra["scale_fits"] = summarize_fits(ev.rows)
    elif getattr(estimator.spec, "is_relative", False):
        extra["alignment"] = ("relative model: per-frame least-squares scale and shift of inverse "
                              "depth to the ground truth (MiDaS protocol)")
    ev.write(extra)
    return {**extra, **ev.summary()}


def evaluate_bags(pred_bag: Union[str, Path], gt_bag: Union[str, Path], out_dir: Union[str, Path],
                  pred_topic: str, gt_topic: str, image_topic: Optional[str] = None,
                  min_depth: float = 1e-3, max_depth: float = 10.0, panels: int = 4,
                  crop: Optional[str] = None, baseline: Optional[str] = "constant") -> dict:
    """Score recorded ``pred_topic`` (32FC1) against ``gt_topic`` matched by header stamp.

    ``pred_bag`` and ``gt_bag`` may be the same bag. Every ground-truth frame is expected: one
    with a prediction of the same stamp is scored, one without (the node dropped or skipped it,
    or the recording missed it) is counted as missing (``frames_missing``, ``missing_stamps``)
    and left out of the means. Predictions without a ground-truth frame of the same stamp are
    counted as ``unmatched``. NaN in the recorded depth is scored as the protocol says
    (``min_depth``); ``baseline``: ``"constant[:METRES]"`` (default: the oracle median of the
    matched ground truth) or ``"none"``.

    Returns:
        the summary dict with ``frames_expected`` / ``frames_scored`` / ``frames_missing``,
        ``missing_stamps`` (ns) and ``matched`` (= scored) / ``unmatched`` counts (also in
        ``metrics.json``).
    """
    from ..data.bag import deserialize, iter_raw, read_topics_by_stamp, stamp_ns
    from ..core.image_codec import depth_msg_to_metres, image_msg_to_rgb

    preds = read_topics_by_stamp(pred_bag, [pred_topic])[pred_topic]
    # one pass over the ground truth: every stamp (what is expected), messages kept only where
    # a prediction exists (bounded memory on long bags)
    gt_stamps, gt_msgs = set(), {}
    for _, msgtype, _, data in iter_raw(gt_bag, [gt_topic]):
        msg = deserialize(data, msgtype)
        st = stamp_ns(msg)
        gt_stamps.add(st)
        if st in preds:
            gt_msgs[st] = msg
    images = (read_topics_by_stamp(gt_bag, [image_topic], stamps=gt_msgs)[image_topic]
              if image_topic else {})
    stamps = sorted(gt_msgs)
    base = None
    if stamps:  # decoded lazily: an oracle median keeps a subsample, not every frame in memory
        base = resolve_baseline(baseline, (SimpleNamespace(depth=depth_msg_to_metres(
            gt_msgs[st])) for st in stamps), min_depth, max_depth)
    ev = Evaluation(out_dir, min_depth, max_depth, panels, len(stamps), crop, base)
    for st in stamps:
        rgb = image_msg_to_rgb(images[st]) if st in images else None
        ev.add(f"t{st}", depth_msg_to_metres(preds[st]), depth_msg_to_metres(gt_msgs[st]), rgb)
    extra = {"pred_bag": str(pred_bag), "gt_bag": str(gt_bag),
             **frame_counts(len(gt_stamps), len(stamps)),
             "missing_stamps": sorted(gt_stamps - set(stamps)),
             "matched": len(stamps), "unmatched": len(preds) - len(stamps)}
    ev.write(extra)
    return {**extra, **ev.summary()}


def format_table(summary: dict, keys: Tuple[str, ...] = METRIC_NAMES + ("coverage",)) -> str:
    """Markdown table of the mean metrics: the model (its ``mean_label`` row - ``metric``, or
    ``aligned to ground truth (per frame)`` for a relative model - and the median-scaled row)
    and, when the summary has one, the constant baseline beside it."""
    head = "| | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys) + "\n"
    label = summary.get("mean_label", METRIC_LABEL)
    rows = [(label, summary["mean"]), ("median-scaled", summary["mean_median_scaled"])]
    base = summary.get("baseline")
    if base:
        label = f"constant {base['value_m']:.3g} m ({base['source']})"
        rows += [(label, base["mean"]), (label + ", median-scaled", base["mean_median_scaled"])]
    # "-": not defined for the row (coverage of a median-scaled row, R² of constant GT)
    cell = lambda m, k: f"{m[k]:.3f}" if np.isfinite(m.get(k, np.nan)) else "-"  # noqa: E731
    return head + "\n".join(f"| {label} | " + " | ".join(cell(m, k) for k in keys) + " |"
                             for label, m in rows)
