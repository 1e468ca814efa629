"""KITTI raw drives, Eigen split file lists and Velodyne projection (ROS-free).

Layout of the KITTI raw data (Geiger et al., IJRR 2013), as unpacked from the official zips::

    <root>/<date>/calib_cam_to_cam.txt          # K_xx, R_rect_00, P_rect_0X (3x4, px)
    <root>/<date>/calib_velo_to_cam.txt         # R (3x3), T (3, m): Velodyne -> camera 0
    <root>/<date>/<date>_drive_XXXX_sync/image_02/data/NNNNNNNNNN.png   # left colour, rectified
    <root>/<date>/<date>_drive_XXXX_sync/image_03/data/NNNNNNNNNN.png   # right colour, rectified
    <root>/<date>/<date>_drive_XXXX_sync/image_02/timestamps.txt        # optional, one per frame
    <root>/<date>/<date>_drive_XXXX_sync/velodyne_points/data/NNNNNNNNNN.bin
        # float32 (x, y, z, reflectance), metres, Velodyne frame (x forward, y left, z up)

Annotated depth of the KITTI depth benchmark (Uhrig et al., 3DV 2017) is read when present,
either merged into the drive folder
(``<drive>/proj_depth/groundtruth/image_02/NNNNNNNNNN.png``) or under a separate
``gt_root`` as distributed (``<gt_root>/{train,val}/<drive>/proj_depth/groundtruth/...``):
uint16 PNG, metres = value / 256, 0 invalid. Frames without it fall back to projecting the
Velodyne scan (:func:`project_velodyne`), unless ``depth="groundtruth"``.

Images saved as ``.jpg`` (monodepth2 converts the PNGs) are accepted as well.
"""

from __future__ import annotations

import calendar
import re
import time
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from .datasets import (STAMP_ORIGIN_NS, DatasetError, Sample, _Frames, _read_rgb, _read_u16,
                       depth_from_u16, kitti_stereo_baseline, read_kitti_calib)

_DATE = re.compile(r"\d{4}_\d{2}_\d{2}")
_IMG_EXTS = (".png", ".jpg")

CalibArg = Union[str, Path, Mapping[str, np.ndarray]]


def _calib(c: CalibArg) -> Mapping[str, np.ndarray]:
    return c if isinstance(c, Mapping) else read_kitti_calib(c)


def velo_to_image_matrix(calib_velo_to_cam: CalibArg, calib_cam_to_cam: CalibArg,
                         cam: int = 2) -> np.ndarray:
    """The ``3 x 4`` matrix taking homogeneous Velodyne points to camera ``cam`` pixels.

    KITTI devkit convention: ``P_rect_0{cam} @ R_rect_00 @ [R | T]`` (Velodyne -> unrectified
    camera 0 -> rectified camera 0 -> image of rectified camera ``cam``).

    Args:
        calib_velo_to_cam: ``calib_velo_to_cam.txt`` path or its :func:`read_kitti_calib` dict.
        calib_cam_to_cam: ``calib_cam_to_cam.txt`` path or its dict.

    Raises:
        KeyError: a calibration key (``R``, ``T``, ``R_rect_00``, ``P_rect_0X``) is missing.
    """
    vc, cc = _calib(calib_velo_to_cam), _calib(calib_cam_to_cam)
    velo2cam = np.eye(4)
    velo2cam[:3, :3] = vc["R"].reshape(3, 3)
    velo2cam[:3, 3] = vc["T"].reshape(3)
    rect = np.eye(4)
    rect[:3, :3] = cc["R_rect_00"].reshape(3, 3)
    P = cc[f"P_rect_{cam:02d}"].reshape(3, 4)
    return P @ rect @ velo2cam


