"""Metric-scale sources simulated from ground truth, for ``evaluate --scale-source`` (ROS-free).

So the gain of each source of :mod:`mono_depth_ros.core.scale` can be measured on real frames,
the reference a robot would have is made from the dataset's ground truth:

=================  ==============================================================================
``sparse:N``       N random valid ground-truth pixels per frame (a projected lidar / ToF; one
                   fixed seed for the whole run, so runs repeat exactly)
``scan[:B]``       a 2D-scan stand-in: the valid ground truth in a horizontal band of ``2B + 1``
                   rows (default B = 2) through the principal point, every 4th column (a level
                   scanner at the camera's height, ~0.1-0.4 degrees between beams)
``ground:H[:P]``   the floor / road: camera ``H`` metres above it, pitch ``P`` degrees
                   (positive = looking up; default 0)
``ground:pose``    the floor with height and pitch per frame from the sample's pose (a world frame
                   with z up and the floor at z = 0, as the street generator writes)
``fixed:S``        a constant scale ``S``
=================  ==============================================================================

What is scored is what ``depth_node`` publishes: the prediction goes through the node's own
path (:func:`~mono_depth_ros.core.scale.scaler_input` - the network's depth before its range
mask, or ``1 / x`` of a relative model - then :class:`~mono_depth_ros.core.scale.MetricScaler`,
which scales and then masks to the node's ``min_depth`` / ``max_depth`` in metres). Every frame
is fitted on its own (no temporal smoothing or jump confirmation: dataset frames need not be a
sequence); a frame whose fit is rejected has no depth, as with the node's default
``scale_fallback`` ``skip`` (it scores as uncovered), and its row says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..core.scale import MetricScaler, Reference, ScaleConfig, scaler_input

#: Columns between two samples of the ``scan`` stand-in.
SCAN_COLUMN_STEP = 4


@dataclass(frozen=True)
class ScaleSourceSpec:
    """Parsed ``--scale-source`` text: ``kind`` (``sparse``, ``scan``, ``ground``, ``fixed``)
    and its numbers (``count``, ``band``, ``height`` / ``pitch`` or ``from_pose``, ``scale``)."""

    text: str
    kind: str
    count: int = 0
    band: int = 2
    height: float = 0.0
    pitch: float = 0.0
    from_pose: bool = False
    scale: float = 1.0


def parse_scale_source(text: str) -> ScaleSourceSpec:
    """Parse ``sparse:N``, ``scan[:B]``, ``ground:H[:P]``, ``ground:pose`` or ``fixed:S``.

    Raises:
        ValueError: anything else, or numbers out of range (N >= 1, B >= 0, H > 0, S > 0).
    """
    kind, _, rest = text.partition(":")
    args = rest.split(":") if rest else []
    try:
        if kind == "sparse" and len(args) == 1 and int(args[0]) >= 1:
            return ScaleSourceSpec(text, kind, count=int(args[0]))
        if kind == "scan" and len(args) <= 1 and (not args or int(args[0]) >= 0):
            return ScaleSourceSpec(text, kind, band=int(args[0]) if args else 2)
        if kind == "ground" and args == ["pose"]:
            return ScaleSourceSpec(text, kind, from_pose=True)
        if kind == "ground" and 1 <= len(args) <= 2 and float(args[0]) > 0:
            return ScaleSourceSpec(text, kind, height=float(args[0]),
                                   pitch=float(args[1]) if len(args) == 2 else 0.0)
        if kind == "fixed" and len(args) == 1 and float(args[0]) > 0:
            return ScaleSourceSpec(text, kind, scale=float(args[0]))
    except ValueError:
        pass
    raise ValueError(f"bad --scale-source {text!r}: use sparse:N, scan[:B], ground:HEIGHT[:PITCH], "
                     "ground:pose or fixed:S (N >= 1, HEIGHT and S > 0)")


def sparse_reference(gt: np.ndarray, count: int, rng: np.random.Generator,
                     valid_range: Tuple[float, float]) -> np.ndarray:
    """``gt`` (``H x W`` m, NaN invalid) kept at ``count`` random valid pixels, NaN elsewhere."""
    lo, hi = valid_range
    with np.errstate(invalid="ignore"):
        idx = np.flatnonzero(np.isfinite(gt) & (gt >= lo) & (gt <= hi))
    out = np.full(gt.shape, np.nan, np.float32)
    if idx.size:
        pick = rng.choice(idx, min(count, idx.size), replace=False)
        out.flat[pick] = gt.flat[pick]
    return out


def scan_reference(gt: np.ndarray, K: np.ndarray, band: int = 2,
                   valid_range: Tuple[float, float] = (0.0, np.inf)) -> np.ndarray:
    """``gt`` kept in rows ``cy - band .. cy + band`` (``cy`` = ``K[1, 2]`` rounded, clamped to the
    image) at every :data:`SCAN_COLUMN_STEP`-th column, NaN elsewhere."""
    h = gt.shape[0]
    row = int(min(max(round(float(K[1, 2])), 0), h - 1))
    out = np.full(gt.shape, np.nan, np.float32)
    rows = slice(max(row - band, 0), min(row + band + 1, h))
    out[rows, ::SCAN_COLUMN_STEP] = gt[rows, ::SCAN_COLUMN_STEP]
    lo, hi = valid_range
    with np.errstate(invalid="ignore"):
        out[~((out >= lo) & (out <= hi))] = np.nan
    return out


def pose_height_pitch(pose: np.ndarray) -> Tuple[float, float]:
    """Camera height (m, pose z) and pitch (degrees, positive = up) from a ``4 x 4``
    camera-to-world pose (optical axes) in a world with z up and the floor at z = 0."""
    R = np.asarray(pose, np.float64)[:3, :3]
    up = R[2]  # world z in camera coordinates: (R^T e_z)
    return float(pose[2, 3]), math.degrees(math.atan2(up[2], -up[1]))


class SimulatedScaleSource:
    """Applies one ``--scale-source`` to each evaluated frame.

    Args:
        text: the ``--scale-source`` value (:func:`parse_scale_source`).
        output_kind: the model's ``ModelSpec.output_kind`` (selects the fit mode).
        valid_range: evaluation range in metres (simulated references are kept in it).
        seed: RNG seed of ``sparse:N``.
        mask_range: the node's ``(min_depth, max_depth)`` in metres, applied after the scale as
            the node does (default: ``valid_range``).
        fallback: the node's ``scale_fallback`` (default ``skip``, the node's default).

    Raises:
        ValueError: from :func:`parse_scale_source`.
    """

    _SOURCE = {"sparse": "sparse_depth", "scan": "scan", "ground": "ground_plane", "fixed": "fixed"}

    def __init__(self, text: str, output_kind: Optional[str], valid_range: Tuple[float, float],
                 seed: int = 0, mask_range: Optional[Tuple[float, float]] = None,
                 fallback: str = "skip"):
        self.spec = parse_scale_source(text)
        self.output_kind = output_kind
        self.valid_range = (float(valid_range[0]), float(valid_range[1]))
        self.mask_range = self.valid_range if mask_range is None else (
            float(mask_range[0]), float(mask_range[1]))
        self.fallback = fallback
        self.rng = np.random.default_rng(seed)
        self._frame = 0

    def _config(self, sample) -> ScaleConfig:
        sp = self.spec
        height, pitch = sp.height, sp.pitch
        if sp.from_pose:
            if sample.pose is None:
                raise ValueError(f"--scale-source ground:pose: frame {sample.name} has no pose")
            height, pitch = pose_height_pitch(sample.pose)
        # each frame on its own: no smoothing or confirmation, a rejected fit falls back at once
        return ScaleConfig(source=self._SOURCE[sp.kind], fixed_scale=sp.scale, camera_height=height,
                           expected_pitch_deg=pitch, smoothing=0.0, max_age=0.0, jump_confirm=1,
                           fallback=self.fallback)

    def reference(self, sample) -> Optional[Reference]:
        """The simulated reference of ``sample`` (None for ``ground`` and ``fixed``)."""
        sp, rng = self.spec, self.valid_range
        if sp.kind == "sparse":
            return Reference(sparse_reference(sample.depth, sp.count, self.rng, rng))
        if sp.kind == "scan":
            return Reference(scan_reference(sample.depth, sample.K, sp.band, rng))
        return None

    def __call__(self, sample, prediction) -> Tuple[Optional[np.ndarray], dict]:
        """Scale one prediction for ``sample`` (``Sample`` with ``depth``, ``K``, ``pose``,
        ``name``) the way the node does.

        Args:
            sample: the dataset frame.
            prediction: the estimator's ``Prediction`` (``depth``, ``unmasked``, ``relative``),
                or an ``H x W`` float32 array that is already the scaler's input (depth in m;
                ``1 / x`` for relative models).

        Returns:
            ``(depth or None, info)``: ``depth`` as the node would publish it (None: the node
            publishes none); info has the source, status, scale, shift, support, candidates,
            residual, rejection reason and detail of the frame.
        """
        scaler = MetricScaler(self._config(sample))
        pred = prediction if isinstance(prediction, np.ndarray) else scaler_input(prediction)
        out = scaler(pred, sample.K, float(self._frame), self.output_kind, self.reference(sample),
                     self.mask_range)
        self._frame += 1
        info = {"source": self.spec.text, "status": out.state.status, "scale": out.state.scale,
                "shift": out.state.shift}
        if out.fit is not None:  # this frame's fit, accepted or not
            info.update({k: out.fit.as_dict()[k] for k in ("support", "candidates", "residual",
                                                          "reason", "detail")})
        return out.depth, info


def summarize_fits(rows) -> dict:
    """Per-run summary of the frames' ``scale_fit`` entries: frames fitted, rejection reasons,
    median applied scale and median support of the fitted frames."""
    fits = [r["scale_fit"] for r in rows if "scale_fit" in r]
    fitted = [f for f in fits if f["status"] in ("fitted", "fixed")]
    reasons: dict = {}
    for f in fits:
        if f.get("reason"):
            reasons[f["reason"]] = reasons.get(f["reason"], 0) + 1
    def median(key):
        return float(np.median([f.get(key, 0) for f in fitted])) if fitted else float("nan")

    return {"frames": len(fits), "fitted": len(fitted), "rejected": reasons,
            "median_scale": median("scale"), "median_support": median("support")}
