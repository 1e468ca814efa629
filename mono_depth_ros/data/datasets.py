"""Readers for the RGB-D dataset layouts the package uses (ROS-free).

Every reader is a sequence of :class:`Sample` with the same fields, so the bag writer, the
evaluator and training treat them alike:

- :class:`SevenScenes` - Microsoft 7-Scenes (Shotton et al., CVPR 2013):
  ``frame-NNNNNN.color.jpg``, ``frame-NNNNNN.depth.png`` (uint16 mm; 0 and 65535 invalid),
  ``frame-NNNNNN.pose.txt`` (4x4 camera-to-world, m), ``camera-intrinsics.txt``; 30 Hz.
- :class:`NYUTest` - NYU Depth V2 test frames in DenseDepth's ``nyu2_test`` layout
  (Silberman et al., ECCV 2012): ``image_i.png``, ``depth_i.png`` (uint16 mm).
- :class:`KittiFrame` - a KITTI raw frame (Geiger et al., CVPR 2012) with its depth-completion
  annotation (Uhrig et al., 3DV 2017): ``raw/sync_rect/cam_02.png``,
  ``depth_completion/groundtruth_image_02.png`` (uint16, m = v / 256, 0 invalid) and
  ``raw/calib_cam_to_cam.txt`` (``P_rect_02``); ``stereo=True`` adds ``cam_03.png``.

More layouts live in sibling modules (NYU ``sync`` / labelled ``.mat``, KITTI raw drives and
Eigen splits, SYNTHIA, Cityscapes, generic image/depth folders, ROS 2 bags);
:func:`open_dataset` tries all of them, see :func:`readers`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

import cv2
import numpy as np

#: Stamp of frame 0 for datasets without timestamps (a ROS time of 0 means "unset").
STAMP_ORIGIN_NS = 1_000_000_000_000_000_000

#: NYU Depth V2 Kinect colour intrinsics (fx, fy, cx, cy), from the NYU toolbox.
NYU_INTRINSICS = (518.8579, 519.4696, 325.5824, 253.7362)


@dataclass
class Sample:
    """One RGB-D frame.

    Attributes:
        rgb: ``H x W x 3`` uint8 RGB.
        depth: ``H x W`` float32 metres, NaN invalid (REP 118), or ``None`` when absent.
        K: ``3 x 3`` float64 intrinsics for this resolution.
        stamp_ns: acquisition time in nanoseconds (synthesised at the dataset rate when the
            dataset has no timestamps).
        name: frame identifier (file stem).
        pose: ``4 x 4`` camera-to-world (m) or ``None``.
        rgb_right: ``H x W x 3`` uint8 RGB of the other camera of a rectified stereo pair (same
            ``K``), or ``None``. For KITTI's left camera it is the right camera.
        baseline: signed x offset (m) of the ``rgb_right`` camera in this camera's rectified
            frame: positive when it is to the right (KITTI 02 -> 03: about +0.54 m), or
            ``None``. Disparity (px) = ``K[0, 0] * baseline / depth``.
        labels: ``H x W`` per-pixel class ids (uint8; uint16 for label sets with more than
            255 classes, such as raw NYU labels), or ``None``. 255 (uint8) marks ignored
            pixels after augmentation.
    """

    rgb: np.ndarray
    depth: Optional[np.ndarray]
    K: np.ndarray
    stamp_ns: int
    name: str
    pose: Optional[np.ndarray] = None
    rgb_right: Optional[np.ndarray] = None
    baseline: Optional[float] = None
    labels: Optional[np.ndarray] = None


class DatasetError(ValueError):
    """A folder that is not in the expected layout."""


def _intrinsics(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float64)


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DatasetError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _read_u16(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.dtype != np.uint16:
        raise DatasetError(f"cannot read uint16 depth {path}")
    return img


def read_intrinsics(path: Union[str, Path]) -> np.ndarray:
    """A ``3 x 3`` float64 K from a text file of 9 numbers (the matrix, row-major), 4 numbers
    (``fx fy cx cy``) or 3 numbers (``f cx cy``, SYNTHIA's ``CameraParams/intrinsics.txt``).

    Raises:
        DatasetError: unreadable, or another count of numbers.
    """
    try:
        vals = np.array(Path(path).read_text().replace(",", " ").split(), dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read intrinsics {path}: {exc}") from exc
    if vals.size == 9:
        return vals.reshape(3, 3)
    if vals.size == 4:
        return _intrinsics(*vals)
    if vals.size == 3:
        return _intrinsics(vals[0], vals[0], vals[1], vals[2])
    raise DatasetError(f"{path}: expected 9, 4 or 3 numbers for intrinsics, got {vals.size}")


def depth_from_u16(raw: np.ndarray, scale: float, invalid: Sequence[int] = (0,)) -> np.ndarray:
    """uint16 depth image -> float32 metres (``raw * scale``) with NaN for ``invalid`` codes."""
    depth = raw.astype(np.float32) * np.float32(scale)
    for code in invalid:
        depth[raw == code] = np.nan
    return depth


class _Frames:
    """Sequence base: subclasses fill ``self._items`` and implement ``_load(i)``."""

    rate_hz: float = 30.0
    frame_id: str = "camera_optical_frame"
    #: (min, max) metres over which depth is evaluated for this sensor.
    eval_range = (1e-3, 10.0)

    def __init__(self, root: Union[str, Path], frames: Optional[slice] = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"dataset folder not found: {self.root}")
        self._items: List = []
        self._frames = frames or slice(None)

    def _select(self, items: List) -> List:
        return list(items)[self._frames]

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int) -> Sample:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return self._load(i % len(self))

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def _load(self, i: int) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError


class SevenScenes(_Frames):
    """7-Scenes sequence folder (see module docstring). ``frames`` selects e.g. ``slice(800, 1000)``.

    Raises:
        DatasetError: no ``frame-*.color.jpg`` in ``root``.
    """

    eval_range = (0.1, 10.0)  # Kinect v1 gives no depth below ~0.4 m; 0.1 only drops glitches

    def __init__(self, root, frames: Optional[slice] = None):
        super().__init__(root, frames)
        stems = sorted(p.name[: -len(".color.jpg")] for p in self.root.glob("frame-*.color.jpg"))
        if not stems:
            raise DatasetError(f"no 7-Scenes frames (frame-*.color.jpg) in {self.root}")
        self._all = stems
        self._items = self._select(range(len(stems)))
        kfile = self.root / "camera-intrinsics.txt"
        if kfile.is_file():
            self.K = np.loadtxt(kfile, dtype=np.float64).reshape(3, 3)
        else:  # 7-Scenes nominal Kinect intrinsics
            self.K = _intrinsics(585.0, 585.0, 320.0, 240.0)

    def _load(self, i: int) -> Sample:
        idx = self._items[i]
        stem = self._all[idx]
        rgb = _read_rgb(self.root / f"{stem}.color.jpg")
        dpath = self.root / f"{stem}.depth.png"
        depth = depth_from_u16(_read_u16(dpath), 1e-3, (0, 65535)) if dpath.is_file() else None
        ppath = self.root / f"{stem}.pose.txt"
        pose = np.loadtxt(ppath).reshape(4, 4) if ppath.is_file() else None
        frame_no = int(re.sub(r"\D", "", stem) or idx)
        return Sample(rgb, depth, self.K.copy(), STAMP_ORIGIN_NS + int(round(frame_no * 1e9 / self.rate_hz)), stem, pose)


class NYUTest(_Frames):
    """NYU Depth V2 ``nyu2_test`` folder (``image_i.png`` / ``depth_i.png``, uint16 mm).

    Raises:
        DatasetError: no ``image_*.png`` in ``root``.
    """

    def __init__(self, root, frames: Optional[slice] = None):
        super().__init__(root, frames)
        idx = sorted(int(m.group(1)) for p in self.root.glob("image_*.png")
                     if (m := re.fullmatch(r"image_(\d+)\.png", p.name)))
        if not idx:
            raise DatasetError(f"no NYU frames (image_N.png) in {self.root}")
        self._items = self._select(idx)
        self.K = _intrinsics(*NYU_INTRINSICS)

    def _load(self, i: int) -> Sample:
        n = self._items[i]
        rgb = _read_rgb(self.root / f"image_{n}.png")
        dpath = self.root / f"depth_{n}.png"
        depth = depth_from_u16(_read_u16(dpath), 1e-3) if dpath.is_file() else None
        return Sample(rgb, depth, self.K.copy(), STAMP_ORIGIN_NS + int(round(n * 1e9 / self.rate_hz)), f"image_{n}")


def read_kitti_calib(path: Union[str, Path]) -> dict:
    """Parse a KITTI devkit ``calib_*.txt`` into ``{key: float64 array}`` (non-numeric skipped)."""
    out = {}
    for line in Path(path).read_text().splitlines():
        key, _, vals = line.partition(":")
        try:
            out[key.strip()] = np.array([float(v) for v in vals.split()], dtype=np.float64)
        except ValueError:
            continue
    return out


def kitti_stereo_baseline(calib_cam_to_cam: dict, cam: int = 2, other: int = 3) -> float:
    """Signed baseline (m) of camera ``other`` seen from camera ``cam`` (rectified KITTI pair).

    ``P_rect_0X[0, 3] = -fx * x_X`` with ``x_X`` camera X's x position in the rectified
    camera-0 frame, so ``b = (P_cam[0, 3] - P_other[0, 3]) / fx`` (02 -> 03: about +0.54 m).

    Args:
        calib_cam_to_cam: :func:`read_kitti_calib` of ``calib_cam_to_cam.txt``.
    """
    P = calib_cam_to_cam[f"P_rect_{cam:02d}"].reshape(3, 4)
    Po = calib_cam_to_cam[f"P_rect_{other:02d}"].reshape(3, 4)
    return float((P[0, 3] - Po[0, 3]) / P[0, 0])


class KittiFrame(_Frames):
    """KITTI raw frame folder: left colour camera (``cam_02``) + annotated depth.

    K comes from ``P_rect_02`` of ``raw/calib_cam_to_cam.txt`` (full 1242x375 frame).
    With ``stereo=True`` the sample also carries ``rgb_right`` (``cam_03.png``) and the
    ``baseline`` from ``P_rect_02`` / ``P_rect_03`` (:func:`kitti_stereo_baseline`).

    Raises:
        DatasetError: the expected files are missing (``cam_03.png`` too when ``stereo``).
    """

    rate_hz = 10.0
    frame_id = "camera_color_left_optical_frame"
    eval_range = (1e-3, 80.0)  # KITTI Eigen-split convention

    def __init__(self, root, frames: Optional[slice] = None, stereo: bool = False):
        super().__init__(root, frames)
        self.image = self.root / "raw" / "sync_rect" / "cam_02.png"
        self.image_right = self.root / "raw" / "sync_rect" / "cam_03.png"
        self.gt = self.root / "depth_completion" / "groundtruth_image_02.png"
        calib = self.root / "raw" / "calib_cam_to_cam.txt"
        if not (self.image.is_file() and calib.is_file()):
            raise DatasetError(f"no KITTI raw frame (raw/sync_rect/cam_02.png + calib) in {self.root}")
        if stereo and not self.image_right.is_file():
            raise DatasetError(f"stereo=True but {self.image_right} is missing")
        self.stereo = stereo
        cal = read_kitti_calib(calib)
        P = cal["P_rect_02"].reshape(3, 4)
        self.K = P[:, :3].copy()
        self.baseline = kitti_stereo_baseline(cal, 2, 3) if stereo else None
        self._items = self._select([0])

    def _load(self, i: int) -> Sample:
        rgb = _read_rgb(self.image)
        depth = depth_from_u16(_read_u16(self.gt), 1.0 / 256.0) if self.gt.is_file() else None
        right = _read_rgb(self.image_right) if self.stereo else None
        return Sample(rgb, depth, self.K.copy(), STAMP_ORIGIN_NS, "kitti_2011_09_26_0001_0000000005",
                      rgb_right=right, baseline=self.baseline)


_READERS = (SevenScenes, NYUTest, KittiFrame)


def readers() -> tuple:
    """Every reader :func:`open_dataset` tries, in order: the ones above, then the ROS 2 bag
    folder, KITTI raw drives, NYU ``sync`` folders, the NYU labelled ``.mat``, Cityscapes,
    SYNTHIA, the generic ``rgb/`` + ``depth/`` folder and a folder of colour images without
    depth (most specific layouts first)."""
    from .bag_dataset import BagDataset
    from .cityscapes import Cityscapes
    from .generic import ImageDepthFolder, ImageFolder
    from .kitti import KittiRaw
    from .nyu import NYULabeled, NYUSync
    from .synthia import Synthia
    return _READERS + (BagDataset, KittiRaw, NYUSync, NYULabeled, Cityscapes, Synthia,
                       ImageDepthFolder, ImageFolder)


def open_dataset(path: Union[str, Path], frames: Optional[slice] = None, **options) -> _Frames:
    """Open ``path`` with the first reader whose layout matches (see :func:`readers`).

    ``path`` is a folder, or for the NYU labelled set the ``.mat`` file. Readers that need
    options (an Eigen split file, stereo pairs, label mappings, topics) are built directly.

    Args:
        frames: optional slice of frames to keep (``slice(800, 1000)``).
        **options: reader options (e.g. ``stereo=True``); readers without them are skipped.

    Raises:
        DatasetError: no reader recognises the folder (the message lists what was tried).
    """
    errors = []
    for reader in readers():
        try:
            return reader(path, frames, **options)
        except TypeError as exc:  # the reader has no such option
            errors.append(f"{reader.__name__}: {exc}")
        except DatasetError as exc:
            errors.append(f"{reader.__name__}: {exc}")
    raise DatasetError(f"{path} is not a known dataset layout; tried " + "; ".join(errors))


def parse_frames(spec: Optional[str]) -> Optional[slice]:
    """``"800:1000"`` -> ``slice(800, 1000)``; ``None``/``""`` -> ``None``.

    Raises:
        ValueError: not of the form ``start:stop[:step]``.
    """
    if not spec:
        return None
    parts = spec.split(":")
    if not 1 <= len(parts) <= 3 or not all(p.strip().lstrip("-").isdigit() or p == "" for p in parts):
        raise ValueError(f"frames must look like START:STOP[:STEP], got {spec!r}")
    vals = [int(p) if p else None for p in parts]
    # a single index selects that frame; -1 + 1 == 0 would give an empty slice, so use None
    return slice(*vals) if len(vals) > 1 else slice(vals[0], vals[0] + 1 or None)
