"""Joint, geometry-preserving augmentations of a :class:`~.datasets.Sample` (ROS-free).

The augmentations used by the depth papers the project follows (Eigen et al. 2014, Godard et
al. 2017, BTS, AdaBins): random horizontal flip, small rotation, random crop and a brightness
gain. Every geometric operation moves ``rgb``, ``depth``, ``labels`` and ``rgb_right`` together
and returns a new Sample whose ``K`` (and ``pose``) still describe the pixels exactly:

- :func:`hflip` - mirror the columns; ``cx -> W - 1 - cx`` (pixel centres at integer
  coordinates), the skew changes sign and ``pose`` gets the reflection ``diag(-1, 1, 1, 1)``
  (a mirrored world; not a rigid transform). Stereo pairs (``rgb_right`` set): mirroring puts
  the partner camera on the other side, so by default (``stereo="swap"``, Godard et al.) the
  flipped right image becomes the primary view and the flipped left the partner, keeping the
  partner to the right (``baseline`` unchanged); ``depth``, ``labels`` and ``pose`` belonged to
  the old primary camera and are dropped (``None``). ``stereo="mirror"`` keeps the primary
  camera and its depth / labels and negates ``baseline`` instead.
- :func:`rotate` - roll the camera about its optical axis by ``angle`` degrees: pixels move by
  ``K Rz K^-1`` (a rotation about the principal point ``(cx, cy)``), so ``K`` is unchanged and
  depth values (the z coordinate) are unchanged; ``pose`` is updated. Image bilinear, depth and
  labels nearest; pixels rotated in from outside are black / NaN depth / ``ignore_label``.
  On a stereo pair both images are rotated alike, but the pair is then no longer row-aligned,
  so :class:`JointAugment` skips rotation for stereo samples unless ``rotate_stereo``.
- :func:`crop` - a window; ``cx -= left``, ``cy -= top``.
- :func:`adjust_brightness` - ``rgb`` (and ``rgb_right``) times a gain, clipped; geometry,
  depth and labels untouched.
- :func:`zoom` - crop a window and resize it back to an output size (focal augmentation): K is
  cropped and scaled (``fx``, ``fy`` grow by the zoom), so ``fx / W`` changes while depth
  values do not; with a model's focal normalisation (``ModelSpec.train_focal``) the trainer
  converts such depth to the training camera (``training.trainer``).

Photometric, image-only augmentations on ``H x W x 3`` uint8 arrays (sensor realism for
rendered frames; the geometry, depth and labels are untouched), each drawn from a
``numpy.random.Generator``:

- :func:`color_jitter` - brightness, contrast, saturation and hue (torchvision's ColorJitter
  semantics, in OpenCV HSV);
- :func:`sensor_noise` - signal-dependent (shot) plus read noise, per pixel and channel;
- :func:`blur` - Gaussian (defocus) or a short linear motion blur;
- :func:`jpeg_artifacts` - JPEG encode / decode at a random quality.

:class:`PhotometricAugment` applies them with probabilities (:class:`PhotometricConfig`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import cv2
import numpy as np

from ..core.geometry import scale_intrinsics
from .datasets import Sample

#: Label value for pixels without a label (rotated in from outside the image).
IGNORE_LABEL = 255


def _flip_arr(a: Optional[np.ndarray]) -> Optional[np.ndarray]:
    return None if a is None else np.ascontiguousarray(a[:, ::-1])


def hflip(sample: Sample, stereo: str = "swap") -> Sample:
    """Mirror ``sample`` left-right (module docstring).

    Args:
        stereo: ``"swap"`` or ``"mirror"``, for samples with ``rgb_right``.

    Raises:
        ValueError: unknown ``stereo`` mode.
    """
    if stereo not in ("swap", "mirror"):
        raise ValueError(f"stereo must be 'swap' or 'mirror', got {stereo!r}")
    w = sample.rgb.shape[1]
    K = np.array(sample.K, dtype=np.float64, copy=True)
    K[0, 2] = (w - 1) - K[0, 2]
    K[0, 1] = -K[0, 1]
    if sample.rgb_right is not None and stereo == "swap":
        return dataclasses.replace(sample, rgb=_flip_arr(sample.rgb_right), rgb_right=_flip_arr(sample.rgb),
                                   depth=None, labels=None, pose=None, K=K)
    pose = None
    if sample.pose is not None:
        pose = np.asarray(sample.pose, np.float64) @ np.diag([-1.0, 1.0, 1.0, 1.0])
    baseline = sample.baseline
    if sample.rgb_right is not None and baseline is not None:
        baseline = -baseline
    return dataclasses.replace(sample, rgb=_flip_arr(sample.rgb), depth=_flip_arr(sample.depth),
                               labels=_flip_arr(sample.labels), rgb_right=_flip_arr(sample.rgb_right),
                               K=K, pose=pose, baseline=baseline)


def rotation_matrix(K: np.ndarray, angle_deg: float) -> Tuple[np.ndarray, np.ndarray]:
    """``(A, Rz)``: the ``2 x 3`` pixel map ``(K Rz K^-1)[:2]`` of a camera roll by ``angle_deg``
    (positive = image content turns counter-clockwise on screen, as ``cv2.getRotationMatrix2D``)
    and the ``3 x 3`` rotation taking old camera coordinates to new ones."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    Rz = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    K = np.asarray(K, np.float64)
    return (K @ Rz @ np.linalg.inv(K))[:2], Rz


