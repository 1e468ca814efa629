"""Colour maps and evaluation panels (ROS-free)."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np


def depth_range(depth: np.ndarray, vmin: float = 0.0, vmax: float = 0.0) -> Tuple[float, float]:
    """Colour range: the fixed ``(vmin, vmax)`` when ``vmax > vmin``, else the 2nd-98th
    percentile of the valid pixels (automatic range)."""
    if vmax > vmin:
        return float(vmin), float(vmax)
    valid = depth[np.isfinite(depth)]
    if valid.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(valid, (2, 98))
    return float(lo), float(max(hi, lo + 1e-3))


def colorize_depth(depth: np.ndarray, vmin: float = 0.0, vmax: float = 0.0,
                   colormap: int = cv2.COLORMAP_TURBO) -> np.ndarray:
    """``H x W`` metres (NaN invalid) -> ``H x W x 3`` uint8 **BGR** (near = red with TURBO
    reversed so obstacles stand out); invalid pixels black.

    Args:
        vmin, vmax: fixed range in metres, or both 0 for an automatic range.
    """
    lo, hi = depth_range(depth, vmin, vmax)
    valid = np.isfinite(depth)
    norm = np.zeros(depth.shape, dtype=np.uint8)
    with np.errstate(invalid="ignore"):
        scaled = (hi - np.clip(depth, lo, hi)) * (255.0 / (hi - lo))
    norm[valid] = scaled[valid].astype(np.uint8)
    out = cv2.applyColorMap(norm, colormap)
    out[~valid] = 0
    return out


def colorize_labels(labels: np.ndarray, palette: Sequence[Sequence[int]]) -> np.ndarray:
    """``H x W`` uint8 class ids -> ``H x W x 3`` uint8 BGR using an RGB ``palette``."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    pal = np.asarray(palette, dtype=np.uint8)
    lut[: len(pal)] = pal[:, ::-1]
    return lut[labels]


def error_panel(rgb: np.ndarray, gt: np.ndarray, pred: np.ndarray, title: str = "",
                vmax: Optional[float] = None) -> np.ndarray:
    """RGB | ground truth | prediction | absolute error, as one ``H x 4W x 3`` uint8 RGB image.

    Depths share one range (0 .. ``vmax`` or the GT's 98th percentile); the error map uses
    0 .. half that range. Invalid pixels are black.
    """
    hi = vmax or depth_range(gt)[1]
    gt_c = colorize_depth(gt, 0.0, hi)
    pr_c = colorize_depth(pred, 0.0, hi)
    err = np.abs(pred - gt)
    err_c = cv2.applyColorMap(
        np.clip(np.nan_to_num(err, nan=0.0) / (0.5 * hi) * 255, 0, 255).astype(np.uint8),
        cv2.COLORMAP_INFERNO)
    err_c[~np.isfinite(err)] = 0
    tiles = [rgb] + [cv2.cvtColor(t, cv2.COLOR_BGR2RGB) for t in (gt_c, pr_c, err_c)]
    panel = np.concatenate(tiles, axis=1)
    labels = ["RGB", "ground truth", "prediction", "|error|"]
    w = rgb.shape[1]
    for i, text in enumerate(labels):
        cv2.putText(panel, text, (i * w + 8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
    if title:
        cv2.putText(panel, title, (8, panel.shape[0] - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (255, 255, 255), 2)
    return panel
