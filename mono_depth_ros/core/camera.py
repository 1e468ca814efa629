"""The camera of an image from its camera_info, as image_geometry does it (ROS-free).

``sensor_msgs/CameraInfo`` describes the full-resolution sensor: ``K``, ``D``, ``R``, ``P`` are
for a ``width x height`` image, and ``binning_x/y`` and ``roi`` say how the published image was
taken from it. Following ``image_geometry.PinholeCameraModel``: the image's intrinsics are
``K`` with the ROI offset subtracted from the principal point, then divided by the binning
(0 means 1); the same for ``P``. An ROI of zero width or height is the full image.

Lens distortion (``plumb_bob``, ``rational_polynomial``: OpenCV's model; ``equidistant``:
OpenCV's fisheye model) is removed by **rectifying the image before inference** with the maps of
``cv2.initUndistortRectifyMap(K, D, R, P)`` (what ``image_proc``'s rectify node does), cached
per camera. Pixels of the rectified image that have no source pixel (outside the raw image: the
black border when P keeps a wider view than the raw image covers, as camera_calibration's alpha
> 0 does, a pincushion lens, or a rotating R) are not image content:
:meth:`Rectifier.valid_mask` remaps a validity mask once per camera with the same maps, and the
pipeline sets the depth there to NaN (REP 118: no measurement), so no depth computed on black
fill is ever published. Rectifying first, rather than back-projecting through undistorted rays,
is what the networks expect (they were trained on pinhole images, so straight lines stay
straight) and it makes every output - depth image, cloud, ``depth/camera_info`` - a plain
pinhole camera that any consumer reads correctly: the published camera_info is ``P``'s camera
with ``D`` zero, ``R`` identity, no binning and no ROI. Distortion coefficients act on
normalised coordinates, so applying them with the ROI/binning-adjusted K is exact.

An image whose size differs from what camera_info predicts is accepted when only uniformly
scaled (same aspect ratio within 1 %; K and P are scaled, with a warning); any other mismatch is
refused (``InvalidCameraInfo("camera_info_size_mismatch")``): silently stretching K
anisotropically would bend every cloud.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple

import cv2
import numpy as np

from .geometry import InvalidCameraInfo, intrinsics_from_camera_info, scale_intrinsics

#: Distortion models handled, and the number of coefficients OpenCV uses for each.
DISTORTION_MODELS = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}


@dataclass(frozen=True)
class CameraModel:
    """The pinhole camera of one image, derived from a camera_info.

    Attributes:
        width, height: image size (px).
        K: ``3 x 3`` float64 intrinsics of the (raw) image.
        P: ``3 x 4`` float64 projection of the rectified image.
        D: distortion coefficients (may be empty).
        distortion_model: camera_info's model name.
        R: ``3 x 3`` rectification rotation.
        warnings: ``(reason, text)`` worth a throttled warning (e.g. a uniform size rescale).
    """

    width: int
    height: int
    K: np.ndarray
    P: np.ndarray
    D: Tuple[float, ...] = ()
    distortion_model: str = ""
    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    warnings: Tuple[Tuple[str, str], ...] = ()

    @property
    def needs_rectification(self) -> bool:
        """True when the lens distorts (non-zero D) or R rotates the image."""
        return bool(np.any(np.asarray(self.D) != 0.0)) or not np.allclose(self.R, np.eye(3))

    @property
    def output_K(self) -> np.ndarray:
        """Intrinsics of the image the network sees: ``P[:3, :3]`` after rectification, else K."""
        return self.P[:, :3].copy() if self.needs_rectification else self.K

    def key(self) -> tuple:
        """Hashable identity (for caches of rays and rectification maps)."""
        return (self.width, self.height, self.K.tobytes(), self.P.tobytes(), tuple(self.D),
                self.distortion_model, self.R.tobytes())


def _array(info: Any, name: str, default: np.ndarray) -> np.ndarray:
    """A numeric camera_info field as float64 (rclpy gives numpy or array.array), or ``default``
    when absent or empty."""
    value = getattr(info, name, None)
    arr = np.asarray(value if value is not None else (), dtype=np.float64).ravel()
    return arr if arr.size else default


def _roi_and_binning(info: Any) -> Tuple[int, int, int, int, int, int]:
    bx = int(getattr(info, "binning_x", 0) or 0) or 1
    by = int(getattr(info, "binning_y", 0) or 0) or 1
    roi = getattr(info, "roi", None)
    x0 = int(getattr(roi, "x_offset", 0) or 0) if roi is not None else 0
    y0 = int(getattr(roi, "y_offset", 0) or 0) if roi is not None else 0
    rw = int(getattr(roi, "width", 0) or 0) if roi is not None else 0
    rh = int(getattr(roi, "height", 0) or 0) if roi is not None else 0
    if rw == 0 or rh == 0:  # image_geometry: an empty ROI is the full image
        x0, y0, rw, rh = 0, 0, int(info.width), int(info.height)
    return bx, by, x0, y0, rw, rh


def _adjust(M: np.ndarray, bx: int, by: int, x0: int, y0: int) -> np.ndarray:
    """image_geometry's ROI shift and binning division of a 3x3 K or 3x4 P."""
    M = np.array(M, dtype=np.float64, copy=True)
    M[0, 2] -= x0
    M[1, 2] -= y0
    M[0, :] /= bx
    M[1, :] /= by
    return M


