"""Colour maps and evaluation panels (ROS-free)."""

from __future__ import annotations

from dataclasses import dataclass
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


# --------------------------------------------------------------------------------------------
# Rendered views of a point cloud (bird's-eye and perspective), numpy + OpenCV only.
#
# Input clouds are in the REP 103 *optical* frame of the camera: x right, y down, z forward.
# "Height" is -y: up in the camera's own frame (level with the optical centre at 0), which is
# the robot's up only as far as the camera is level.
# --------------------------------------------------------------------------------------------

_BG = (24, 24, 28)
_GRID = (70, 70, 78)
_GRID_MAJOR = (110, 110, 120)
_TEXT = (230, 230, 230)
_CAMERA = (255, 255, 255)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def cloud_arrays(data, height: int, width: int, point_step: int, row_step: int,
                 offsets: dict) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Unpack the bytes of an organized little-endian ``PointCloud2`` (float32 ``x``, ``y``,
    ``z`` and optionally a packed ``rgb`` field, as the node writes it).

    Args:
        data: the message's ``data`` (bytes, memoryview or uint8 array).
        offsets: ``{field name: byte offset}``; ``x``, ``y`` and ``z`` are required.

    Returns:
        ``(xyz, rgb)``: ``height x width x 3`` float32 and ``height x width x 3`` uint8 RGB, or
        ``None`` when the cloud has no ``rgb`` field.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    raw = raw[: height * row_step].reshape(height, row_step)[:, : width * point_step]
    pts = raw.reshape(height, width, point_step)

    def field(name: str, dtype: str) -> np.ndarray:
        o = offsets[name]
        return np.ascontiguousarray(pts[..., o:o + 4]).view(dtype)[..., 0]

    xyz = np.stack([field(n, "<f4") for n in ("x", "y", "z")], axis=-1)
    rgb = None
    if "rgb" in offsets:
        packed = field("rgb", "<u4")
        rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255],
                       axis=-1).astype(np.uint8)
    return xyz, rgb


