"""SYNTHIA-style synthetic sequences (Ros et al., CVPR 2016; SYNTHIA-AL, Bengar et al. 2019).

Layout read by :class:`Synthia` (one folder per sequence, or a folder of sequences)::

    <seq>/RGB/000000.png        # colour, 8-bit
    <seq>/Depth/000000.png      # 16-bit PNG, depth in centimetres (x depth_scale = 0.01 -> m);
                                # 1 channel, or 3 identical channels as SYNTHIA ships it
    <seq>/Labels/000000.png     # class id per pixel: 1 channel, or 3 channels with the class in
                                # the first (R) channel and the instance id in G (SYNTHIA GT)
    <seq>/intrinsics.txt        # optional: 3x3 / "fx fy cx cy" / "f cx cy" (read_intrinsics)
    <seq>/RGB/000000.K.txt      # optional per-frame K (also accepted as <seq>/000000.K.txt)
    <seq>/Pose/000000.txt       # optional 4x4 camera-to-world (optical axes), metres
    <seq>/RGB_right/000000.png  # with stereo=True: the right camera of a rectified pair ...
    <seq>/baseline.txt          # ... and its signed baseline in metres (x of the right camera)
    <seq>/scene.json            # optional (the generator's): its "depth_scale" (m per unit) wins
                                # over the 0.01 default, e.g. millimetres for generated rooms

The published SYNTHIA folders are accepted under their own names too: ``GT/DEPTH`` or
``Depth`` for depth, ``Labels``, ``SemSeg`` or ``GT/LABELS`` for labels, and
``CameraParams/intrinsics.txt``. Nested camera folders (SYNTHIA-SEQS ``RGB/Stereo_Left/Omni_F``)
are read by pointing ``root`` at a folder whose ``RGB/`` holds the frames directly. The project's
synthetic generator writes this same layout with ids in the order of
``mono_depth_ros.models.valdez.SYNTHIA_CLASSES`` (14 classes, 0 = Miscellaneous).

Depth scale: SYNTHIA documents its depth PNGs as centimetres in 16 bits; that is this reader's
default (``depth_scale=0.01``), a sequence's ``scene.json`` may name another (the indoor
generator writes millimetres), and an explicit ``depth_scale`` overrides both. 0 is invalid. The sky
keeps SYNTHIA's far-plane value; clip with ``eval_range``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import List, Optional, Sequence

import cv2
import numpy as np

from .datasets import (STAMP_ORIGIN_NS, DatasetError, Sample, _Frames, _read_rgb, depth_from_u16,
                       read_intrinsics)

#: SYNTHIA-SEQS / SYNTHIA-RAND label ids (0 void, 1 sky, 2 building, 3 road, 4 sidewalk,
#: 5 fence, 6 vegetation, 7 pole, 8 car, 9 traffic sign, 10 pedestrian, 11 bicycle,
#: 12 lane marking, 13-14 reserved, 15 traffic light) -> index in ``SYNTHIA_CLASSES``.
SYNTHIA_SEQS_TO_CLASSES = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 13], np.uint8)

_DEPTH_DIRS = ("Depth", "GT/DEPTH")
_LABEL_DIRS = ("Labels", "SemSeg", "GT/LABELS")
_K_FILES = ("intrinsics.txt", "CameraParams/intrinsics.txt")


def _is_dir_exact(path: Path) -> bool:
    """``path`` is a folder whose last name matches in case too (``RGB/`` is not ``rgb/`` of the
    generic layout, even on case-insensitive file systems)."""
    try:
        return path.is_dir() and path.name in os.listdir(path.parent)
    except OSError:
        return False


def _first_dir(seq: Path, names: Sequence[str]) -> Optional[Path]:
    return next((seq / n for n in names if _is_dir_exact(seq / n)), None)


def _read_channel0(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DatasetError(f"cannot read {path}")
    if img.ndim == 3:
        img = img[..., 2]  # OpenCV reads BGR(A): the first (R) channel is index 2
    return img


class Synthia(_Frames):
    """SYNTHIA-style sequences (module docstring layout).

    Args:
        root: a sequence folder (holding ``RGB/``) or a folder of sequence folders.
        K: intrinsics used when the folder has none (a per-frame ``*.K.txt`` wins, then the
            sequence's ``intrinsics.txt``, then ``K``).
        depth_scale: metres per depth-PNG unit; default: the sequence's ``scene.json``
            ``depth_scale`` when present, else 0.01 (centimetres).
        label_map: optional raw-id -> class-id table, e.g. :data:`SYNTHIA_SEQS_TO_CLASSES` for
            the published SYNTHIA ids; default: ids as stored. Ids outside the table -> 0.

    Sample: ``rgb`` uint8, ``depth`` float32 m (NaN where 0), ``labels`` uint8 or ``None``,
    name ``<seq>/<stem>``; stamps 30 Hz from the frame number in the stem (or the index).

    Raises:
        DatasetError: no ``RGB/*.png``; no intrinsics for a frame (raised on load, or at
            construction when neither ``K`` nor an intrinsics file exists).
    """

    eval_range = (1e-3, 80.0)

    def __init__(self, root, frames: Optional[slice] = None, K: Optional[np.ndarray] = None,
                 depth_scale: Optional[float] = None, label_map: Optional[np.ndarray] = None,
                 stereo: bool = False):
        super().__init__(root, frames)
        self.stereo = bool(stereo)
        seqs = [self.root] if _is_dir_exact(self.root / "RGB") else sorted(
            p for p in self.root.iterdir() if _is_dir_exact(p / "RGB"))
        items: List = []
        for seq in seqs:
            stems = sorted(p.stem for p in (seq / "RGB").glob("*.png"))
            items.extend((seq, s, j) for j, s in enumerate(stems))
        if not items:
            raise DatasetError(f"no SYNTHIA frames (RGB/*.png + Depth/) in {self.root}")
        if not any(_first_dir(s, _DEPTH_DIRS) for s in seqs):
            raise DatasetError(f"no SYNTHIA depth folder ({' or '.join(_DEPTH_DIRS)}) in {self.root}")
        self.default_K = None if K is None else np.asarray(K, np.float64).reshape(3, 3)
        self.seq_K = {}
        for seq in seqs:
            kf = next((seq / n for n in _K_FILES if (seq / n).is_file()), None)
            self.seq_K[seq] = read_intrinsics(kf) if kf else self.default_K
        per_frame = any(next(iter(d.glob("*.K.txt")), None) is not None
                        for seq in seqs for d in (seq, seq / "RGB"))
        if any(k is None for k in self.seq_K.values()) and not per_frame:
            raise DatasetError(f"no intrinsics for {self.root}: add intrinsics.txt, *.K.txt or pass K")
        self.depth_scale = None if depth_scale is None else float(depth_scale)
        self.seq_scale = {seq: self._scene_depth_scale(seq) for seq in seqs}
        self.label_map = None if label_map is None else np.asarray(label_map, np.uint8)
        self._items = self._select(items)

    def _scene_depth_scale(self, seq: Path) -> float:
        if self.depth_scale is not None:
            return self.depth_scale
        f = seq / "scene.json"
        if f.is_file():
            try:
                return float(json.loads(f.read_text()).get("depth_scale", 0.01))
            except (ValueError, TypeError) as exc:
                raise DatasetError(f"{f}: unreadable depth_scale ({exc})") from exc
        return 0.01

    def _K(self, seq: Path, stem: str) -> np.ndarray:
        for p in (seq / "RGB" / f"{stem}.K.txt", seq / f"{stem}.K.txt"):
            if p.is_file():
                return read_intrinsics(p)
        if self.seq_K.get(seq) is None:
            raise DatasetError(f"no intrinsics for {seq}/{stem}")
        return self.seq_K[seq].copy()

    def _load(self, i: int) -> Sample:
        seq, stem, j = self._items[i]
        rgb = _read_rgb(seq / "RGB" / f"{stem}.png")
        depth = None
        ddir = _first_dir(seq, _DEPTH_DIRS)
        if ddir is not None and (ddir / f"{stem}.png").is_file():
            raw = _read_channel0(ddir / f"{stem}.png")
            depth = depth_from_u16(raw.astype(np.uint16), self.seq_scale[seq])
        labels = None
        ldir = _first_dir(seq, _LABEL_DIRS)
        if ldir is not None and (ldir / f"{stem}.png").is_file():
            raw = _read_channel0(ldir / f"{stem}.png")
            if self.label_map is not None:
                table = self.label_map
                raw = np.where(raw < len(table), table[np.minimum(raw, len(table) - 1)], 0)
            labels = raw.astype(np.uint8)
        name = stem if seq == self.root else f"{seq.name}/{stem}"
        digits = re.sub(r"\D", "", stem)
        n = int(digits) if digits else j
        # Written by `mono-depth-ros synth`: camera poses, and with --stereo the right camera.
        pfile = seq / "Pose" / f"{stem}.txt"
        pose = np.loadtxt(pfile).reshape(4, 4) if pfile.is_file() else None
        rgb_right = baseline = None
        if self.stereo:
            right, bfile = seq / "RGB_right" / f"{stem}.png", seq / "baseline.txt"
            if not (right.is_file() and bfile.is_file()):
                raise DatasetError(f"stereo: no RGB_right/{stem}.png + baseline.txt in {seq}")
            rgb_right = _read_rgb(right)
            baseline = float(bfile.read_text().split()[0])
        return Sample(rgb, depth, self._K(seq, stem), STAMP_ORIGIN_NS + int(round(n * 1e9 / self.rate_hz)),
                      name, pose=pose, labels=labels, rgb_right=rgb_right, baseline=baseline)