def project_velodyne(points_xyz: np.ndarray, calib_velo_to_cam: CalibArg,
                     calib_cam_to_cam: CalibArg, cam: int = 2,
                     shape: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """Project a Velodyne scan into a sparse depth image of rectified camera ``cam``.

    Follows the KITTI devkit (:func:`velo_to_image_matrix`). Only points in front of the camera
    (projected depth > 0) are kept; a point lands on the pixel whose centre is nearest
    (``round(u)``, ``round(v)``; pixel centres at integer coordinates) and, where several points
    share a pixel, the nearest one wins. Depth is the ``z`` of the rectified camera, in metres.
    (monodepth2's ``generate_depth_map`` uses ``round(u) - 1``, a MATLAB 1-based leftover; on
    the real KITTI frame the depth-completion benchmark's ``velodyne_raw`` agrees with
    ``round(u)``.)

    Args:
        points_xyz: ``N x 3`` (or ``N x 4`` with reflectance, ignored) Velodyne points, metres.
        calib_velo_to_cam, calib_cam_to_cam: paths or :func:`read_kitti_calib` dicts.
        cam: rectified camera index (2 = left colour, 3 = right colour).
        shape: ``(H, W)`` of the image; default ``S_rect_0{cam}`` of the calibration.

    Returns:
        ``H x W`` float32 metres, NaN where no point projects.

    Raises:
        ValueError: ``points_xyz`` is not ``N x 3`` / ``N x 4``.
        KeyError: a calibration key is missing.
    """
    pts = np.asarray(points_xyz)
    if pts.ndim != 2 or pts.shape[1] not in (3, 4):
        raise ValueError(f"points must be N x 3 or N x 4, got {pts.shape}")
    cc = _calib(calib_cam_to_cam)
    if shape is None:
        w, h = cc[f"S_rect_{cam:02d}"].astype(int)[:2]
        shape = (int(h), int(w))
    h, w = shape
    M = velo_to_image_matrix(calib_velo_to_cam, cc, cam)
    q = pts[:, :3].astype(np.float64) @ M[:, :3].T + M[:, 3]
    z = q[:, 2]
    front = z > 0
    q, z = q[front], z[front]
    u = np.floor(q[:, 0] / z + 0.5).astype(np.int64)
    v = np.floor(q[:, 1] / z + 0.5).astype(np.int64)
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    u, v, z = u[inside], v[inside], z[inside]
    depth = np.full((h, w), np.inf, dtype=np.float64)
    np.minimum.at(depth, (v, u), z)
    depth[np.isinf(depth)] = np.nan
    return depth.astype(np.float32)


def read_velodyne(path: Union[str, Path]) -> np.ndarray:
    """A KITTI ``velodyne_points/data/*.bin`` scan as ``N x 4`` float32 (x, y, z, reflectance).

    Raises:
        DatasetError: the file size is not a multiple of 16 bytes.
    """
    raw = np.fromfile(str(path), dtype=np.float32)
    if raw.size % 4:
        raise DatasetError(f"{path}: not a KITTI Velodyne scan (float32 x 4 per point)")
    return raw.reshape(-1, 4)


def parse_kitti_timestamp(line: str) -> int:
    """``"2011-09-26 13:02:25.964389445"`` (UTC as KITTI writes it) -> nanoseconds since epoch.

    Raises:
        ValueError: not in that format.
    """
    day, _, clock = line.strip().partition(" ")
    hms, _, frac = clock.partition(".")
    secs = calendar.timegm(time.strptime(f"{day} {hms}", "%Y-%m-%d %H:%M:%S"))
    return secs * 10**9 + int((frac + "000000000")[:9])


def _find_image(folder: Path, frame: str) -> Optional[Path]:
    for ext in _IMG_EXTS:
        p = folder / f"{frame}{ext}"
        if p.is_file():
            return p
    return None


def parse_split_line(line: str) -> Optional[Tuple[str, str, str, Optional[str]]]:
    """One line of a KITTI split file -> ``(date/drive, frame (10 digits), side, gt_path)``.

    Accepted formats (blank lines and ``#`` comments give ``None``):

    - monodepth / monodepth2: ``2011_09_26/2011_09_26_drive_0002_sync 69 l`` (frame index
      with or without zero padding; side ``l`` = image_02, ``r`` = image_03);
    - Eigen test files: ``2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000069.png
      [2011_09_26/.../image_03/data/0000000069.png]`` (the camera folder gives the side);
    - BTS: ``<image path as above> <drive>/proj_depth/groundtruth/image_02/0000000069.png
      721.5377`` (``gt_path`` relative to the annotated-depth root, ``None`` when the list says
      ``None``).

    Raises:
        DatasetError: the line matches none of these.
    """
    parts = line.split()
    if not parts or parts[0].startswith("#"):
        return None
    first = parts[0].strip("/")
    m = re.fullmatch(r"(?:.*/)?(\d{4}_\d{2}_\d{2}/\d{4}_\d{2}_\d{2}_drive_\d{4}_sync)"
                     r"/image_0([23])/data/(\d+)\.\w+", first)
    if m:
        gt = None
        if len(parts) > 1 and "proj_depth" in parts[1]:
            gt = parts[1].strip("/")
        return m.group(1), f"{int(m.group(3)):010d}", "l" if m.group(2) == "2" else "r", gt
    if len(parts) >= 2 and re.fullmatch(r"\d{4}_\d{2}_\d{2}/\d{4}_\d{2}_\d{2}_drive_\d{4}_sync",
                                        first) and parts[1].isdigit():
        side = parts[2] if len(parts) > 2 else "l"
        if side not in ("l", "r"):
            raise DatasetError(f"bad side {side!r} in split line {line!r}")
        return first, f"{int(parts[1]):010d}", side, None
    raise DatasetError(f"not a KITTI split line: {line!r}")


class KittiRaw(_Frames):
    """KITTI raw drives (module docstring layout) as rectified colour frames with depth.

    Args:
        root: the raw-data root (holding ``<date>/`` folders), one ``<date>/`` folder, or one
            ``<date>_drive_XXXX_sync/`` folder (its calibration is then looked up in its parent).
        frames: optional slice over the frame list.
        files: optional split file (Eigen / monodepth2 / BTS format, :func:`parse_split_line`)
            whose paths are relative to ``root`` (the raw-data root); without it every frame of
            every drive under ``root`` is read, left camera.
        stereo: add ``rgb_right`` (the other camera of the pair) and the signed ``baseline``
            (image_02 -> image_03 about +0.54 m; for right-side frames the partner is image_02
            and the baseline is negative).
        depth: ``"auto"`` (annotated depth when present, else Velodyne projection),
            ``"groundtruth"`` (annotated only, else ``None``), ``"velodyne"`` (always project),
            ``"none"``.
        gt_root: optional folder of the KITTI depth annotations (``train/``, ``val/`` with
            ``<drive>/proj_depth/groundtruth/image_0X/``).

    Stamps come from ``image_0X/timestamps.txt`` when present, else 10 Hz from the frame index.
    K is ``P_rect_0X[:, :3]`` of the drive's date.

    Raises:
        DatasetError: no drive / frame found, a split line is malformed or points at a missing
            image, or the calibration files are missing.
    """

    rate_hz = 10.0
    eval_range = (1e-3, 80.0)

    def __init__(self, root, frames: Optional[slice] = None, files: Optional[Union[str, Path]] = None,
                 stereo: bool = False, depth: str = "auto", gt_root: Optional[Union[str, Path]] = None):
        super().__init__(root, frames)
        if depth not in ("auto", "groundtruth", "velodyne", "none"):
            raise ValueError(f"depth must be auto, groundtruth, velodyne or none, got {depth!r}")
        self.stereo, self.depth_mode = stereo, depth
        self.gt_root = Path(gt_root) if gt_root is not None else None
        items: List[Tuple[Path, str, str, Optional[str]]] = []
        if files is not None:
            for line in Path(files).read_text().splitlines():
                parsed = parse_split_line(line)
                if parsed is None:
                    continue
                drive_rel, frame, side, gt = parsed
                drive = self.root / drive_rel
                if _find_image(drive / f"image_0{2 if side == 'l' else 3}" / "data", frame) is None:
                    raise DatasetError(f"split {files}: no image for {drive_rel} {frame} {side} under {self.root}")
                items.append((drive, frame, side, gt))
        else:
            for drive in self._drives():
                data = drive / "image_02" / "data"
                stems = sorted({p.stem for ext in _IMG_EXTS for p in data.glob(f"*{ext}")})
                items.extend((drive, s, "l", None) for s in stems)
        if not items:
            raise DatasetError(f"no KITTI raw frames (<date>_drive_XXXX_sync/image_02/data/*.png) in {self.root}")
        for drive in {it[0] for it in items}:
            self._calib_files(drive)  # fail early on missing calibration
        self._items = self._select(items)
        self.frame_id = "camera_color_left_optical_frame"

    def _drives(self) -> List[Path]:
        r = self.root
        if (r / "image_02" / "data").is_dir():
            return [r]
        dates = [r] if (r / "calib_cam_to_cam.txt").is_file() else sorted(
            p for p in r.iterdir() if p.is_dir() and _DATE.fullmatch(p.name))
        return sorted(d for date in dates for d in date.glob("*_drive_*_sync")
                      if (d / "image_02" / "data").is_dir())

    @staticmethod
    def _calib_files(drive: Path) -> Tuple[Path, Path]:
        for folder in (drive.parent, drive):
            cc, vc = folder / "calib_cam_to_cam.txt", folder / "calib_velo_to_cam.txt"
            if cc.is_file():
                return cc, vc
        raise DatasetError(f"no calib_cam_to_cam.txt beside or in {drive}")

    @staticmethod
    @lru_cache(maxsize=32)
    def _calib(path: Path) -> Dict[str, np.ndarray]:
        return read_kitti_calib(path)

    @staticmethod
    @lru_cache(maxsize=64)
    def _timestamps(path: Path) -> Optional[List[int]]:
        if not path.is_file():
            return None
        try:
            return [parse_kitti_timestamp(l) for l in path.read_text().splitlines() if l.strip()]
        except ValueError:
            return None

    def _gt_path(self, drive: Path, frame: str, cam: int, gt_rel: Optional[str]) -> Optional[Path]:
        tail = Path("proj_depth") / "groundtruth" / f"image_0{cam}" / f"{frame}.png"
        cands = [drive / tail]
        if self.gt_root is not None:
            if gt_rel:
                cands.append(self.gt_root / gt_rel)
            cands += [self.gt_root / split / drive.name / tail for split in ("train", "val", "")]
        return next((p for p in cands if p.is_file()), None)

    def _depth(self, drive: Path, frame: str, cam: int, gt_rel, cc, vc_path: Path, shape):
        if self.depth_mode == "none":
            return None
        if self.depth_mode != "velodyne":
            gt = self._gt_path(drive, frame, cam, gt_rel)
            if gt is not None:
                return depth_from_u16(_read_u16(gt), 1.0 / 256.0)
            if self.depth_mode == "groundtruth":
                return None
        scan = drive / "velodyne_points" / "data" / f"{frame}.bin"
        if not (scan.is_file() and vc_path.is_file()):
            return None
        return project_velodyne(read_velodyne(scan), self._calib(vc_path), cc, cam, shape)

    def _load(self, i: int) -> Sample:
        drive, frame, side, gt_rel = self._items[i]
        cam, other = (2, 3) if side == "l" else (3, 2)
        cc_path, vc_path = self._calib_files(drive)
        cc = self._calib(cc_path)
        rgb = _read_rgb(_find_image(drive / f"image_0{cam}" / "data", frame))
        K = cc[f"P_rect_{cam:02d}"].reshape(3, 4)[:, :3].copy()
        depth = self._depth(drive, frame, cam, gt_rel, cc, vc_path, rgb.shape[:2])
        right = baseline = None
        if self.stereo:
            rpath = _find_image(drive / f"image_0{other}" / "data", frame)
            if rpath is None:
                raise DatasetError(f"stereo: no image_0{other} frame {frame} in {drive}")
            right = _read_rgb(rpath)
            baseline = kitti_stereo_baseline(cc, cam, other)
        stamps = self._timestamps(drive / f"image_0{cam}" / "timestamps.txt")
        n = int(frame)
        stamp = stamps[n] if stamps is not None and n < len(stamps) else \
            STAMP_ORIGIN_NS + int(round(n * 1e9 / self.rate_hz))
        name = f"{drive.name}/image_0{cam}/{frame}"
        return Sample(rgb, depth, K, stamp, name, rgb_right=right, baseline=baseline)
