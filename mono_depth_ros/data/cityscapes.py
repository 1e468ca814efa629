"""Cityscapes (Cordts et al., CVPR 2016): left images with depth from the stereo disparity.

Layout (the official packages ``leftImg8bit_trainvaltest``, ``disparity_trainvaltest``,
``camera_trainvaltest``, optionally ``rightImg8bit_trainvaltest``, ``gtFine_trainvaltest``,
``timestamp_sequence``)::

    <root>/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png    # 2048x1024 colour
    <root>/disparity/<split>/<city>/<name>_disparity.png        # uint16: d = (p - 1) / 256 px
                                                                # for p > 0; p = 0 invalid
    <root>/camera/<split>/<city>/<name>_camera.json             # extrinsic.baseline (m),
                                                                # intrinsic.fx, fy, u0, v0 (px)
    <root>/rightImg8bit/<split>/<city>/<name>_rightImg8bit.png  # optional (stereo=True)
    <root>/gtFine/<split>/<city>/<name>_gtFine_labelIds.png     # optional labels (uint8 ids)
    <root>/timestamp/<split>/<city>/<name>_timestamp.txt        # optional, nanoseconds

with ``<name>`` = ``<city>_<seq:06d>_<frame:06d>``. Depth = ``baseline * fx / d`` metres;
``p`` in {0, 1} (no or zero disparity) is NaN. The disparity is SGM output, so it is dense but
noisy and misses thin structures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional, Sequence, Union

import cv2
import numpy as np

from .datasets import (STAMP_ORIGIN_NS, DatasetError, Sample, _Frames, _intrinsics, _read_rgb,
                       _read_u16)


def disparity_to_depth(raw: np.ndarray, baseline: float, fx: float) -> np.ndarray:
    """Cityscapes uint16 disparity PNG values -> float32 depth metres (NaN invalid).

    ``d = (p - 1) / 256`` for ``p > 0``; ``depth = baseline * fx / d``; ``p <= 1`` -> NaN.
    """
    p = raw.astype(np.float64)
    valid = p > 1
    depth = np.full(raw.shape, np.nan, dtype=np.float32)
    depth[valid] = (baseline * fx / ((p[valid] - 1.0) / 256.0)).astype(np.float32)
    return depth


def read_camera_json(path: Union[str, Path]) -> dict:
    """``*_camera.json`` -> ``{"K": 3x3, "baseline": m}``.

    Raises:
        DatasetError: unreadable or missing keys.
    """
    try:
        cam = json.loads(Path(path).read_text())
        intr = cam["intrinsic"]
        return {"K": _intrinsics(intr["fx"], intr["fy"], intr["u0"], intr["v0"]),
                "baseline": float(cam["extrinsic"]["baseline"])}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"bad Cityscapes camera file {path}: {exc}") from exc


class Cityscapes(_Frames):
    """Cityscapes images with disparity depth (module docstring layout).

    Args:
        root: the Cityscapes root (holding ``leftImg8bit/``).
        split: ``"train"``, ``"val"``, ``"test"``, ... or ``None`` for every split present.
        stereo: add ``rgb_right`` (``rightImg8bit``) and ``baseline`` (positive, m).
        labels: ``"labelIds"`` (default), ``"labelTrainIds"`` (if generated with
            cityscapesscripts; 255 ignore) or ``None``: which ``gtFine`` file fills ``labels``.

    Frames without a camera file are skipped (their K is unknown); frames without a disparity
    file have ``depth=None``. Names are ``<split>/<city>/<name>``; stamps come from
    ``timestamp/`` when present, else 17 Hz from the index.

    Raises:
        DatasetError: no ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` with a camera file.
    """

    rate_hz = 17.0
    frame_id = "camera_color_left_optical_frame"
    eval_range = (1e-3, 80.0)

    def __init__(self, root, frames: Optional[slice] = None, split: Optional[str] = None,
                 stereo: bool = False, labels: Optional[str] = "labelIds"):
        super().__init__(root, frames)
        left = self.root / "leftImg8bit"
        if not left.is_dir():
            raise DatasetError(f"no Cityscapes leftImg8bit/ in {self.root}")
        splits: Sequence[str] = [split] if split else sorted(p.name for p in left.iterdir() if p.is_dir())
        items: List = []
        for sp in splits:
            for img in sorted((left / sp).glob("*/*_leftImg8bit.png")):
                city, name = img.parent.name, img.name[: -len("_leftImg8bit.png")]
                if self._path("camera", sp, city, name, "camera.json").is_file():
                    items.append((sp, city, name))
        if not items:
            raise DatasetError(f"no Cityscapes frames with camera files in {self.root}")
        self.stereo, self.labels = stereo, labels
        self._items = self._select(list(enumerate(items)))

    def _path(self, kind: str, split: str, city: str, name: str, suffix: str) -> Path:
        return self.root / kind / split / city / f"{name}_{suffix}"

    def _load(self, i: int) -> Sample:
        n, (sp, city, name) = self._items[i]
        rgb = _read_rgb(self._path("leftImg8bit", sp, city, name, "leftImg8bit.png"))
        cam = read_camera_json(self._path("camera", sp, city, name, "camera.json"))
        dpath = self._path("disparity", sp, city, name, "disparity.png")
        depth = disparity_to_depth(_read_u16(dpath), cam["baseline"], cam["K"][0, 0]) if dpath.is_file() else None
        right = baseline = None
        if self.stereo:
            right = _read_rgb(self._path("rightImg8bit", sp, city, name, "rightImg8bit.png"))
            baseline = cam["baseline"]
        lab = None
        if self.labels:
            lpath = self._path("gtFine", sp, city, name, f"gtFine_{self.labels}.png")
            if lpath.is_file():
                lab = cv2.imread(str(lpath), cv2.IMREAD_UNCHANGED)
                if lab is None or lab.ndim != 2:
                    raise DatasetError(f"cannot read single-channel labels {lpath}")
                lab = lab.astype(np.uint8)
        tpath = self._path("timestamp", sp, city, name, "timestamp.txt")
        stamp = STAMP_ORIGIN_NS + int(round(n * 1e9 / self.rate_hz))
        if tpath.is_file():
            try:
                stamp = int(tpath.read_text().split()[0]) or stamp  # 0 would mean "unset" in ROS
            except (ValueError, IndexError):
                pass
        return Sample(rgb, depth, cam["K"], stamp, f"{sp}/{city}/{name}", rgb_right=right,
                      baseline=baseline, labels=lab)