def rotate(sample: Sample, angle_deg: float, ignore_label: int = IGNORE_LABEL) -> Sample:
    """Roll the camera by ``angle_deg`` about its optical axis (module docstring); K unchanged."""
    h, w = sample.rgb.shape[:2]
    A, Rz = rotation_matrix(sample.K, angle_deg)

    def warp(img, interp, border):
        if img is None:
            return None
        return cv2.warpAffine(img, A, (w, h), flags=interp, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=border)

    depth = None
    if sample.depth is not None:
        depth = warp(np.ascontiguousarray(sample.depth, dtype=np.float32), cv2.INTER_NEAREST, float("nan"))
    pose = None
    if sample.pose is not None:
        R4 = np.eye(4)
        R4[:3, :3] = Rz.T
        pose = np.asarray(sample.pose, np.float64) @ R4
    return dataclasses.replace(
        sample, rgb=warp(sample.rgb, cv2.INTER_LINEAR, (0, 0, 0)), depth=depth,
        labels=warp(sample.labels, cv2.INTER_NEAREST, int(ignore_label)),
        rgb_right=warp(sample.rgb_right, cv2.INTER_LINEAR, (0, 0, 0)),
        K=np.array(sample.K, dtype=np.float64, copy=True), pose=pose)


def crop(sample: Sample, top: int, left: int, height: int, width: int) -> Sample:
    """The window ``[top, top + height) x [left, left + width)``; K's principal point shifts.

    Raises:
        ValueError: the window is empty or leaves the image.
    """
    h, w = sample.rgb.shape[:2]
    if height <= 0 or width <= 0 or top < 0 or left < 0 or top + height > h or left + width > w:
        raise ValueError(f"crop {height}x{width} at ({top}, {left}) outside the {h}x{w} image")
    sl = (slice(top, top + height), slice(left, left + width))

    def cut(a):
        return None if a is None else np.ascontiguousarray(a[sl])

    K = np.array(sample.K, dtype=np.float64, copy=True)
    K[0, 2] -= left
    K[1, 2] -= top
    return dataclasses.replace(sample, rgb=cut(sample.rgb), depth=cut(sample.depth), labels=cut(sample.labels),
                               rgb_right=cut(sample.rgb_right), K=K)


def adjust_brightness(sample: Sample, gain: float) -> Sample:
    """``rgb`` (and ``rgb_right``) times ``gain``, rounded and clipped to 0..255."""
    def scale(img):
        if img is None:
            return None
        return np.clip(np.rint(img.astype(np.float32) * np.float32(gain)), 0, 255).astype(np.uint8)
    return dataclasses.replace(sample, rgb=scale(sample.rgb), rgb_right=scale(sample.rgb_right))


def zoom(sample: Sample, top: int, left: int, height: int, width: int,
         out_size: Optional[Tuple[int, int]] = None) -> Sample:
    """Crop ``[top, top + height) x [left, left + width)`` and resize it to ``out_size``
    ``(h, w)`` (default: the input size): a narrower field of view at the same resolution.

    RGB is resized with area / linear interpolation, depth and labels with nearest neighbour
    (holes stay holes, values stay values: z-depth does not change under a zoom). K: the crop
    shifts the principal point, the resize scales row 0 by ``w / width`` and row 1 by
    ``h / height`` (pixel centres at integer coordinates: ``c' = (c + 0.5) s - 0.5``).

    Raises:
        ValueError: the window is empty or leaves the image, or ``out_size`` is not positive.
    """
    h0, w0 = sample.rgb.shape[:2]
    oh, ow = (h0, w0) if out_size is None else (int(out_size[0]), int(out_size[1]))
    if oh <= 0 or ow <= 0:
        raise ValueError(f"out_size must be positive, got {out_size}")
    c = crop(sample, top, left, height, width)
    sx, sy = ow / width, oh / height

    def rs(a, interp):
        if a is None:
            return None
        return cv2.resize(a, (ow, oh), interpolation=interp)

    up = cv2.INTER_LINEAR if sx > 1 or sy > 1 else cv2.INTER_AREA
    K = scale_intrinsics(c.K, sx, sy)
    depth = None if c.depth is None else rs(np.ascontiguousarray(c.depth, np.float32), cv2.INTER_NEAREST)
    return dataclasses.replace(c, rgb=rs(c.rgb, up), depth=depth, labels=rs(c.labels, cv2.INTER_NEAREST),
                               rgb_right=rs(c.rgb_right, up), K=K)


