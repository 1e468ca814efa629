"""Metric scale for monocular depth from sparse metric references or the ground plane (ROS-free).

Monocular networks are right up to a scale far more often than in metres, and relative models
(MiDaS, DPT, Depth Anything relative) predict affine-invariant inverse depth with no scale at
all. A robot usually knows something metric; this module turns it into a scale:

* :func:`fit_scale` - robust fit of a prediction to metric references (a sparse depth map from
  a projected lidar, ToF or 2D scan): ``ref ≈ s * pred`` for depth outputs
  (:data:`MODE_SCALE`), or ``1 / ref ≈ s * x + t`` for affine-invariant inverse depth ``x``
  (:data:`MODE_INVERSE_AFFINE`, the least-squares alignment of Ranftl et al., "Towards Robust
  Monocular Depth Estimation: Mixing Datasets for Zero-shot Cross-dataset Transfer", TPAMI 2022).
  Minimal-sample RANSAC finds the inliers (relative residual below a threshold), least squares
  on the inliers refines, and a minimum-support check rejects fits with too few or too small a
  share of agreeing references.
* :func:`fit_ground_plane` / :func:`ground_plane_scale` - RANSAC plane fit to the back-projected
  lower image region; a plane whose normal is further than ``max_tilt_deg`` from the expected up
  direction (from the camera pitch; optical frame, y down) is not a floor. Scale = known camera
  height / fitted camera-to-plane distance.
* :class:`ScaleEstimator` - per-frame fits folded into a temporally smoothed scale (EMA in log
  scale). A new scale - the first one, or one further than ``jump_ratio`` from the running
  value, in either direction - is taken only after ``jump_confirm`` agreeing fits in a row (the
  previous scale is held meanwhile), so one outlier reference frame cannot move the published
  depth; the last good scale is held for ``max_age`` seconds, then the fallback applies.
* :func:`scale_health` - the level (OK / WARN / ERROR), message and values of the scale for
  ``/diagnostics``.
* :class:`MetricScaler` - one object per source (``none``, ``fixed``, ``sparse_depth``,
  ``scan``, ``ground_plane``) that the frame pipeline calls after inference.
* Helpers for references given as points: :func:`pose_matrix` (xyz + roll-pitch-yaw, the URDF /
  tf2 convention), :func:`scan_points` (a 2D ``LaserScan``), :func:`points_to_sparse_depth`.

Function + small stateful class, in the style of kornia. All depths are metres, NaN invalid
(REP 118); frames are REP 103 optical frames (x right, y down, z forward).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .geometry import CloudBuilder

#: ``ModelSpec.output_kind`` of affine-invariant inverse-depth (relative) models. Their
#: ``Prediction.depth`` is read as ``1 / x`` (x = the network's relative inverse depth).
RELATIVE_INVERSE = "relative_inverse"

#: Fit ``ref ≈ s * pred`` (metric or up-to-scale depth).
MODE_SCALE = "scale"
#: Fit ``1 / ref ≈ s * x + t`` in inverse depth (Ranftl et al.); ``x = 1 / pred``.
MODE_INVERSE_AFFINE = "scale_shift_inverse"
#: Fit mode for each output kind; kinds not listed are depth up to a scale.
MODE_BY_OUTPUT_KIND = {RELATIVE_INVERSE: MODE_INVERSE_AFFINE}

#: Scale sources (node parameter ``scale_source``).
SOURCES = ("none", "fixed", "sparse_depth", "scan", "ground_plane")
#: Sources that need a metric reference per frame (from a topic, or simulated offline).
REFERENCE_SOURCES = ("sparse_depth", "scan")
#: What happens when no good scale is younger than ``max_age``: ``skip`` (no depth for the
#: frame; the default, see docs/metric_scale.md) or ``unscaled`` (the network's own depth).
FALLBACKS = ("skip", "unscaled")
#: Largest condition number of the (normalised) 2 x 2 normal equations of a scale + shift fit;
#: beyond it the two parameters cannot be told apart (a prediction with almost one value).
MAX_SHIFT_FIT_CONDITION = 1e4
#: Consecutive frames without a usable new scale (rejected or unconfirmed fits) after which
#: :func:`scale_health` reports ERROR instead of WARN while no scale is applied.
ERROR_AFTER_REJECTIONS = 10


def fit_mode(output_kind: Optional[str]) -> str:
    """Fit mode (:data:`MODE_SCALE` or :data:`MODE_INVERSE_AFFINE`) for a model output kind."""
    return MODE_BY_OUTPUT_KIND.get(output_kind, MODE_SCALE)


@dataclass
class ScaleFit:
    """Result of one fit.

    Attributes:
        scale, shift: ``depth = scale * pred`` (:data:`MODE_SCALE`, shift 0) or
            ``depth = 1 / (scale * x + shift)`` with ``x = 1 / pred`` (inverse affine; shift 1/m).
        support: references (or floor points) that agree with the fit (inliers).
        candidates: usable references offered (or floor-region points).
        residual: median absolute relative depth error of the inliers after the fit (for the
            ground plane: median point-to-plane distance / plane distance).
        ok: the fit passed every check; otherwise ``reason`` says why not.
        reason: short key: ``no_reference``, ``wrong_size``, ``empty_reference``,
            ``non_finite``, ``stale_reference``, ``too_little_support`` (fewer agreeing
            references than ``min_support``), ``low_inlier_fraction``, ``degenerate`` (a scale
            + shift fit whose references span too narrow a band of inverse depth, or whose
            normal equations are ill-conditioned), ``bad_scale`` (not finite or <= 0),
            ``not_a_floor``, ``no_transform``, ``wrong_frame``, ``empty_frame`` ...
        detail: one line on the rejection (numbers), empty when there is none.
        x_ref: median of the inliers' prediction in fit space (``pred``, or ``x`` in inverse
            mode), where :class:`ScaleEstimator` compares two scale + shift fits; NaN unknown.
    """

    scale: float = 1.0
    shift: float = 0.0
    support: int = 0
    candidates: int = 0
    residual: float = float("nan")
    ok: bool = False
    reason: str = ""
    detail: str = ""
    x_ref: float = float("nan")

    def as_dict(self) -> dict:
        """JSON-friendly copy (``metrics.json`` per frame)."""
        return {"scale": self.scale, "shift": self.shift, "support": self.support,
                "candidates": self.candidates, "residual": self.residual, "ok": self.ok,
                "reason": self.reason, "detail": self.detail}


def positive_reciprocal(x: np.ndarray) -> np.ndarray:
    """``1 / x`` where ``x > 0``, NaN elsewhere (and where ``x`` is NaN), as float32: inverse
    depth (1/m, or a relative model's affine-invariant output read as ``1 / x``) -> depth.

    Args:
        x: float array of any shape.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, 1.0 / x, np.nan).astype(np.float32, copy=False)


