"""Relative (affine-invariant) inverse depth -> metres, given a reference (ROS-free).

Relative models (MiDaS / DPT, Depth Anything V2 relative) predict inverse depth up to an unknown
scale and shift. Evaluating them needs a scale source; the standard protocol (Ranftl et al.,
MiDaS, TPAMI 2022) fits scale and shift per frame by least squares in inverse-depth space against
the ground truth, which is what :func:`align_inverse_depth` does. That uses the ground truth, so
its metrics say how good the *shape* is, not how well the model knows metres.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from .scale import MODE_INVERSE_AFFINE, least_squares, positive_reciprocal


def align_inverse_depth(relative: np.ndarray, reference: np.ndarray, min_depth: float,
                        max_depth: float) -> Tuple[np.ndarray, float, float]:
    """Least-squares ``s, t`` with ``s * relative + t ~= 1 / reference`` over valid pixels (the
    closed form the scale estimator refits with, :mod:`mono_depth_ros.core.scale`).

    Args:
        relative: ``H x W`` float32 relative inverse depth (NaN invalid).
        reference: ``H x W`` float32 metres (NaN or 0 invalid), e.g. ground truth.
        min_depth, max_depth: reference pixels outside this range are ignored; the aligned
            depth is clipped to it.

    Returns:
        ``(depth, s, t)``: ``H x W`` float32 metres (NaN where the aligned inverse depth is not
        positive or no fit was possible: fewer than 2 valid pixels, or a constant prediction)
        and the fitted scale and shift.

    Raises:
        ValueError: shapes differ.
    """
    if relative.shape != reference.shape:
        raise ValueError(f"shapes differ: {relative.shape} vs {reference.shape}")
    rel = relative.astype(np.float64)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(rel) & np.isfinite(reference) & (reference >= min_depth) \
            & (reference <= max_depth) & (reference > 0)
    fit = (least_squares(rel[valid], reference[valid].astype(np.float64), MODE_INVERSE_AFFINE)
           if valid.sum() >= 2 else None)
    if fit is None:
        return np.full(relative.shape, np.nan, np.float32), float("nan"), float("nan")
    s, t = fit
    depth = np.clip(positive_reciprocal(s * rel + t), min_depth, max_depth)
    return depth, float(s), float(t)
