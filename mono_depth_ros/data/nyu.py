"""NYU Depth V2 (Silberman et al., ECCV 2012): BTS ``sync`` folders and the labelled ``.mat``.

Two readers, both with the Kinect colour intrinsics :data:`~.datasets.NYU_INTRINSICS`:

- :class:`NYUSync` - the ``sync`` layout used by BTS / AdaBins / NeWCRFs (raw NYU frames
  synchronised and projected by the NYU toolbox)::

      <root>/<scene>/rgb_00001.jpg          # 640x480 colour
      <root>/<scene>/sync_depth_00001.png   # uint16 millimetres (BTS: depth / 1000), 0 invalid

  optionally listed by a BTS file list such as ``nyudepthv2_train_files_with_gt.txt``:
  ``/scene/rgb_00001.jpg /scene/sync_depth_00001.png 518.8579`` (paths relative to ``root``,
  the third column is fx; ``None`` as depth path means no ground truth).
- :class:`NYULabeled` - ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 = HDF5, read with ``h5py``):
  ``images`` N x 3 x W x H uint8, ``depths`` N x W x H float32 metres (hole-filled),
  ``labels`` N x W x H uint16 (0 unlabelled, 1..894 class ids) - MATLAB's column-major
  ``H x W x C x N`` arrays seen transposed by HDF5.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from .datasets import (NYU_INTRINSICS, STAMP_ORIGIN_NS, DatasetError, Sample, _Frames,
                       _intrinsics, _read_rgb, _read_u16, depth_from_u16)

#: Number of raw object classes of the labelled set (ids 1..894; 0 = unlabelled).
NYU_NUM_RAW_CLASSES = 894


class NYUSync(_Frames):
    """NYU Depth V2 ``sync`` folders (module docstring layout).

    Args:
        root: folder of ``<scene>/`` folders (BTS ``sync/`` or ``official_splits/test/``), or
            one scene folder.
        files: optional BTS file list; its fx (third column) replaces the default fx and fy.

    Names are ``<scene>/rgb_XXXXX``; stamps are synthesised at 30 Hz from the list position
    (``sync`` frames are subsampled, so they are not real frame times).

    Raises:
        DatasetError: no ``rgb_*.jpg`` found, or a listed image is missing.
    """

    def __init__(self, root, frames: Optional[slice] = None, files: Optional[Union[str, Path]] = None):
        super().__init__(root, frames)
        items: List[Tuple[Path, Optional[Path], Optional[float]]] = []
        if files is not None:
            for line in Path(files).read_text().splitlines():
                parts = line.split()
                if not parts or parts[0].startswith("#"):
                    continue
                rgb = self.root / parts[0].lstrip("/")
                if not rgb.is_file():
                    raise DatasetError(f"{files}: listed image {rgb} not found")
                dep = None
                if len(parts) > 1 and parts[1] != "None":
                    dep = self.root / parts[1].lstrip("/")
                fx = float(parts[2]) if len(parts) > 2 else None
                items.append((rgb, dep, fx))
        else:
            rgbs = sorted(self.root.glob("rgb_*.jpg")) + sorted(self.root.glob("*/rgb_*.jpg"))
            for rgb in rgbs:
                m = re.fullmatch(r"rgb_(\d+)\.jpg", rgb.name)
                if m:
                    items.append((rgb, rgb.with_name(f"sync_depth_{m.group(1)}.png"), None))
            if not any(d.is_file() for _, d, _ in items):  # rgb_*.jpg alone is no NYU sync folder
                items = []
        if not items:
            raise DatasetError(f"no NYU sync frames (<scene>/rgb_XXXXX.jpg + sync_depth_XXXXX.png) in {self.root}")
        self._items = self._select(list(enumerate(items)))

    def _load(self, i: int) -> Sample:
        n, (rgb_path, dpath, fx) = self._items[i]
        rgb = _read_rgb(rgb_path)
        depth = depth_from_u16(_read_u16(dpath), 1e-3) if dpath is not None and dpath.is_file() else None
        f0, f1, cx, cy = NYU_INTRINSICS
        K = _intrinsics(fx, fx, cx, cy) if fx is not None else _intrinsics(f0, f1, cx, cy)
        rel = rgb_path.relative_to(self.root) if rgb_path.is_relative_to(self.root) else rgb_path
        name = str(rel.with_suffix("")).replace("\\", "/")
        return Sample(rgb, depth, K, STAMP_ORIGIN_NS + int(round(n * 1e9 / self.rate_hz)), name)


def load_label_mapping(mapping: Union[str, Path, Sequence[int], np.ndarray]) -> np.ndarray:
    """A raw-id -> class-id lookup table (index = raw NYU id 0..894, value = new id).

    Accepts an array / sequence, a ``.npy`` file or a whitespace-separated text file. A table of
    length 894 (ids 1..894, as MATLAB's ``classMapping40.mat`` stores it) gets 0 -> 0 prepended.

    Raises:
        DatasetError: the table is not 1-D, too short, or has ids above 255.
    """
    if isinstance(mapping, (str, Path)):
        p = Path(mapping)
        table = np.load(p) if p.suffix == ".npy" else np.loadtxt(p)
    else:
        table = np.asarray(mapping)
    table = np.asarray(table)
    if table.ndim == 2 and 1 in table.shape:  # a MATLAB row / column vector
        table = table.reshape(-1)
    if table.ndim != 1:
        raise DatasetError(f"label mapping must be 1-D, got shape {table.shape}")
    if len(table) == NYU_NUM_RAW_CLASSES:
        table = np.concatenate([[0], table])
    if len(table) < NYU_NUM_RAW_CLASSES + 1:
        raise DatasetError(f"label mapping has {len(table)} entries, need {NYU_NUM_RAW_CLASSES + 1} (0..894)")
    if table.max() > 255 or table.min() < 0:
        raise DatasetError("label mapping values must be class ids in 0..255")
    return table.astype(np.uint8)


class NYULabeled(_Frames):
    """The 1449 labelled NYU Depth V2 frames from ``nyu_depth_v2_labeled.mat`` (needs ``h5py``).

    Args:
        root: the ``.mat`` file, or a folder holding ``nyu_depth_v2_labeled.mat``.
        indices: optional 0-based frame indices to read (e.g. the official ``splits.mat``
            ``testNdxs - 1``), applied before ``frames``.
        label_mapping: optional raw-id -> class-id table (:func:`load_label_mapping`), e.g. the
            894 -> 40 mapping of Gupta et al. (``classMapping40.mat``), which is not shipped here:
            pass it as an array or a ``.npy``/text file. Without it ``labels`` holds the raw ids
            1..894 (0 = unlabelled) as uint16.

    Sample: ``rgb`` 480x640 uint8, ``depth`` float32 metres (values <= 0 -> NaN), ``labels``
    (see above), name ``nyu_labeled_NNNN`` (0-based index), stamps 30 Hz from the index.

    Raises:
        DatasetError: not an HDF5 ``.mat`` with ``images`` / ``depths``, or h5py is missing.
    """

    MAT_NAME = "nyu_depth_v2_labeled.mat"

    def __init__(self, root, frames: Optional[slice] = None, indices: Optional[Sequence[int]] = None,
                 label_mapping=None):
        path = Path(root)
        if path.is_dir():
            path = path / self.MAT_NAME
        if path.suffix != ".mat" or not path.is_file():
            raise DatasetError(f"no NYU labelled .mat at {root}")
        self.root, self.path = path.parent, path
        self._frames = frames or slice(None)
        try:
            import h5py
        except ImportError as exc:  # pragma: no cover - h5py is a requirement
            raise DatasetError(f"reading {path} needs h5py (pip install h5py)") from exc
        try:
            with h5py.File(path, "r") as f:
                if "images" not in f or "depths" not in f:
                    raise DatasetError(f"{path}: no 'images'/'depths' datasets")
                n = f["images"].shape[0]
                self.has_labels = "labels" in f
        except OSError as exc:
            raise DatasetError(f"{path} is not an HDF5 (MATLAB v7.3) file: {exc}") from exc
        idx = list(range(n)) if indices is None else [int(i) for i in indices]
        if any(not 0 <= i < n for i in idx):
            raise DatasetError(f"indices out of range 0..{n - 1}")
        self.mapping = load_label_mapping(label_mapping) if label_mapping is not None else None
        self._items = self._select(idx)
        self.K = _intrinsics(*NYU_INTRINSICS)

    def _load(self, i: int) -> Sample:
        import h5py
        n = self._items[i]
        with h5py.File(self.path, "r") as f:
            rgb = np.ascontiguousarray(np.asarray(f["images"][n]).transpose(2, 1, 0)).astype(np.uint8)
            depth = np.ascontiguousarray(np.asarray(f["depths"][n], dtype=np.float32).T)
            raw = np.ascontiguousarray(np.asarray(f["labels"][n]).T) if self.has_labels else None
        depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
        labels = None
        if raw is not None:
            raw = raw.astype(np.uint16)
            if self.mapping is not None:
                if raw.max() >= len(self.mapping):
                    raise DatasetError(f"label id {raw.max()} outside the mapping table")
                labels = self.mapping[raw]
            else:
                labels = raw
        return Sample(rgb, depth, self.K.copy(), STAMP_ORIGIN_NS + int(round(n * 1e9 / self.rate_hz)),
                      f"nyu_labeled_{n:04d}", labels=labels)