def apply_scale(pred: np.ndarray, scale: float, shift: float = 0.0, mode: str = MODE_SCALE
                ) -> np.ndarray:
    """Metric depth from a prediction and a fitted ``(scale, shift)``.

    Args:
        pred: ``H x W`` float32 prediction (depth, or ``1 / x`` for inverse-affine mode), NaN
            invalid.
        mode: :data:`MODE_SCALE` (``scale * pred``) or :data:`MODE_INVERSE_AFFINE`
            (``1 / (scale / pred + shift)``, NaN where that inverse depth is not positive).

    Returns:
        ``H x W`` float32 metres, NaN invalid (a new array).
    """
    pred = np.asarray(pred, dtype=np.float32)
    if mode == MODE_SCALE:
        return pred * np.float32(scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.float32(scale) / pred + np.float32(shift)
    return positive_reciprocal(inv)


def _residuals(p: np.ndarray, g: np.ndarray, s, t, mode: str) -> np.ndarray:
    """Relative residuals for hypotheses ``s``, ``t`` (scalars or ``(M, 1)``) at ``(p, g)``.

    Scale mode: ``(s p - g) / g``; inverse mode: ``g (s x + t) - 1`` with ``x = p`` (the
    relative error of the fitted inverse depth, ~ minus the relative depth error)."""
    if mode == MODE_SCALE:
        return (s * p - g) / g
    return g * (s * p + t) - 1.0


def least_squares(p: np.ndarray, g: np.ndarray, mode: str) -> Optional[Tuple[float, float]]:
    """Closed-form refit on inliers; None when degenerate.

    Scale mode minimises the relative error ``sum ((s p - g) / g)^2``; inverse mode solves
    Ranftl et al.'s 2 x 2 normal equations ``min sum (s x + t - 1 / g)^2``."""
    if mode == MODE_SCALE:
        a = p / g
        den = float(np.dot(a, a))
        return (float(a.sum()) / den, 0.0) if den > 0 else None
    d = 1.0 / g
    a00, a01, a11 = float(np.dot(p, p)), float(p.sum()), float(p.size)
    b0, b1 = float(np.dot(p, d)), float(d.sum())
    det = a00 * a11 - a01 * a01
    if not det > 1e-12 * max(a00 * a11, 1e-30):
        return None
    return (a11 * b0 - a01 * b1) / det, (a00 * b1 - a01 * b0) / det


def fit_scale(pred: np.ndarray, ref: np.ndarray, mode: str = MODE_SCALE, min_support: int = 16,
              inlier_threshold: float = 0.3, min_inlier_fraction: float = 0.3,
              iterations: int = 128, max_points: int = 5000, seed: int = 0,
              min_inverse_spread: float = 0.25) -> ScaleFit:
    """Robust scale (or scale + shift in inverse depth) of a prediction against metric references.

    RANSAC over minimal samples (one reference for a scale, two for scale + shift), scored by
    the MSAC cost (relative residuals truncated at ``inlier_threshold``, summed; Torr and
    Zisserman, CVIU 2000), then least squares on the inliers (twice, re-selecting them), then
    the support checks. Support is counted on the agreeing references (the inliers) only: a
    minority that agrees among itself never sets the scale because many others were offered.

    A scale + shift fit is only as good as the spread of its references: references in a narrow
    depth band (a scan facing a wall) fit any line through one point, with a small residual, and
    put the rest of the scene anywhere. So the inliers' inverse depth ``1 / ref`` must spread by
    at least ``min_inverse_spread`` (``(q90 - q10) / q50``), and the normal equations must be
    conditioned (:data:`MAX_SHIFT_FIT_CONDITION`); otherwise the fit is rejected as
    ``degenerate`` (the caller then holds the last well-conditioned scale).

    Args:
        pred: prediction, any shape: depth (:data:`MODE_SCALE`), or the network's relative
            inverse depth ``x`` (:data:`MODE_INVERSE_AFFINE`); NaN / non-positive depth ignored.
        ref: metric reference depth (m) of the same shape; NaN, inf or <= 0 means "no
            reference" (a sparse map is mostly NaN).
        mode: :data:`MODE_SCALE` or :data:`MODE_INVERSE_AFFINE`.
        min_support: fewest inliers accepted.
        inlier_threshold: largest relative residual of an inlier (0.3 = 30 %: the per-pixel
            error of a monocular network, AbsRel 0.1-0.3, must still count as agreement; gross
            outliers - a beam through glass, a lidar point on another object - lie beyond).
        min_inlier_fraction: smallest share of usable references that must be inliers.
        iterations: RANSAC hypotheses.
        max_points: references used to score hypotheses (a random subset beyond that).
        seed: RNG seed (fits are deterministic).
        min_inverse_spread: :data:`MODE_INVERSE_AFFINE` only: smallest relative spread of the
            inliers' ``1 / ref`` (0 disables the check; the conditioning check stays).

    Returns:
        :class:`ScaleFit`; ``ok`` False with ``reason`` when rejected (then ``scale`` / ``shift``
        are the best values found, or 1 / 0).

    Raises:
        ValueError: shapes differ, unknown ``mode``, or ``min_support < 1``.
    """
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.shape != ref.shape:
        raise ValueError(f"pred {pred.shape} and ref {ref.shape} differ in shape")
    if mode not in (MODE_SCALE, MODE_INVERSE_AFFINE):
        raise ValueError(f"unknown mode {mode!r}; valid: {MODE_SCALE}, {MODE_INVERSE_AFFINE}")
    if min_support < 1:
        raise ValueError(f"min_support must be >= 1, got {min_support}")
    nsample = 1 if mode == MODE_SCALE else 2
    with np.errstate(invalid="ignore", divide="ignore"):
        usable = np.isfinite(ref) & (ref > 0)
        if not usable.any():
            return ScaleFit(reason="empty_reference")
        p_all = pred.astype(np.float64)
        if mode == MODE_INVERSE_AFFINE:
            p_all = 1.0 / p_all  # x = 1 / pred
        m = usable & np.isfinite(p_all) & (p_all > 0)
    p, g = p_all[m].ravel(), ref[m].astype(np.float64).ravel()
    n = p.size
    if n < max(min_support, nsample):
        return ScaleFit(candidates=n, reason="too_little_support")
    rng = np.random.default_rng(seed)
    if n > max_points:
        sub = rng.choice(n, max_points, replace=False)
        ps, gs = p[sub], g[sub]
    else:
        ps, gs = p, g
    # Minimal-sample hypotheses, all scored at once.
    idx = rng.integers(0, ps.size, size=(int(iterations), nsample))
    if mode == MODE_SCALE:
        s = (gs[idx[:, 0]] / ps[idx[:, 0]])[:, None]
        t = np.zeros_like(s)
    else:
        x0, x1 = ps[idx[:, 0]], ps[idx[:, 1]]
        d0, d1 = 1.0 / gs[idx[:, 0]], 1.0 / gs[idx[:, 1]]
        with np.errstate(divide="ignore", invalid="ignore"):
            s = ((d1 - d0) / (x1 - x0))[:, None]
        t = d0[:, None] - s * x0[:, None]
        good = np.isfinite(s[:, 0]) & np.isfinite(t[:, 0])
        s, t = s[good], t[good]
        if s.size == 0:
            return ScaleFit(candidates=n, reason="degenerate")
    with np.errstate(invalid="ignore"):
        r = np.abs(_residuals(ps[None, :], gs[None, :], s, t, mode))
    # MSAC: an outlier costs the threshold, an inlier its residual
    cost = np.minimum(np.nan_to_num(r, nan=np.inf), inlier_threshold).sum(1)
    best = int(np.argmin(cost))
    scale, shift = float(s[best, 0]), float(t[best, 0])
    for _ in range(2):
        inl = np.abs(_residuals(p, g, scale, shift, mode)) < inlier_threshold
        if inl.sum() < nsample:
            break
        sol = least_squares(p[inl], g[inl], mode)
        if sol is None:
            return ScaleFit(candidates=n, support=int(inl.sum()), reason="degenerate",
                            detail="singular least-squares refit on the inliers")
        scale, shift = sol
    with np.errstate(invalid="ignore"):
        res = np.abs(_residuals(p, g, scale, shift, mode))
    inl = res < inlier_threshold
    support = int(inl.sum())
    resid = float(np.median(res[inl])) if support else float("nan")
    fit = ScaleFit(scale=scale, shift=shift, support=support, candidates=n, residual=resid,
                   x_ref=float(np.median(p[inl])) if support else float("nan"))
    if not (math.isfinite(scale) and math.isfinite(shift) and scale > 0):
        # a non-positive scale would turn depth order around: never a valid alignment
        return replace(fit, scale=1.0, shift=0.0, reason="bad_scale")
    if support < min_support:  # the agreeing references, never all of those offered
        return replace(fit, reason="too_little_support",
                       detail=f"{support} agreeing of {n}, need {min_support}")
    if support < min_inlier_fraction * n:
        return replace(fit, reason="low_inlier_fraction",
                       detail=f"{support} agreeing of {n}, need {min_inlier_fraction:g} of them")
    if mode == MODE_INVERSE_AFFINE:
        why = _shift_fit_problem(p[inl], g[inl], min_inverse_spread)
        if why:
            return replace(fit, reason="degenerate", detail=why)
    return replace(fit, ok=True)


def _shift_fit_problem(x: np.ndarray, g: np.ndarray, min_spread: float) -> str:
    """Why a scale + shift fit on inliers ``x`` (relative inverse depth) and ``g`` (metres)
    does not determine both parameters, or ``""``."""
    d = 1.0 / g
    q10, q50, q90 = np.percentile(d, [10, 50, 90])
    spread = float((q90 - q10) / q50) if q50 > 0 else 0.0
    if spread < min_spread:
        return (f"references span {1 / q90:.2f}-{1 / q10:.2f} m: inverse-depth spread "
                f"{spread:.3f} < {min_spread:g} (scale_min_inverse_spread), scale and shift "
                "cannot be told apart")
    xn = x / np.median(np.abs(x))  # scale-free: the conditioning of [x 1] after normalising x
    a = np.array([[np.dot(xn, xn), xn.sum()], [xn.sum(), float(xn.size)]])
    cond = float(np.linalg.cond(a))
    if not cond < MAX_SHIFT_FIT_CONDITION:
        return (f"prediction nearly constant on the references: condition number {cond:.3g} > "
                f"{MAX_SHIFT_FIT_CONDITION:g}")
    return ""


# ------------------------------------------------------------------------------ ground plane

def expected_up(pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """World "up" as a unit vector in the camera optical frame (x right, y down, z forward).

    Args:
        pitch_deg: camera pitch, positive = looking up (0: optical axis horizontal).
        roll_deg: roll about the optical axis, positive = clockwise as seen by the camera.

    Returns:
        ``(3,)`` float64; ``(0, -1, 0)`` for a level camera.
    """
    p, r = math.radians(pitch_deg), math.radians(roll_deg)
    up = np.array([0.0, -math.cos(p), math.sin(p)])
    # roll rotates the image plane: up's x/y components turn with it
    c, s = math.cos(r), math.sin(r)
    return np.array([c * up[0] - s * up[1], s * up[0] + c * up[1], up[2]])


@dataclass
class PlaneFit:
    """A plane ``normal . X + distance = 0`` in the optical frame (``normal`` points up, toward
    the camera side; ``distance`` > 0 = camera height above it, in the prediction's units).

    ``tilt_deg`` is the angle between ``normal`` and the expected up direction; ``support``,
    ``candidates``, ``residual``, ``ok``, ``reason`` as in :class:`ScaleFit`."""

    normal: np.ndarray = field(default_factory=lambda: np.array([0.0, -1.0, 0.0]))
    distance: float = float("nan")
    tilt_deg: float = float("nan")
    support: int = 0
    candidates: int = 0
    residual: float = float("nan")
    ok: bool = False
    reason: str = ""


def _plane_from_points(P: np.ndarray, up: np.ndarray) -> Tuple[np.ndarray, float]:
    """Total-least-squares plane through ``P`` (N x 3), normal oriented along ``up``."""
    c = P.mean(0)
    _, _, vt = np.linalg.svd(P - c, full_matrices=False)
    n = vt[2]
    if n @ up < 0:
        n = -n
    return n, float(-n @ c)


def fit_ground_plane(depth: np.ndarray, K: np.ndarray, up: Optional[np.ndarray] = None,
                     max_tilt_deg: float = 15.0, region: float = 0.4, inlier_threshold: float = 0.05,
                     min_fraction: float = 0.15, min_support: int = 50, iterations: int = 200,
                     max_points: int = 3000, seed: int = 0) -> PlaneFit:
    """RANSAC floor plane in the lower image region of a depth map.

    The region's pixels are back-projected with ``K`` (every 4th pixel, by
    :class:`~mono_depth_ros.core.geometry.CloudBuilder`); three-point hypotheses whose normal is
    within ``max_tilt_deg`` of ``up`` and which pass below the camera are scored by the MSAC
    cost (point-to-plane distances relative to the plane distance, so the test is scale-free,
    truncated at ``inlier_threshold``), and the best is refined by total least squares on its
    inliers.

    Args:
        depth: ``H x W`` float32 depth (any consistent unit), NaN invalid.
        K: ``3 x 3`` intrinsics of ``depth``.
        up: expected up direction in the optical frame (default :func:`expected_up` ``(0)``).
        max_tilt_deg: largest angle between the plane normal and ``up`` for a floor.
        region: fraction of the image rows, from the bottom, searched.
        inlier_threshold: inlier distance as a fraction of the plane distance.
        min_fraction: smallest share of the region's points on the plane.
        min_support: fewest points on the plane.
        iterations: RANSAC hypotheses. max_points: points used to score them. seed: RNG seed.

    Returns:
        :class:`PlaneFit` (``ok`` False with ``reason`` ``too_little_support``, ``not_a_floor``
        (no hypothesis near ``up`` below the camera, or the refined normal tilted too far) or
        ``low_inlier_fraction``).

    Raises:
        ValueError: ``depth`` not 2-D, or ``region`` outside ``(0, 1]``.
    """
    if depth.ndim != 2:
        raise ValueError(f"depth must be H x W, got shape {depth.shape}")
    if not 0 < region <= 1:
        raise ValueError(f"region must be in (0, 1], got {region}")
    up = expected_up() if up is None else np.asarray(up, np.float64) / np.linalg.norm(up)
    step = 4
    cloud = CloudBuilder(step, with_rgb=False).build(np.asarray(depth, np.float32), np.asarray(K))
    rows = np.arange(0, depth.shape[0], step)
    pts = cloud.points[rows >= (1.0 - region) * depth.shape[0]].reshape(-1, 3).astype(np.float64)
    pts = pts[np.isfinite(pts).all(1) & (pts[:, 2] > 0)]
    n_pts = len(pts)
    if n_pts < max(min_support, 3):
        return PlaneFit(candidates=n_pts, reason="too_little_support")
    rng = np.random.default_rng(seed)
    sub = pts[rng.choice(n_pts, max_points, replace=False)] if n_pts > max_points else pts
    idx = rng.integers(0, len(sub), size=(int(iterations), 3))
    a, b, c = sub[idx[:, 0]], sub[idx[:, 1]], sub[idx[:, 2]]
    nrm = np.cross(b - a, c - a)
    length = np.linalg.norm(nrm, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        nrm = nrm / length[:, None]
    nrm *= np.where(nrm @ up < 0, -1.0, 1.0)[:, None]
    dist = -(nrm * a).sum(1)
    cos_tilt = math.cos(math.radians(max_tilt_deg))
    keep = (length > 0) & np.isfinite(dist) & (dist > 0) & (nrm @ up >= cos_tilt)
    if not keep.any():
        return PlaneFit(candidates=n_pts, reason="not_a_floor")
    nrm, dist = nrm[keep], dist[keep]
    r = np.abs(sub @ nrm.T + dist) / dist  # (points, hypotheses), relative to the distance
    cost = np.minimum(r, inlier_threshold).sum(0)
    best = int(np.argmin(cost))
    n, d = nrm[best], float(dist[best])
    for _ in range(2):
        inl = np.abs(pts @ n + d) < inlier_threshold * d
        if inl.sum() < 3:
            break
        n, d = _plane_from_points(pts[inl], up)
        if not d > 0:
            return PlaneFit(candidates=n_pts, reason="not_a_floor")
    res = np.abs(pts @ n + d) / d
    inl = res < inlier_threshold
    support = int(inl.sum())
    tilt = math.degrees(math.acos(min(1.0, float(n @ up))))
    fit = PlaneFit(normal=n, distance=d, tilt_deg=tilt, support=support, candidates=n_pts,
                   residual=float(np.median(res[inl])) if support else float("nan"))
    if tilt > max_tilt_deg:
        return replace(fit, reason="not_a_floor")
    if support < min_support:
        return replace(fit, reason="too_little_support")
    if support < min_fraction * n_pts:
        return replace(fit, reason="low_inlier_fraction")
    return replace(fit, ok=True)


def ground_plane_scale(pred: np.ndarray, K: np.ndarray, camera_height: float, pitch_deg: float = 0.0,
                       mode: str = MODE_SCALE, **kwargs) -> Tuple[ScaleFit, PlaneFit]:
    """Scale from the floor: ``camera_height / fitted plane distance``.

    Args:
        pred: ``H x W`` prediction (depth; ``1 / x`` in inverse-affine mode).
        K: ``3 x 3`` intrinsics.
        camera_height: optical centre above the floor, metres (> 0).
        pitch_deg: expected camera pitch (positive = looking up).
        mode: :data:`MODE_SCALE`, or :data:`MODE_INVERSE_AFFINE`, where the plane is fitted to
            ``1 / x`` and the shift is taken as 0 (one plane fixes one number: an approximation
            for relative models, whose shift is then assumed small).
        **kwargs: passed to :func:`fit_ground_plane`.

    Returns:
        ``(ScaleFit, PlaneFit)``; the ScaleFit carries the plane's support, residual and reason.

    Raises:
        ValueError: ``camera_height`` not positive, or from :func:`fit_ground_plane`.
    """
    if not camera_height > 0:
        raise ValueError(f"camera_height must be > 0 m, got {camera_height}")
    plane = fit_ground_plane(pred, K, up=expected_up(pitch_deg), **kwargs)
    fit = ScaleFit(support=plane.support, candidates=plane.candidates, residual=plane.residual,
                   ok=plane.ok, reason=plane.reason)
    if math.isfinite(plane.distance) and plane.distance > 0:
        s = camera_height / plane.distance
        # inverse-affine: depth = 1 / (scale * x) = s / x  ->  scale = 1 / s
        fit.scale = s if mode == MODE_SCALE else 1.0 / s
    return fit, plane


# -------------------------------------------------------------------- references from points

def pose_matrix(xyz: Sequence[float], rpy: Sequence[float]) -> np.ndarray:
    """``4 x 4`` transform of a child frame (e.g. a laser scanner) in a parent frame.

    Args:
        xyz: child origin in the parent frame, metres.
        rpy: roll, pitch, yaw in radians, fixed axes X then Y then Z
            (``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``, the URDF / tf2 convention).

    Raises:
        ValueError: not three values each.
    """
    if len(xyz) != 3 or len(rpy) != 3:
        raise ValueError(f"xyz and rpy need 3 values each, got {list(xyz)}, {list(rpy)}")
    r, p, y = (float(v) for v in rpy)
    cr, sr, cp, sp = math.cos(r), math.sin(r), math.cos(p), math.sin(p)
    cy, sy = math.cos(y), math.sin(y)
    T = np.eye(4)
    T[:3, :3] = [[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                 [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                 [-sp, cp * sr, cp * cr]]
    T[:3, 3] = [float(v) for v in xyz]
    return T


def quaternion_pose(xyz: Sequence[float], quat_xyzw: Sequence[float]) -> np.ndarray:
    """``4 x 4`` transform from a translation and a unit quaternion ``(x, y, z, w)`` (tf2)."""
    x, y, z, w = (float(v) for v in quat_xyzw)
    n = x * x + y * y + z * z + w * w
    s = 2.0 / n if n > 0 else 0.0
    T = np.eye(4)
    T[:3, :3] = [[1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
                 [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
                 [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)]]
    T[:3, 3] = [float(v) for v in xyz]
    return T


#: ``scan_rpy`` of a level scanner (x forward, y left, z up) beside a level camera, i.e. its
#: axes in the optical frame (x right, y down, z forward): x -> z, y -> -x, z -> -y. (The
#: familiar ``(-pi/2, 0, -pi/2)`` is the other way round: the optical frame in the body frame.)
LEVEL_SCANNER_RPY = (0.0, -math.pi / 2, math.pi / 2)


def scan_points(ranges: Sequence[float], angle_min: float, angle_increment: float,
                range_min: float = 0.0, range_max: float = float("inf")) -> np.ndarray:
    """Points of a 2D scan (``sensor_msgs/LaserScan`` fields) in the scanner frame.

    Beam ``i`` has angle ``angle_min + i * angle_increment`` (radians, counter-clockwise from
    x, in the scanner's xy plane); ranges outside ``[range_min, range_max]`` or not finite are
    dropped (REP 117: inf / NaN mean no return).

    Returns:
        ``N x 3`` float64 (x, y, 0), metres.
    """
    r = np.asarray(ranges, dtype=np.float64)
    a = angle_min + angle_increment * np.arange(r.size)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(r) & (r >= range_min) & (r <= range_max) & (r > 0)
    r, a = r[ok], a[ok]
    return np.stack([r * np.cos(a), r * np.sin(a), np.zeros_like(r)], 1)


def points_to_sparse_depth(points: np.ndarray, K: np.ndarray, shape: Tuple[int, int],
                           transform: Optional[np.ndarray] = None) -> np.ndarray:
    """Project 3-D points into a sparse depth map of the camera.

    Args:
        points: ``N x 3`` points, metres, in the optical frame or (with ``transform``) in a
            sensor frame.
        K: ``3 x 3`` intrinsics for an image of ``shape``.
        shape: ``(H, W)``.
        transform: ``4 x 4`` pose of the sensor frame in the optical frame (:func:`pose_matrix`).

    Returns:
        ``H x W`` float32 z-depth, NaN where no point falls; of several points in a pixel the
        nearest wins (what the camera would see).
    """
    P = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if transform is not None:
        P = P @ transform[:3, :3].T + transform[:3, 3]
    h, w = int(shape[0]), int(shape[1])
    out = np.full((h, w), np.nan, dtype=np.float32)
    P = P[np.isfinite(P).all(1) & (P[:, 2] > 0)]
    if not len(P):
        return out
    u = np.round(K[0, 0] * P[:, 0] / P[:, 2] + K[0, 2]).astype(np.int64)
    v = np.round(K[1, 1] * P[:, 1] / P[:, 2] + K[1, 2]).astype(np.int64)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    u, v, z = u[inside], v[inside], P[inside, 2]
    order = np.argsort(-z)  # far first, so the nearest point is written last
    out[v[order], u[order]] = z[order]
    return out


def check_reference(ref: Optional[np.ndarray], shape: Tuple[int, int]) -> Tuple[str, str]:
    """Why a sparse reference map cannot be used for an image of ``shape`` (``("", "")`` if it
    can): ``no_reference``, ``wrong_size``, ``non_finite`` (values but none finite > 0) or
    ``empty_reference`` (no value at all)."""
    if ref is None:
        return "no_reference", "no reference depth for this frame"
    if tuple(ref.shape) != tuple(shape):
        return "wrong_size", f"reference is {ref.shape[::-1]} (W x H), image is {tuple(shape)[::-1]}"
    with np.errstate(invalid="ignore"):
        good = np.isfinite(ref) & (ref > 0)
    if not good.any():
        if (~np.isnan(ref) & (ref != 0)).any():
            return "non_finite", "reference holds only inf / negative values"
        return "empty_reference", "reference has no valid depth (all NaN / 0)"
    return "", ""


# ------------------------------------------------------------------------- temporal filtering

@dataclass
class ScaleState:
    """The scale in use for a frame.

    Attributes:
        scale, shift: what is applied (see :class:`ScaleFit`).
        support, residual: of the fit the scale comes from.
        age: seconds since that fit (``inf`` when there is none).
        status: ``fitted`` (this frame), ``held`` (an earlier fit younger than ``max_age``),
            ``fixed``, ``none`` (source none: the network's output as is), or ``fallback`` (no
            usable scale: see :class:`ScaleConfig` ``fallback``).
        reason: why this frame's fit was not applied (empty when it was): a
            :class:`ScaleFit` reason, or ``scale_jump`` (a new scale waiting for
            confirmation).
        detail: one line on ``reason`` (numbers).
        pending: agreeing fits in a row that wait for confirmation of a new scale (0: none).
        rejections: consecutive frames whose fit was not applied (0 after an applied fit).
    """

    scale: float = 1.0
    shift: float = 0.0
    support: int = 0
    residual: float = float("nan")
    age: float = float("inf")
    status: str = "fallback"
    reason: str = ""
    detail: str = ""
    pending: int = 0
    rejections: int = 0

    def values(self) -> List[Tuple[str, str]]:
        """``(key, text)`` pairs of :data:`STATE_FIELDS` (the ``depth/scale`` message's and the
        ``/diagnostics`` values; numbers as ``repr``-exact text)."""
        return [(k, str(getattr(self, k))) for k in STATE_FIELDS]


#: Status of a :class:`ScaleState`.
STATUSES = ("fallback", "fitted", "held", "fixed", "none")
#: Fields of a :class:`ScaleState` in ``depth/scale`` and on ``/diagnostics`` (scale.* keys).
STATE_FIELDS = ("status", "scale", "shift", "support", "residual", "age", "reason", "detail",
                "pending", "rejections")


class ScaleEstimator:
    """Temporal filter over per-frame :class:`ScaleFit` results.

    A good fit within ``jump_ratio`` of the running value is blended into it (exponential
    moving average of log scale for :data:`MODE_SCALE`, of ``(scale, shift)`` for
    inverse-affine). A good fit further away, in either direction - or any fit while there is
    no running value younger than ``max_age`` - is a *new* scale: it is applied only once
    ``jump_confirm`` good fits in a row agree with each other (within ``jump_ratio`` of the
    first of them); the filter then restarts from the latest (a new room, a model switch).
    Until then the previous value is held (status ``held``, reason ``scale_jump``), so one
    outlier reference frame does not move the published depth. Rejected fits neither confirm
    nor break a run (references may come slower than images); a run older than ``max_age`` is
    dropped. A rejected fit keeps the last good value for ``max_age`` seconds (status
    ``held``); after that, and before the first good scale, the status is ``fallback``.

    Two inverse-affine fits are compared by the inverse depth they give at the new fit's
    median prediction (:attr:`ScaleFit.x_ref`), since scale and shift trade off.

    Args:
        mode: :data:`MODE_SCALE` or :data:`MODE_INVERSE_AFFINE`.
        smoothing: weight of the previous value, in ``[0, 1)`` (0 = use each fit as is).
        jump_ratio: ratio (> 1) of ``new / previous`` (or its inverse) beyond which a fit is a
            new scale.
        max_age: seconds a good scale is kept without a new one.
        jump_confirm: agreeing fits in a row needed to take a new scale (>= 1; 1 = at once).

    Attributes:
        rejected: ``Counter`` of rejection reasons (``scale_jump`` counts unconfirmed fits);
        resets: restarts after a confirmed jump.

    Raises:
        ValueError: parameters out of range.
    """

    def __init__(self, mode: str = MODE_SCALE, smoothing: float = 0.5, jump_ratio: float = 1.5,
                 max_age: float = 2.0, jump_confirm: int = 3):
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        if not jump_ratio > 1:
            raise ValueError(f"jump_ratio must be > 1, got {jump_ratio}")
        if not max_age >= 0:
            raise ValueError(f"max_age must be >= 0 s, got {max_age}")
        if isinstance(jump_confirm, bool) or int(jump_confirm) != jump_confirm or jump_confirm < 1:
            raise ValueError(f"jump_confirm must be an integer >= 1, got {jump_confirm}")
        self.mode, self.smoothing = mode, float(smoothing)
        self.jump_ratio, self.max_age = float(jump_ratio), float(max_age)
        self.jump_confirm = int(jump_confirm)
        self.rejected: Counter = Counter()
        self.resets = 0
        self._rejections = 0
        self.reset()

    def reset(self) -> None:
        """Forget the running value and any unconfirmed new scale (keeps the counters)."""
        self._value: Optional[ScaleFit] = None
        self._t: Optional[float] = None
        self._pending: List[ScaleFit] = []
        self._pending_t: Optional[float] = None

    def _log_ratio(self, ref: ScaleFit, fit: ScaleFit) -> float:
        """``|log(fit / ref)|`` of the depth the two give (inf when not comparable)."""
        if self.mode == MODE_SCALE or not math.isfinite(fit.x_ref):
            a, b = ref.scale, fit.scale
        else:  # inverse depth of both at the new fit's median prediction
            a = ref.scale * fit.x_ref + ref.shift
            b = fit.scale * fit.x_ref + fit.shift
        return abs(math.log(b / a)) if a > 0 and b > 0 else math.inf

    def _agrees(self, ref: ScaleFit, fit: ScaleFit) -> bool:
        return self._log_ratio(ref, fit) <= math.log(self.jump_ratio)

    def update(self, fit: ScaleFit, t: float) -> ScaleState:
        """Fold in this frame's fit at time ``t`` (seconds, e.g. the image stamp)."""
        t = float(t)
        if self._t is not None and t < self._t or (
                self._pending_t is not None and t < self._pending_t):
            self.reset()  # time went back (a bag restarted)
        if not fit.ok:
            self.rejected[fit.reason or "rejected"] += 1
            self._rejections += 1
            return self.current(t, fit.reason, fit.detail)
        prev = self._value
        if prev is not None and t - self._t > self.max_age:
            prev = None  # expired: nothing to blend with or to hold
        if prev is not None and self._agrees(prev, fit):
            a = self.smoothing
            if self.mode == MODE_SCALE:
                s = math.exp(a * math.log(prev.scale) + (1 - a) * math.log(fit.scale))
            else:
                s = a * prev.scale + (1 - a) * fit.scale
            return self._apply(replace(fit, scale=s, shift=a * prev.shift + (1 - a) * fit.shift), t)
        # a new scale: it needs jump_confirm agreeing fits in a row
        if (self._pending and t - self._pending_t <= self.max_age
                and self._agrees(self._pending[0], fit)):
            self._pending.append(fit)
        else:
            self._pending, self._pending_t = [fit], t
        if len(self._pending) >= self.jump_confirm:
            self.resets += prev is not None
            return self._apply(replace(fit), t)
        self.rejected["scale_jump"] += 1
        self._rejections += 1
        what = (f"{fit.scale / prev.scale:.3g}x the scale in use" if prev is not None
                and self.mode == MODE_SCALE else f"scale {fit.scale:.4g}, shift {fit.shift:.3g}")
        return self.current(t, "scale_jump", f"new scale ({what}) seen in "
                            f"{len(self._pending)} of {self.jump_confirm} fits in a row")

    def _apply(self, new: ScaleFit, t: float) -> ScaleState:
        self._value, self._t = new, t
        self._pending, self._pending_t, self._rejections = [], None, 0
        return ScaleState(new.scale, new.shift, new.support, new.residual, 0.0, "fitted")

    def current(self, t: float, reason: str = "", detail: str = "") -> ScaleState:
        """The scale to use at time ``t`` without a new fit (``held`` or ``fallback``)."""
        extra = dict(reason=reason, detail=detail, pending=len(self._pending),
                     rejections=self._rejections)
        if self._value is None or self._t is None:
            return ScaleState(**extra)
        age = max(0.0, float(t) - self._t)
        v = self._value
        if age > self.max_age:
            return ScaleState(support=v.support, residual=v.residual, age=age, **extra)
        return ScaleState(v.scale, v.shift, v.support, v.residual, age, "held", **extra)


def scale_health(state: Optional[ScaleState], source: str) -> Tuple[int, str]:
    """Level (0 OK, 1 WARN, 2 ERROR: ``DiagnosticStatus``'s numbers) and message of the scale.

    OK: no scaling asked for (``none``), a fixed scale, or a scale fitted this frame. WARN: a
    held scale (the reason says why this frame's fit was not used: no or stale reference, a
    rejected fit, an unconfirmed jump), the fallback, or no frame scaled yet. ERROR: the
    fallback after :data:`ERROR_AFTER_REJECTIONS` or more frames in a row without a usable fit.

    Args:
        state: the last frame's :class:`ScaleState` (None before the first frame).
        source: the ``scale_source`` in use.
    """
    if source in ("none", "fixed"):
        return 0, ""
    if state is None:
        return 1, f"scale ({source}): no frame scaled yet"
    why = f" ({state.reason}: {state.detail})" if state.detail else (
        f" ({state.reason})" if state.reason else "")
    if state.status in ("fitted", "fixed", "none"):
        return 0, ""
    if state.status == "held":
        return 1, (f"scale ({source}) held from {state.age:.1f} s ago{why}")
    level = 2 if state.rejections >= ERROR_AFTER_REJECTIONS else 1
    age = "never" if math.isinf(state.age) else f"{state.age:.1f} s ago"
    return level, (f"scale ({source}): no usable scale (last good: {age}), fallback; "
                   f"{state.rejections} frame(s) in a row without one{why}")


# ----------------------------------------------------------------------------- the scaler

@dataclass
class ScaleConfig:
    """Settings of a :class:`MetricScaler` (the node's ``scale_*`` parameters).

    Attributes:
        source: one of :data:`SOURCES`.
        fixed_scale: ``fixed``: the scale (> 0).
        camera_height: ``ground_plane``: optical centre above the floor, m (> 0).
        expected_pitch_deg: ``ground_plane``: camera pitch, degrees in ``[-90, 90]``, positive =
            looking up.
        max_tilt_deg: ``ground_plane``: largest angle of the floor normal from the expected up,
            degrees in ``(0, 90]``.
        ground_region: ``ground_plane``: fraction of the rows, from the bottom, searched.
        ground_min_fraction: ``ground_plane``: smallest share of the region on the plane.
        min_support: references that must agree (``sparse_depth``, ``scan``); floor points
            needed (``ground_plane``: ``4 * min_support``, every 4th pixel is used).
        inlier_threshold: relative residual of an agreeing reference.
        ground_inlier_threshold: point-to-plane distance of a floor point, as a fraction of the
            camera height.
        min_inlier_fraction: smallest share of the references that must agree.
        min_inverse_spread: relative models (scale + shift): smallest spread of the agreeing
            references' inverse depth (:func:`fit_scale`).
        smoothing, jump_ratio, max_age, jump_confirm: :class:`ScaleEstimator`.
        fallback: ``skip`` (no depth for the frame; the default) or ``unscaled`` (publish the
            network's own depth; relative models have none and skip).

    Raises:
        ValueError: a value out of range, or a combination that cannot run (``ground_plane``
            without ``camera_height``, ``fixed`` without a positive ``fixed_scale``); the
            message names the parameter.
    """

    source: str = "none"
    fixed_scale: float = 1.0
    camera_height: float = 0.0
    expected_pitch_deg: float = 0.0
    max_tilt_deg: float = 15.0
    ground_region: float = 0.4
    ground_min_fraction: float = 0.15
    min_support: int = 16
    inlier_threshold: float = 0.3
    ground_inlier_threshold: float = 0.05
    min_inlier_fraction: float = 0.3
    min_inverse_spread: float = 0.25
    smoothing: float = 0.5
    jump_ratio: float = 1.5
    max_age: float = 2.0
    jump_confirm: int = 3
    fallback: str = "skip"

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"scale_source {self.source!r} not in {SOURCES}")
        if self.fallback not in FALLBACKS:
            raise ValueError(f"scale_fallback {self.fallback!r} not in {FALLBACKS}")
        if self.source == "fixed" and not self.fixed_scale > 0:
            raise ValueError(f"fixed_scale must be > 0, got {self.fixed_scale}")
        if self.source == "ground_plane" and not self.camera_height > 0:
            raise ValueError(f"scale_source ground_plane needs camera_height > 0 m, got "
                             f"{self.camera_height}")
        if not -90 <= self.expected_pitch_deg <= 90:
            raise ValueError(f"expected_pitch must be in [-90, 90] deg, got "
                             f"{self.expected_pitch_deg}")
        if not 0 < self.max_tilt_deg <= 90:
            raise ValueError(f"max_tilt must be in (0, 90] deg, got {self.max_tilt_deg}")
        if not 0 < self.ground_region <= 1:
            raise ValueError(f"ground_region must be in (0, 1], got {self.ground_region}")
        if not (self.inlier_threshold > 0 and self.ground_inlier_threshold > 0):
            raise ValueError(f"scale_inlier_threshold and ground_inlier_threshold must be > 0, "
                             f"got {self.inlier_threshold}, {self.ground_inlier_threshold}")
        if int(self.min_support) < 1:
            raise ValueError(f"scale_min_support must be >= 1, got {self.min_support}")
        if not 0 <= self.min_inlier_fraction <= 1 or not 0 <= self.ground_min_fraction <= 1:
            raise ValueError("scale_min_inlier_fraction and ground_min_fraction must be in [0, 1]")
        if not self.min_inverse_spread >= 0:
            raise ValueError(f"scale_min_inverse_spread must be >= 0, got "
                             f"{self.min_inverse_spread}")
        try:  # validates smoothing, jump ratio, max age and confirmation with their own messages
            ScaleEstimator(MODE_SCALE, self.smoothing, self.jump_ratio, self.max_age,
                           self.jump_confirm)
        except ValueError as exc:
            raise ValueError(f"scale_{exc}") from None


@dataclass
class Reference:
    """One frame's metric reference as its source delivered it.

    Attributes:
        depth: ``H x W`` float32 sparse metric depth registered to the image (NaN / 0 empty),
            or None.
        problem, detail: reason key and text when the caller already knows it is unusable
            (``stale_reference``, ``no_reference``, ``bad_message``, ``wrong_frame``,
            ``empty_frame``, ``no_transform`` ...).
    """

    depth: Optional[np.ndarray] = None
    problem: str = ""
    detail: str = ""


@dataclass
class ScaledDepth:
    """Output of :class:`MetricScaler`: ``depth`` (``H x W`` float32 m, NaN invalid and outside
    the valid range, or None when the frame has no usable scale and the fallback is ``skip``),
    the :class:`ScaleState`, this frame's :class:`ScaleFit` (None for ``none`` / ``fixed``) and
    ``warnings`` as ``(reason, text)`` pairs."""

    depth: Optional[np.ndarray]
    state: ScaleState
    fit: Optional[ScaleFit] = None
    warnings: List[Tuple[str, str]] = field(default_factory=list)


def scaler_input(prediction) -> Optional[np.ndarray]:
    """What a :class:`MetricScaler` scales for one network output: ``1 / x`` of a relative
    model's ``relative`` output (:data:`RELATIVE_INVERSE`), else the network's depth *before*
    its own range mask (``unmasked``, when it has one), else ``depth``. The range mask then
    applies after the scale, in metres (:meth:`MetricScaler.__call__`): masking before it would
    cut the scene at the network's range, not the robot's.

    Args:
        prediction: object with ``depth`` and optionally ``unmasked`` and ``relative`` (``H x W``
            float32 arrays or None), e.g. ``inference.estimator.Prediction``.

    Returns:
        ``H x W`` float32 array, or None when the prediction has no depth.
    """
    relative = getattr(prediction, "relative", None)
    if relative is not None:
        return positive_reciprocal(relative)
    unmasked = getattr(prediction, "unmasked", None)
    return unmasked if unmasked is not None else prediction.depth


def mask_range(depth: np.ndarray, valid_range: Tuple[float, float], copy: bool = True
               ) -> np.ndarray:
    """``depth`` (float32) with NaN outside ``[min, max]`` metres: a new array, or ``depth``
    itself when ``copy`` is False."""
    lo, hi = valid_range
    out = np.array(depth, dtype=np.float32, copy=True) if copy else depth
    with np.errstate(invalid="ignore"):
        out[~((out >= lo) & (out <= hi))] = np.nan
    return out


class MetricScaler:
    """Metric scale for each frame from one source (function: :func:`fit_scale` /
    :func:`ground_plane_scale`; state: :class:`ScaleEstimator`).

    Args:
        config: :class:`ScaleConfig`.

    Call it with each frame's prediction (:func:`scaler_input`); not thread-safe (the
    pipeline's worker thread). The node's pipeline and ``evaluate --scale-source`` both go
    through :meth:`__call__`, so what is scored is what is published.
    """

    def __init__(self, config: Optional[ScaleConfig] = None):
        self.config = config or ScaleConfig()
        c = self.config
        self._filters: Dict[str, ScaleEstimator] = {}
        self._make = lambda mode: ScaleEstimator(mode, c.smoothing, c.jump_ratio, c.max_age,
                                                 c.jump_confirm)

    def filter(self, mode: str) -> ScaleEstimator:
        """The temporal filter of ``mode`` (one per mode: a model switch does not mix them)."""
        if mode not in self._filters:
            self._filters[mode] = self._make(mode)
        return self._filters[mode]

    @property
    def rejected(self) -> Counter:
        """Rejection reasons over all frames."""
        return sum((f.rejected for f in self._filters.values()), Counter())

    def _fit_reference(self, pred, K, reference, mode) -> ScaleFit:
        c = self.config
        return fit_scale(pred, reference, mode, min_support=c.min_support,
                         inlier_threshold=c.inlier_threshold,
                         min_inlier_fraction=c.min_inlier_fraction,
                         min_inverse_spread=c.min_inverse_spread)

    def _fit_ground(self, pred, K, reference, mode) -> ScaleFit:
        c = self.config
        fit, _ = ground_plane_scale(pred, K, c.camera_height, c.expected_pitch_deg, mode,
                                    max_tilt_deg=c.max_tilt_deg, region=c.ground_region,
                                    inlier_threshold=c.ground_inlier_threshold,
                                    min_fraction=c.ground_min_fraction,
                                    min_support=4 * c.min_support)
        return fit

    #: Per-frame fit of each fitted source.
    _FITTERS = {"sparse_depth": _fit_reference, "scan": _fit_reference, "ground_plane": _fit_ground}

    def __call__(self, pred: np.ndarray, K: np.ndarray, t: float, output_kind: Optional[str] = None,
                 reference: Optional[Reference] = None,
                 valid_range: Tuple[float, float] = (0.0, float("inf"))) -> ScaledDepth:
        """Scale one frame, then mask it to ``valid_range`` in metres.

        Args:
            pred: ``H x W`` float32 network depth before its range mask (m; ``1 / x`` for
                :data:`RELATIVE_INVERSE`): :func:`scaler_input`.
            K: ``3 x 3`` intrinsics of ``pred``.
            t: frame time, seconds (the image stamp).
            output_kind: the model's ``ModelSpec.output_kind`` (selects the fit mode).
            reference: this frame's :class:`Reference` (``sparse_depth``, ``scan``); a missing
                or unusable one is counted as a rejected fit under its reason.
            valid_range: ``(min, max)`` metres (the node's ``min_depth`` / ``max_depth``);
                depth outside becomes NaN, after the scale.

        Returns:
            :class:`ScaledDepth`.
        """
        c = self.config
        mode = fit_mode(output_kind)
        if c.source == "none":
            return ScaledDepth(mask_range(pred, valid_range), ScaleState(status="none"))
        warnings: List[Tuple[str, str]] = []
        fit = None
        if c.source == "fixed":
            # inverse-affine: depth = fixed_scale / x, i.e. scale = 1 / fixed_scale in x
            state = ScaleState(scale=c.fixed_scale if mode == MODE_SCALE else 1.0 / c.fixed_scale,
                               status="fixed")
        else:
            ref = reference or Reference()
            reason, detail = ref.problem, ref.detail
            if c.source in REFERENCE_SOURCES and not reason:
                reason, detail = check_reference(ref.depth, pred.shape)
            if reason:
                fit = ScaleFit(reason=reason, detail=detail)
            else:
                fit = self._FITTERS[c.source](self, pred, K, ref.depth, mode)
                summary = f"support {fit.support} of {fit.candidates}, residual {fit.residual:.3f}"
                fit = replace(fit, detail=f"{fit.detail}; {summary}" if fit.detail else summary)
            filt = self.filter(mode)
            state = filt.update(fit, t)
            if state.status != "fitted":
                kept = (f"keeping scale {state.scale:.3f} from {state.age:.1f} s ago"
                        if state.status == "held" else "no recent scale")
                warnings.append((f"scale_{state.reason}", f"{c.source}: scale not updated "
                                 f"({state.reason}: {state.detail}); {kept} "
                                 f"[{filt.rejected[state.reason]} so far]"))
        if state.status == "fallback":
            if c.fallback == "skip" or mode != MODE_SCALE:
                warnings.append(("no_scale", f"{c.source}: no good scale in the last {c.max_age} s "
                                 "and fallback 'skip' (or a relative model): frame skipped"))
                return ScaledDepth(None, state, fit, warnings)
            # the network's own depth, explicitly asked for (scale_fallback unscaled)
            return ScaledDepth(mask_range(pred, valid_range), state, fit, warnings)
        depth = apply_scale(pred, state.scale, state.shift, mode)
        return ScaledDepth(mask_range(depth, valid_range, copy=False), state, fit, warnings)