def camera_model(info: Any, width: int, height: int) -> CameraModel:
    """The :class:`CameraModel` of a ``width x height`` image described by ``info``.

    Args:
        info: object with camera_info fields (``width``, ``height``, ``k``, ``d``, ``r``, ``p``,
            ``distortion_model``, ``binning_x``, ``binning_y``, ``roi``): rclpy, rosbags or
            a namespace.
        width, height: size of the image that came with it.

    Raises:
        InvalidCameraInfo: ``zero_size``, ``zero_intrinsics`` (K unusable, including a
            non-finite principal point), ``camera_info_size_mismatch`` (the image is not the
            camera_info's size after binning/ROI, nor a uniform rescale of it) or ``unsupported_distortion``
            (non-zero D of a model other than :data:`DISTORTION_MODELS`).
    """
    K = intrinsics_from_camera_info(info.k, info.width, info.height)
    P = _array(info, "p", np.zeros(12)).reshape(3, 4)
    if not (np.isfinite(P).all() and P[0, 0] > 0 and P[1, 1] > 0):
        P = np.hstack([K, np.zeros((3, 1))])  # no usable P: the unrectified camera
    R = _array(info, "r", np.eye(3).ravel()).reshape(3, 3)
    if not np.isfinite(R).all() or not np.any(R):
        R = np.eye(3)  # an all-zero R is an unset field, not a rotation
    D = tuple(float(v) for v in _array(info, "d", np.zeros(0)))
    model = str(getattr(info, "distortion_model", "") or "")
    if any(D) and model not in DISTORTION_MODELS:
        raise InvalidCameraInfo("unsupported_distortion",
                                f"distortion_model {model!r} with non-zero D; supported: "
                                f"{', '.join(DISTORTION_MODELS)}")
    if not all(np.isfinite(D)):
        raise InvalidCameraInfo("zero_intrinsics", f"camera_info D is not finite: {D}")
    bx, by, x0, y0, rw, rh = _roi_and_binning(info)
    K, P = _adjust(K, bx, by, x0, y0), _adjust(P, bx, by, x0, y0)
    exp_w, exp_h = rw // bx, rh // by
    warnings: List[Tuple[str, str]] = []
    if (width, height) != (exp_w, exp_h):
        sx, sy = width / exp_w, height / exp_h
        if abs(sx / sy - 1.0) > 0.01:
            raise InvalidCameraInfo(
                "camera_info_size_mismatch", f"image {width}x{height} does not match camera_info "
                f"{exp_w}x{exp_h} (after binning/ROI) and is not a uniform rescale of it")
        K, P = scale_intrinsics(K, sx, sy), scale_intrinsics(P, sx, sy)
        warnings.append(("camera_info_rescaled",
                         f"image {width}x{height} but camera_info describes {exp_w}x{exp_h}: "
                         f"intrinsics scaled by {sx:.4g}"))
    return CameraModel(int(width), int(height), K, P, D, model, R, tuple(warnings))