# ------------------------------------------------------------------------------ photometric
def _u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def color_jitter(rgb: np.ndarray, rng: np.random.Generator, brightness: float = 0.25,
                 contrast: float = 0.25, saturation: float = 0.3, hue: float = 0.03) -> np.ndarray:
    """Random brightness, contrast, saturation (factors in ``[1 - x, 1 + x]``) and hue shift
    (fraction of a turn in ``[-hue, hue]``), applied in a random order, as torchvision's
    ``ColorJitter``. ``H x W x 3`` uint8 RGB in and out.

    Raises:
        ValueError: not an ``H x W x 3`` uint8 image.
    """
    _check_rgb(rgb)
    img = rgb.astype(np.float32)
    ops = rng.permutation(4)
    factors = [rng.uniform(1 - brightness, 1 + brightness), rng.uniform(1 - contrast, 1 + contrast),
               rng.uniform(1 - saturation, 1 + saturation), rng.uniform(-hue, hue)]
    for op in ops:
        f = float(factors[op])
        if op == 0:
            img = img * f
        elif op == 1:
            mean = float((img @ np.array([0.299, 0.587, 0.114], np.float32)).mean())
            img = (img - mean) * f + mean
        elif op == 2:
            grey = (img @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
            img = (img - grey) * f + grey
        elif f != 0.0:
            hsv = cv2.cvtColor(_u8(img), cv2.COLOR_RGB2HSV_FULL)
            hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + int(round(f * 256))) % 256).astype(np.uint8)
            img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL).astype(np.float32)
        img = np.clip(img, 0, 255)
    return _u8(img)


def sensor_noise(rgb: np.ndarray, rng: np.random.Generator, shot: float = 0.02,
                 read: float = 3.0) -> np.ndarray:
    """Signal-dependent plus signal-independent Gaussian noise: standard deviation
    ``sqrt(shot * 255 * I + read^2)`` grey levels per pixel and channel (a Poisson-Gaussian
    sensor model at the gain drawn by the caller). uint8 RGB in and out."""
    _check_rgb(rgb)
    img = rgb.astype(np.float32)
    sigma = np.sqrt(shot * 255.0 * img + read ** 2)
    return _u8(img + sigma * rng.standard_normal(img.shape, dtype=np.float32))