def _nice_step(span: float, target_lines: int = 8) -> float:
    """A grid step of 1, 2 or 5 x 10^k metres giving about ``target_lines`` lines over ``span``."""
    raw = max(span, 1e-6) / target_lines
    k = 10.0 ** np.floor(np.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        if raw <= m * k:
            return float(m * k)
    return float(10 * k)


def _fmt_m(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".") if abs(v - round(v)) > 1e-6 else f"{int(round(v))}"


def _valid_points(xyz: np.ndarray, colors: Optional[np.ndarray]
                  ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    pts = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
    ok = np.isfinite(pts).all(axis=1)
    cols = None if colors is None else np.asarray(colors, dtype=np.uint8).reshape(-1, 3)[ok]
    return pts[ok], cols


def height_range(xyz: np.ndarray) -> Tuple[float, float]:
    """Colour range of the height (-y, m): the 2nd-98th percentile of the valid points."""
    pts, _ = _valid_points(xyz, None)
    if len(pts) == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(-pts[:, 1], (2, 98))
    return float(lo), float(max(hi, lo + 0.1))


def _height_colors(h: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Heights -> RGB uint8 with TURBO (low blue, high red)."""
    norm = np.clip((h - lo) / (hi - lo), 0.0, 1.0)
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_TURBO)[:, 0, ::-1]
    return lut[(norm * 255).astype(np.uint8)]


def _check_color_by(color_by: str, colors: Optional[np.ndarray]) -> None:
    if color_by not in ("height", "image"):
        raise ValueError(f"color_by must be 'height' or 'image', got {color_by!r}")
    if color_by == "image" and colors is None:
        raise ValueError("color_by='image' needs the colours")


def _point_colors(pts: np.ndarray, cols: Optional[np.ndarray], color_by: str,
                  hrange: Optional[Tuple[float, float]]) -> np.ndarray:
    if color_by == "image":
        if cols is None:
            raise ValueError("color_by='image' needs the colours")
        return cols
    if color_by != "height":
        raise ValueError(f"color_by must be 'height' or 'image', got {color_by!r}")
    lo, hi = hrange if hrange is not None else (0.0, 1.0)
    return _height_colors(-pts[:, 1], lo, hi)


def _splat(canvas: np.ndarray, u: np.ndarray, v: np.ndarray, key: np.ndarray,
           cols: np.ndarray, radius: np.ndarray) -> None:
    """Draw points as squares of half-size ``radius`` px; where several land on one pixel the
    smallest ``key`` wins (a z-buffer)."""
    h, w = canvas.shape[:2]
    us, vs, ks, idx = [], [], [], []
    for r in np.unique(radius):
        sel = np.flatnonzero(radius == r)
        for dv in range(-int(r), int(r) + 1):
            for du in range(-int(r), int(r) + 1):
                us.append(u[sel] + du)
                vs.append(v[sel] + dv)
                ks.append(key[sel])
                idx.append(sel)
    if not us:
        return
    uu, vv, kk, ii = (np.concatenate(a) for a in (us, vs, ks, idx))
    inside = (uu >= 0) & (uu < w) & (vv >= 0) & (vv < h)
    uu, vv, kk, ii = uu[inside], vv[inside], kk[inside], ii[inside]
    lin = vv.astype(np.int64) * w + uu
    order = np.lexsort((kk, lin))           # by pixel, then by key
    lin_sorted = lin[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = lin_sorted[1:] != lin_sorted[:-1]
    win = order[first]
    canvas[vv[win], uu[win]] = cols[ii[win]]


def _colorbar(canvas: np.ndarray, x0: int, y0: int, y1: int, lo: float, hi: float,
              label: str) -> None:
    """A vertical height colour bar (high at the top) with metre labels."""
    n = max(y1 - y0, 2)
    vals = np.linspace(hi, lo, n)
    bar = _height_colors(vals, lo, hi)
    canvas[y0:y0 + n, x0:x0 + 14] = bar[:, None, :]
    step = _nice_step(hi - lo, 5)
    t = np.ceil(lo / step) * step
    while t <= hi + 1e-9:
        y = int(round(y0 + (hi - t) / (hi - lo) * (n - 1)))
        cv2.line(canvas, (x0 + 14, y), (x0 + 18, y), _TEXT, 1)
        cv2.putText(canvas, f"{_fmt_m(t)} m", (x0 + 21, y + 4), _FONT, 0.4, _TEXT, 1, cv2.LINE_AA)
        t += step
    cv2.putText(canvas, label, (x0 - 4, y0 - 10), _FONT, 0.42, _TEXT, 1, cv2.LINE_AA)


def _fov_slopes(pts: np.ndarray) -> Tuple[float, float, float, float]:
    """The cloud's field of view as the extreme x/z and y/z slopes (robust percentiles)."""
    z = np.maximum(pts[:, 2], 1e-6)
    sx, sy = pts[:, 0] / z, pts[:, 1] / z
    ax0, ax1 = np.percentile(sx, (0.2, 99.8))
    ay0, ay1 = np.percentile(sy, (0.2, 99.8))
    return float(ax0), float(ax1), float(ay0), float(ay1)


def birdseye_extent(xyz: np.ndarray, margin: float = 0.3) -> Tuple[float, float, float, float]:
    """``(x_min, x_max, z_min, z_max)`` in metres that holds the camera (at 0, 0) and the
    1st-99th percentile of the valid points, plus ``margin``."""
    pts, _ = _valid_points(xyz, None)
    if len(pts) == 0:
        return -1.0, 1.0, 0.0, 2.0
    x0, x1 = np.percentile(pts[:, 0], (1, 99))
    z1 = float(np.percentile(pts[:, 2], 99))
    x0, x1 = min(float(x0), -0.5) - margin, max(float(x1), 0.5) + margin
    return x0, x1, -margin, max(z1, 0.5) + margin


@dataclass(frozen=True)
class BirdseyeLayout:
    """Where :func:`render_birdseye` puts things: the plot's metre extent, its scale and the
    pixel offset of its top-left corner in the returned image."""

    x0: float
    x1: float
    z0: float
    z1: float
    px_per_m: float
    left: int
    top: int

    @property
    def plot_size(self) -> Tuple[int, int]:
        """``(width, height)`` of the plot area in px."""
        return (int(round((self.x1 - self.x0) * self.px_per_m)),
                int(round((self.z1 - self.z0) * self.px_per_m)))

    def to_px(self, x, z) -> Tuple[np.ndarray, np.ndarray]:
        """Image coordinates ``(u, v)`` (float px) of the ground position ``(x, z)`` m."""
        return (self.left + (np.asarray(x) - self.x0) * self.px_per_m,
                self.top + (self.z1 - np.asarray(z)) * self.px_per_m)


def birdseye_layout(xyz: np.ndarray, extent: Optional[Tuple[float, float, float, float]] = None,
                    px_per_m: Optional[float] = None, max_side: int = 720, title: str = ""
                    ) -> BirdseyeLayout:
    """The layout :func:`render_birdseye` uses for these arguments."""
    x0, x1, z0, z1 = extent if extent is not None else birdseye_extent(xyz)
    if px_per_m is None:
        px_per_m = max_side / max(x1 - x0, z1 - z0)
    return BirdseyeLayout(float(x0), float(x1), float(z0), float(z1), float(px_per_m),
                          left=56, top=64 if title else 40)


def render_birdseye(xyz: np.ndarray, colors: Optional[np.ndarray] = None, color_by: str = "height",
                    extent: Optional[Tuple[float, float, float, float]] = None,
                    px_per_m: Optional[float] = None, max_side: int = 720,
                    height_lims: Optional[Tuple[float, float]] = None,
                    title: str = "") -> np.ndarray:
    """Top-down view of a cloud: x (right) across, z (forward) up the image, looking down -y.

    Args:
        xyz: ``H x W x 3`` (or ``N x 3``) float32 points in the optical frame, NaN invalid.
        colors: matching uint8 RGB colours (needed for ``color_by="image"``).
        color_by: ``"height"`` (-y, with a colour bar) or ``"image"``.
        extent: ``(x_min, x_max, z_min, z_max)`` metres shown (default :func:`birdseye_extent`).
        px_per_m: scale (default: the longer side of the plot gets ``max_side`` px).
        height_lims: fixed colour range for ``"height"`` (default :func:`height_range`).

    Returns:
        ``h x w x 3`` uint8 RGB: the plot with a metre grid and labels, the camera as a white
        triangle at (0, 0) with its field of view, and a colour bar for height. Where several
        points fall on one pixel the highest is shown (what a view from above sees). Points
        outside ``extent`` are left out. :func:`birdseye_layout` says where metres land.
    """
    _check_color_by(color_by, colors)
    pts, cols = _valid_points(xyz, colors)
    lay = birdseye_layout(xyz, extent, px_per_m, max_side, title)
    x0, x1, z0, z1, px_per_m = lay.x0, lay.x1, lay.z0, lay.z1, lay.px_per_m
    pw, ph = lay.plot_size
    left, top, bottom = lay.left, lay.top, 44
    right = 96 if color_by == "height" else 16
    canvas = np.empty((top + ph + bottom, left + pw + right, 3), dtype=np.uint8)
    canvas[:] = _BG
    to_px = lay.to_px

    # metre grid with labels
    step = _nice_step(max(x1 - x0, z1 - z0), 8)
    for gx in np.arange(np.ceil(x0 / step) * step, x1 + 1e-9, step):
        u = int(round(to_px(gx, 0)[0]))
        cv2.line(canvas, (u, top), (u, top + ph - 1), _GRID_MAJOR if abs(gx) < 1e-9 else _GRID, 1)
        cv2.putText(canvas, _fmt_m(gx), (u - 6, top + ph + 16), _FONT, 0.42, _TEXT, 1, cv2.LINE_AA)
    for gz in np.arange(np.ceil(z0 / step) * step, z1 + 1e-9, step):
        v = int(round(to_px(0, gz)[1]))
        cv2.line(canvas, (left, v), (left + pw - 1, v), _GRID_MAJOR if abs(gz) < 1e-9 else _GRID, 1)
        cv2.putText(canvas, _fmt_m(gz), (left - 30, v + 4), _FONT, 0.42, _TEXT, 1, cv2.LINE_AA)
    cv2.putText(canvas, "x (m), right", (left + pw // 2 - 40, top + ph + 36), _FONT, 0.45, _TEXT, 1,
                cv2.LINE_AA)
    cv2.putText(canvas, "z (m), forward", (6, top - 16), _FONT, 0.45, _TEXT, 1, cv2.LINE_AA)

    # points: z-buffer on y, so the highest point (smallest y) of each pixel wins
    if len(pts):
        lims = height_lims or (height_range(pts) if color_by == "height" else None)
        pc = _point_colors(pts, cols, color_by, lims)
        u, v = to_px(pts[:, 0], pts[:, 2])
        u, v = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
        inside = (u >= left) & (u < left + pw) & (v >= top) & (v < top + ph)
        # each point covers its share of the surface (z times the cloud's angular spacing; a
        # little more, as a surface seen at a slant spreads its rows further apart from above)
        size_px = px_per_m * _point_spacing(xyz) * pts[:, 2]
        radius = np.clip(np.ceil(size_px - 0.25), 0, 3).astype(np.int64)[inside]
        plot = canvas[top:top + ph, left:left + pw]
        _splat(plot, u[inside] - left, v[inside] - top, pts[inside, 1], pc[inside], radius)
        if color_by == "height":
            lo, hi = lims
            _colorbar(canvas, left + pw + 14, top + 24, top + min(ph, 260), lo, hi,
                      "height")

    # camera: field-of-view rays and a triangle at the origin, pointing forward
    o = tuple(int(round(c)) for c in to_px(0.0, 0.0))
    if len(pts) > 10:
        ax0, ax1, _, _ = _fov_slopes(pts)
        for slope in (ax0, ax1):
            end = to_px(slope * 100.0, 100.0)
            inside, a_, b_ = cv2.clipLine((left, top, pw, ph), o,
                                          (int(round(end[0])), int(round(end[1]))))
            if inside:
                cv2.line(canvas, a_, b_, (150, 150, 150), 1, cv2.LINE_AA)
    sz = 9
    tri = np.array([[o[0], o[1] - sz], [o[0] - sz * 0.7, o[1] + sz * 0.6],
                    [o[0] + sz * 0.7, o[1] + sz * 0.6]], dtype=np.int32)
    cv2.fillConvexPoly(canvas, tri, _CAMERA, cv2.LINE_AA)
    cv2.putText(canvas, "camera", (o[0] + 10, o[1] + 14), _FONT, 0.42, _CAMERA, 1, cv2.LINE_AA)
    cv2.rectangle(canvas, (left - 1, top - 1), (left + pw, top + ph), _GRID_MAJOR, 1)
    if title:
        cv2.putText(canvas, title, (6, 22), _FONT, 0.55, _TEXT, 1, cv2.LINE_AA)
    return canvas


def _look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rows: right, down, forward of a view camera at ``eye`` looking at ``target``, with the
    optical frame's down (+y) as the world's down."""
    f = target - eye
    f = f / np.linalg.norm(f)
    down = np.array([0.0, 1.0, 0.0])
    r = np.cross(down, f)
    if np.linalg.norm(r) < 1e-6:            # looking straight down or up
        r = np.array([1.0, 0.0, 0.0])
    r = r / np.linalg.norm(r)
    d = np.cross(f, r)
    return np.stack([r, d, f])


def perspective_view(xyz: np.ndarray, yaw_deg: float = -35.0, elevation_deg: float = 30.0,
                     size: Tuple[int, int] = (960, 720), fov_deg: float = 50.0
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """A default ``(eye, target)`` for :func:`render_perspective`: looking at the cloud's
    middle from behind the camera, ``yaw_deg`` to the side (negative: from the left) and
    ``elevation_deg`` above it, as close as it can while the camera and the 2nd-98th
    percentile box of the points stay inside a ``size`` view of ``fov_deg``."""
    pts, _ = _valid_points(xyz, None)
    if len(pts) == 0:
        return np.array([0.0, -1.0, -3.0]), np.array([0.0, 0.0, 1.0])
    lo = np.minimum(np.percentile(pts, 2, axis=0), 0.0)     # the box holds the camera too
    hi = np.maximum(np.percentile(pts, 98, axis=0), 0.0)
    target = (lo + hi) / 2
    radius = max(0.5 * float(np.linalg.norm(hi - lo)), 0.1)
    yaw, el = np.radians(yaw_deg), np.radians(elevation_deg)
    # backwards (-z), sideways (x) and up (-y) from the target
    direction = np.array([np.sin(yaw) * np.cos(el), -np.sin(el), -np.cos(yaw) * np.cos(el)])
    sample = pts[np.linspace(0, len(pts) - 1, min(len(pts), 4000)).astype(np.int64)]
    w, h = size
    F = (w / 2) / np.tan(np.radians(fov_deg) / 2)
    for k in np.arange(0.8, 6.01, 0.05):
        eye = target + direction * radius * k
        R = _look_at(eye, target)
        q = (sample - eye) @ R.T
        cam = (-eye) @ R.T                                   # the camera must be in view
        if (q[:, 2] > 0.05).mean() < 0.99 or cam[2] <= 0.05:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            inside = ((np.abs(F * q[:, 0] / q[:, 2]) < 0.46 * w)
                      & (np.abs(F * q[:, 1] / q[:, 2]) < 0.42 * h) & (q[:, 2] > 0.05))
        cam_in = abs(F * cam[0] / cam[2]) < 0.42 * w and abs(F * cam[1] / cam[2]) < 0.40 * h
        if inside.mean() >= 0.995 and cam_in:
            return eye, target
    return target + direction * radius * 6.0, target


def render_perspective(xyz: np.ndarray, colors: Optional[np.ndarray] = None,
                       color_by: str = "image", eye: Optional[np.ndarray] = None,
                       target: Optional[np.ndarray] = None, size: Tuple[int, int] = (960, 720),
                       fov_deg: float = 50.0, height_lims: Optional[Tuple[float, float]] = None,
                       grid_y: Optional[float] = None, title: str = "") -> np.ndarray:
    """A perspective view of a cloud from a virtual camera (default :func:`perspective_view`).

    Args:
        xyz, colors, color_by: as :func:`render_birdseye`.
        eye, target: the virtual camera's position and the point it looks at, metres in the
            cloud's optical frame.
        size: ``(width, height)`` px; ``fov_deg`` its horizontal field of view.
        grid_y: the y (m, down) of the 1 m ground grid (default: the 99th percentile of y,
            about the lowest points, e.g. the floor).

    Returns:
        ``height x width x 3`` uint8 RGB with a metre grid, the real camera as a frustum with
        RViz-coloured axes (x red, y green, z blue) and a scale note. Nearer points hide
        farther ones.
    """
    _check_color_by(color_by, colors)
    pts, cols = _valid_points(xyz, colors)
    if eye is None or target is None:
        e, t = perspective_view(xyz, size=size, fov_deg=fov_deg)
        eye = e if eye is None else eye
        target = t if target is None else target
    eye, target = np.asarray(eye, dtype=np.float64), np.asarray(target, dtype=np.float64)
    R = _look_at(eye, target)
    w, h = size
    F = (w / 2) / np.tan(np.radians(fov_deg) / 2)
    near = 0.05
    canvas = np.empty((h, w, 3), dtype=np.uint8)
    canvas[:] = _BG

    def project(p: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        q = (np.asarray(p, dtype=np.float64).reshape(-1, 3) - eye) @ R.T
        zq = q[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            return F * q[:, 0] / zq + w / 2, F * q[:, 1] / zq + h / 2, zq

    def polyline(p: np.ndarray, color, thickness=1) -> None:
        u, v, zq = project(p)
        for i in range(len(u) - 1):
            if zq[i] > near and zq[i + 1] > near:
                a = (int(round(u[i])), int(round(v[i])))
                b = (int(round(u[i + 1])), int(round(v[i + 1])))
                if max(abs(a[0]), abs(a[1]), abs(b[0]), abs(b[1])) < 10 * (w + h):
                    cv2.line(canvas, a, b, color, thickness, cv2.LINE_AA)

    # ground grid, 1 m (or a nicer step for large scenes), labelled along its near edge
    if len(pts):
        gy = float(np.percentile(pts[:, 1], 99)) if grid_y is None else float(grid_y)
        x0, x1, z0, z1 = birdseye_extent(pts, margin=0.0)
        step = max(1.0, _nice_step(max(x1 - x0, z1 - z0), 8))
        gx0, gx1 = np.floor(x0 / step) * step, np.ceil(x1 / step) * step
        gz0, gz1 = np.floor(min(z0, 0.0) / step) * step, np.ceil(z1 / step) * step
        for gx in np.arange(gx0, gx1 + 1e-9, step):
            polyline(np.array([[gx, gy, z] for z in np.linspace(gz0, gz1, 40)]), _GRID)
        for gz in np.arange(gz0, gz1 + 1e-9, step):
            polyline(np.array([[x, gy, gz] for x in np.linspace(gx0, gx1, 40)]), _GRID)
        placed, texts = [], []

        def label(text: str, ends) -> None:
            # at the first end of its grid line where the whole text fits in the image and
            # meets no other label
            (tw, th), _ = cv2.getTextSize(text, _FONT, 0.42, 1)
            for p, dx in ends:
                u, v, zq = project(np.array([p]))
                if not (zq[0] > near and abs(u[0]) < 1e5 and abs(v[0]) < 1e5):
                    continue
                x, y = int(u[0]) + (6 if dx > 0 else -tw - 6), int(v[0]) + 4
                box = (x - 2, y - th - 2, x + tw + 2, y + 4)
                if not (0 <= x and x + tw < w and th + 30 < y < h - 24):
                    continue
                if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3]
                       for b in placed):
                    continue
                placed.append(box)
                texts.append((text, (x, y)))            # drawn over the points, below
                return

        for gz in np.arange(gz0, gz1 + 1e-9, step):
            label(f"z {_fmt_m(gz)} m", (([gx0, gy, gz], -1), ([gx1, gy, gz], 1)))
        for gx in np.arange(gx0, gx1 + 1e-9, step):
            label(f"x {_fmt_m(gx)} m", (([gx, gy, gz0], 1), ([gx, gy, gz1], 1)))

        # points, nearer first: size from the point's spacing (its z / the real camera's focal,
        # estimated from the organized cloud) projected into the view
        lims = height_lims or (height_range(pts) if color_by == "height" else None)
        pc = _point_colors(pts, cols, color_by, lims)
        u, v, zq = project(pts)
        ok = zq > near
        spacing = _point_spacing(xyz)
        size_px = F * spacing * pts[:, 2] / np.maximum(zq, near)
        # 1.5x the spacing: closes the gaps between a depth sensor's quantisation layers too
        radius = np.clip(np.ceil(0.75 * size_px - 0.5), 1, 4).astype(np.int64)
        _splat(canvas, np.floor(u[ok]).astype(np.int64), np.floor(v[ok]).astype(np.int64),
               zq[ok], pc[ok], radius[ok])

        for text, org in texts:
            cv2.putText(canvas, text, org, _FONT, 0.42, _TEXT, 1, cv2.LINE_AA)

        # the real camera: frustum to 0.4 m and its axes (RViz colours)
        ax0, ax1, ay0, ay1 = _fov_slopes(pts)
        d = 0.4
        corners = np.array([[ax0 * d, ay0 * d, d], [ax1 * d, ay0 * d, d],
                            [ax1 * d, ay1 * d, d], [ax0 * d, ay1 * d, d]])
        for c in corners:
            polyline(np.array([[0.0, 0.0, 0.0], c]), _CAMERA)
        polyline(np.vstack([corners, corners[:1]]), _CAMERA)
        for axis, color in ((0, (230, 60, 60)), (1, (60, 210, 60)), (2, (70, 120, 255))):
            end = np.zeros(3)
            end[axis] = 0.3
            polyline(np.array([[0.0, 0.0, 0.0], end]), color, 2)
        u, v, zq = project(np.zeros((1, 3)))
        if zq[0] > near and 0 <= u[0] < w and 0 <= v[0] < h:
            cv2.putText(canvas, "camera", (int(u[0]) + 8, int(v[0]) - 8), _FONT, 0.45, _CAMERA, 1,
                        cv2.LINE_AA)
        if color_by == "height":
            lo, hi = lims
            _colorbar(canvas, w - 80, 60, min(h - 40, 300), lo, hi, "height")
        note = (f"grid {_fmt_m(step)} m at y = {gy:.2f} m (below the camera); "
                "axes x red, y green, z blue")
        cv2.putText(canvas, note, (10, h - 12), _FONT, 0.42, _TEXT, 1, cv2.LINE_AA)
    if title:
        cv2.putText(canvas, title, (10, 24), _FONT, 0.55, _TEXT, 1, cv2.LINE_AA)
    return canvas


def _point_spacing(xyz: np.ndarray) -> float:
    """Angular spacing (rad) between neighbouring columns of an organized cloud: the median
    |Δ(x/z)|; for an unorganized ``N x 3`` cloud 0.003 (a VGA camera's pixel)."""
    a = np.asarray(xyz)
    if a.ndim != 3 or a.shape[1] < 2:
        return 0.003
    with np.errstate(divide="ignore", invalid="ignore"):
        s = a[..., 0] / a[..., 2]
    ds = np.abs(np.diff(s, axis=1))
    ds = ds[np.isfinite(ds)]
    return float(np.median(ds)) if ds.size else 0.003