class Rectifier:
    """Removes lens distortion (and applies R) with maps cached per camera.

    ``rectify(rgb, cam)`` returns ``rgb`` itself for a camera that needs no rectification, else
    an undistorted ``H x W x 3`` uint8 image of the same size whose intrinsics are
    ``cam.output_K`` (``P[:, :3]``: the maps aim at P, as image_geometry's ``rectifyImage``;
    bilinear interpolation, black outside the lens' field of view). ``valid_mask(cam)`` says
    which of its pixels are image content (computed with the maps, once per camera).
    """

    def __init__(self):
        self._key: Optional[tuple] = None
        self._maps: Optional[Tuple[np.ndarray, np.ndarray]] = None
        self._valid: Optional[np.ndarray] = None

    def maps(self, cam: CameraModel) -> Tuple[np.ndarray, np.ndarray]:
        """``(map_x, map_y)`` float32 for ``cv2.remap`` (computed once per camera, with the
        validity mask of :meth:`valid_mask`)."""
        if cam.key() != self._key:
            size, newK = (cam.width, cam.height), cam.P[:, :3]
            D = np.asarray(cam.D, np.float64)
            if cam.distortion_model == "equidistant":
                maps = cv2.fisheye.initUndistortRectifyMap(cam.K, D[:4], cam.R, newK, size,
                                                           cv2.CV_32FC1)
            else:
                n = DISTORTION_MODELS.get(cam.distortion_model, 5)
                maps = cv2.initUndistortRectifyMap(cam.K, D[:n], cam.R, newK, size, cv2.CV_32FC1)
            # A rectified pixel is content only when every source pixel its bilinear
            # interpolation reads lies inside the raw image: remap an all-255 image with the
            # same maps and black border; anything below 255 took part of its value from the fill.
            full = np.full((cam.height, cam.width), 255, np.uint8)
            valid = cv2.remap(full, maps[0], maps[1], cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0) == 255
            self._maps, self._valid = maps, (None if valid.all() else valid)
            self._key = cam.key()
        return self._maps

    def valid_mask(self, cam: CameraModel) -> Optional[np.ndarray]:
        """``H x W`` bool, True where the rectified image of ``cam`` has a source pixel (no
        black fill in its interpolation); None when every pixel has one (no rectification, or
        a rectification that stays inside the raw image). Cached with the maps; do not modify."""
        if not cam.needs_rectification:
            return None
        self.maps(cam)
        return self._valid

    def rectify(self, rgb: np.ndarray, cam: CameraModel) -> np.ndarray:
        """See the class docstring."""
        if not cam.needs_rectification:
            return rgb
        mx, my = self.maps(cam)
        return cv2.remap(rgb, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def output_camera_info(cam: CameraModel) -> dict:
    """camera_info fields describing exactly the published depth image: its size, the
    intrinsics it was computed with, ``D`` zero (rectified or undistorted), ``R`` identity,
    ``P = [K | P's 4th column]``, no binning, empty ROI."""
    K = cam.output_K
    P = cam.P.copy() if cam.needs_rectification else np.hstack([K, cam.P[:, 3:]])
    n = len(cam.D) or DISTORTION_MODELS["plumb_bob"]
    return dict(width=cam.width, height=cam.height,
                distortion_model=cam.distortion_model or "plumb_bob",
                d=[0.0] * n, k=K.reshape(9).tolist(), r=np.eye(3).reshape(9).tolist(),
                p=P.reshape(12).tolist(), binning_x=0, binning_y=0)