def blur(rgb: np.ndarray, rng: np.random.Generator, max_sigma: float = 1.5,
         max_motion: int = 7, motion_prob: float = 0.4) -> np.ndarray:
    """Gaussian blur (sigma in ``[0.5, max_sigma]`` px, defocus) or, with ``motion_prob``, a
    linear motion blur of 3..``max_motion`` px at a random angle. uint8 RGB in and out."""
    _check_rgb(rgb)
    if rng.random() < motion_prob and max_motion >= 3:
        n = int(rng.integers(3, max_motion + 1))
        k = np.zeros((n, n), np.float32)
        k[n // 2, :] = 1.0
        R = cv2.getRotationMatrix2D(((n - 1) / 2, (n - 1) / 2), float(rng.uniform(0, 180)), 1.0)
        k = cv2.warpAffine(k, R, (n, n))
        k /= max(float(k.sum()), 1e-6)
        return cv2.filter2D(rgb, -1, k, borderType=cv2.BORDER_REFLECT)
    return cv2.GaussianBlur(rgb, (0, 0), float(rng.uniform(0.5, max_sigma)))


def jpeg_artifacts(rgb: np.ndarray, rng: np.random.Generator, quality: Tuple[int, int] = (30, 90)
                   ) -> np.ndarray:
    """JPEG encode and decode at a quality drawn from ``quality`` (inclusive). uint8 RGB.

    Raises:
        ValueError: not an ``H x W x 3`` uint8 image, or the codec failed.
    """
    _check_rgb(rgb)
    q = int(rng.integers(quality[0], quality[1] + 1))
    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def _check_rgb(rgb: np.ndarray) -> None:
    if not (isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8):
        raise ValueError(f"expected an H x W x 3 uint8 image, got "
                         f"{getattr(rgb, 'shape', None)} {getattr(rgb, 'dtype', type(rgb))}")


@dataclass
class PhotometricConfig:
    """Probabilities of the photometric augmentations (0 = off), applied in this order:
    colour jitter, blur, sensor noise, JPEG."""

    jitter_prob: float = 0.8
    blur_prob: float = 0.3
    noise_prob: float = 0.5
    jpeg_prob: float = 0.5

    def __post_init__(self):
        for name in ("jitter_prob", "blur_prob", "noise_prob", "jpeg_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")


class PhotometricAugment:
    """Random photometric augmentation of uint8 RGB images (module docstring).

    Args:
        config: :class:`PhotometricConfig`.
        seed: seed or ``numpy.random.Generator``.
    """

    STEPS = (("jitter_prob", color_jitter), ("blur_prob", blur), ("noise_prob", sensor_noise),
             ("jpeg_prob", jpeg_artifacts))

    def __init__(self, config: Optional[PhotometricConfig] = None,
                 seed: Union[None, int, np.random.Generator] = None):
        self.config = config or PhotometricConfig()
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        for prob, fn in self.STEPS:
            if self.rng.random() < getattr(self.config, prob):
                rgb = fn(rgb, self.rng)
        return rgb


@dataclass
class AugmentConfig:
    """What :class:`JointAugment` draws per sample.

    Attributes:
        flip_prob: probability of :func:`hflip`.
        stereo_flip: ``"swap"`` or ``"mirror"`` (see :func:`hflip`).
        rotate_deg: rotation angle drawn uniformly from ``[-rotate_deg, rotate_deg]``; 0 off.
        rotate_prob: probability of rotating (when ``rotate_deg > 0``).
        rotate_stereo: rotate stereo samples too (breaks row alignment of the pair).
        crop_size: ``(h, w)`` of a random crop, or ``None``.
        brightness: ``(lo, hi)`` gain range, or ``None``.
        ignore_label: label for pixels rotated in from outside.
    """

    flip_prob: float = 0.5
    stereo_flip: str = "swap"
    rotate_deg: float = 5.0
    rotate_prob: float = 1.0
    rotate_stereo: bool = False
    crop_size: Optional[Tuple[int, int]] = None
    brightness: Optional[Tuple[float, float]] = (0.8, 1.2)
    ignore_label: int = IGNORE_LABEL

    def __post_init__(self):
        for name in ("flip_prob", "rotate_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.stereo_flip not in ("swap", "mirror"):
            raise ValueError(f"stereo_flip must be 'swap' or 'mirror', got {self.stereo_flip!r}")
        if self.rotate_deg < 0:
            raise ValueError("rotate_deg must be >= 0")
        if self.brightness is not None and not 0 <= self.brightness[0] <= self.brightness[1]:
            raise ValueError(f"brightness must be (lo, hi) with 0 <= lo <= hi, got {self.brightness}")
        if self.crop_size is not None and min(self.crop_size) <= 0:
            raise ValueError(f"crop_size must be positive, got {self.crop_size}")


class JointAugment:
    """Random joint augmentation of Samples: flip, rotate, crop, brightness (in that order).

    Args:
        config: :class:`AugmentConfig` (default: flip 0.5, rotation +-5 deg, brightness
            x[0.8, 1.2], no crop).
        seed: seed or ``numpy.random.Generator``; equal seeds give equal draws.

    Calling it on a Sample returns a new Sample (the input is not modified).

    Raises:
        ValueError: (on call) ``crop_size`` larger than the image.
    """

    def __init__(self, config: Optional[AugmentConfig] = None,
                 seed: Union[None, int, np.random.Generator] = None):
        self.config = config or AugmentConfig()
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def __call__(self, sample: Sample) -> Sample:
        c, rng = self.config, self.rng
        if rng.random() < c.flip_prob:
            sample = hflip(sample, c.stereo_flip)
        if c.rotate_deg > 0 and (sample.rgb_right is None or c.rotate_stereo) and rng.random() < c.rotate_prob:
            sample = rotate(sample, float(rng.uniform(-c.rotate_deg, c.rotate_deg)), c.ignore_label)
        if c.crop_size is not None:
            ch, cw = c.crop_size
            h, w = sample.rgb.shape[:2]
            if ch > h or cw > w:
                raise ValueError(f"crop_size {c.crop_size} larger than the {h}x{w} image")
            sample = crop(sample, int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw)
        if c.brightness is not None:
            sample = adjust_brightness(sample, float(rng.uniform(*c.brightness)))
        return sample
