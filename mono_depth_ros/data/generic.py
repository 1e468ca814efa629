"""A generic image + depth folder, for data that follows no published layout (ROS-free).

Layout read by :class:`ImageDepthFolder`::

    <root>/rgb/<stem>.png|.jpg|.jpeg      # colour (the folder may also be called image/ or images/)
    <root>/depth/<stem>.png               # uint16, metres = value * depth_scale (default 1e-3:
                                          # millimetres), 0 invalid
    <root>/depth/<stem>.npy               # or float32 metres, non-finite / <= 0 invalid
    <root>/labels/<stem>.png              # optional uint8 class ids
    <root>/intrinsics.txt                 # 3x3 / "fx fy cx cy" / "f cx cy" (read_intrinsics),
                                          # unless K is passed

Stems pair the files; an image without depth gives ``depth=None``. Frames are in sorted stem
order; stamps are synthesised at ``rate_hz`` (30 Hz) from the position.
"""

from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from .datasets import (STAMP_ORIGIN_NS, DatasetError, Sample, _Frames, _read_rgb, _read_u16,
                       depth_from_u16, read_intrinsics)

_IMAGE_DIRS = ("rgb", "image", "images")
_IMAGE_EXTS = (".png", ".jpg", ".jpeg")


class ImageDepthFolder(_Frames):
    """Generic ``rgb/`` + ``depth/`` folder (module docstring layout).

    Args:
        root: the folder holding ``rgb/`` (or ``image/``, ``images/``) and ``depth/``.
        K: ``3 x 3`` intrinsics; default ``<root>/intrinsics.txt``.
        depth_scale: metres per unit of uint16 depth PNGs (default 1e-3, millimetres).
        rate_hz: rate for the synthesised stamps.

    Raises:
        DatasetError: no image folder with images, no ``depth/`` folder, or no intrinsics
            (neither ``K`` nor ``intrinsics.txt``).
    """

    def __init__(self, root, frames: Optional[slice] = None, K: Optional[np.ndarray] = None,
                 depth_scale: float = 1e-3, rate_hz: float = 30.0):
        super().__init__(root, frames)
        img_dir = next((self.root / d for d in _IMAGE_DIRS if (self.root / d).is_dir()), None)
        if img_dir is None:
            raise DatasetError(f"no image folder ({', '.join(_IMAGE_DIRS)}) in {self.root}")
        self.depth_dir = self.root / "depth"
        if not self.depth_dir.is_dir():
            raise DatasetError(f"no depth/ folder in {self.root}")
        images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in _IMAGE_EXTS)
        if not images:
            raise DatasetError(f"no images in {img_dir}")
        if K is not None:
            self.K = np.asarray(K, np.float64).reshape(3, 3)
        elif (self.root / "intrinsics.txt").is_file():
            self.K = read_intrinsics(self.root / "intrinsics.txt")
        else:
            raise DatasetError(f"no intrinsics for {self.root}: add intrinsics.txt or pass K")
        self.depth_scale = float(depth_scale)
        self.rate_hz = float(rate_hz)
        self._items = self._select(list(enumerate(images)))

    def _depth(self, stem: str) -> Optional[np.ndarray]:
        npy = self.depth_dir / f"{stem}.npy"
        if npy.is_file():
            d = np.load(npy).astype(np.float32)
            if d.ndim != 2:
                raise DatasetError(f"{npy}: depth must be H x W, got {d.shape}")
            d[~np.isfinite(d) | (d <= 0)] = np.nan
            return d
        png = self.depth_dir / f"{stem}.png"
        return depth_from_u16(_read_u16(png), self.depth_scale) if png.is_file() else None

    def _load(self, i: int) -> Sample:
        n, path = self._items[i]
        rgb = _read_rgb(path)
        depth = self._depth(path.stem)
        if depth is not None and depth.shape != rgb.shape[:2]:
            raise DatasetError(f"{path.stem}: depth {depth.shape} and image {rgb.shape[:2]} differ")
        labels = None
        lpath = self.root / "labels" / f"{path.stem}.png"
        if lpath.is_file():
            labels = cv2.imread(str(lpath), cv2.IMREAD_UNCHANGED)
            if labels is None or labels.ndim != 2:
                raise DatasetError(f"cannot read single-channel labels {lpath}")
        return Sample(rgb, depth, self.K.copy(), STAMP_ORIGIN_NS + int(round(n * 1e9 / self.rate_hz)),
                      path.stem, labels=labels)


def _per_image_intrinsics(path) -> dict:
    """``{file name: K}`` from lines ``NAME fx fy cx cy`` (``#`` comments); empty when the file
    is one camera for all (``read_intrinsics``'s layouts)."""
    out = {}
    for line in path.read_text().splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) == 5 and not _is_number(parts[0]):
            fx, fy, cx, cy = (float(v) for v in parts[1:])
            out[parts[0]] = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


class ImageFolder(_Frames):
    """Colour images without depth, for a teacher to label (``mono-depth-ros train --teacher``).

    Layout: ``<root>/*.png|.jpg|.jpeg`` and ``<root>/intrinsics.txt``, either one camera for all
    images (``read_intrinsics``: ``fx fy cx cy``, 9 or 3 numbers) or one line per image
    (``NAME fx fy cx cy``, ``#`` comments). Samples have ``depth=None``; images are in sorted
    name order, stamps synthesised at 30 Hz.

    Raises:
        DatasetError: no images in ``root``, no ``intrinsics.txt``, or an image without a line
            in a per-image file.
    """

    def __init__(self, root, frames: Optional[slice] = None):
        super().__init__(root, frames)
        images = sorted(p for p in self.root.iterdir()
                        if p.is_file() and p.suffix.lower() in _IMAGE_EXTS)
        if not images:
            raise DatasetError(f"no images (*.png, *.jpg) in {self.root}")
        cal = self.root / "intrinsics.txt"
        if not cal.is_file():
            raise DatasetError(f"no intrinsics.txt in {self.root}")
        per_image = _per_image_intrinsics(cal)
        common = None if per_image else read_intrinsics(cal)
        missing = [p.name for p in images if per_image and p.name not in per_image]
        if missing:
            raise DatasetError(f"{cal}: no intrinsics for {', '.join(missing[:5])}")
        self._K = {p.name: per_image.get(p.name, common) for p in images}
        self._items = self._select(list(enumerate(images)))

    def _load(self, i: int) -> Sample:
        n, path = self._items[i]
        return Sample(_read_rgb(path), None, self._K[path.name].copy(),
                      STAMP_ORIGIN_NS + int(round(n * 1e9 / self.rate_hz)), path.stem)
