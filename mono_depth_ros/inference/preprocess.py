"""Image -> network input and network output -> image size, from a model's spec (ROS-free).

Two recipes, chosen by ``spec.preprocessing`` (:class:`~mono_depth_ros.models.spec.Preprocessing`):

* ``interpolation="area"`` (the package's own networks): OpenCV resize to ``input_size`` on the
  CPU (INTER_AREA when shrinking), then the tensor goes to the device;
* otherwise (Hugging Face models): the uint8 image goes to the model's device first and is
  resized there with torchvision / ``F.interpolate`` exactly as the model's ``transformers``
  image processor does (DPT keep-aspect rule with sides rounded to a multiple, GLPN
  floor-to-multiple, ZoeDepth reflect padding, Depth Pro normalise-then-resize).

Outputs go back to the image size with ``spec.preprocessing.output_interpolation`` (ZoeDepth's
padding is cut away again), as the processors' ``post_process_depth_estimation`` do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..models.spec import ModelSpec, Preprocessing


@dataclass(frozen=True)
class Prepared:
    """Network input and what the output resize needs.

    Attributes:
        x: ``1 x 3 x h x w`` float32 normalised input on the device.
        pad: ``(top/bottom, left/right)`` reflect padding in pixels of the image (ZoeDepth).
        window: ``(top, left, height, width)`` of the image the network saw (``focal_crop``
            view), or None for the whole image.
    """

    x: torch.Tensor
    pad: Tuple[int, int] = (0, 0)
    window: Optional[Tuple[int, int, int, int]] = None

    def seen_width(self, image_width: int) -> int:
        """Width in image pixels of what the network saw: the focal conversion's ``width``."""
        return self.window[3] if self.window else int(image_width)


def view_window(spec: ModelSpec, image_hw: Tuple[int, int], fx: Optional[float]
                ) -> Optional[Tuple[int, int, int, int]]:
    """``(top, left, height, width)`` of the ``focal_crop`` view, or None (``full`` view).

    The window is centred, ``fx / spec.train_focal`` pixels wide (the network then sees the
    training focal) and ``crop_aspect`` times as high, shrunk with its aspect kept until it
    fits the image.

    Raises:
        ValueError: ``focal_crop`` without a positive ``fx`` or a ``train_focal``.
    """
    pp = spec.preprocessing
    if pp.view != "focal_crop":
        return None
    if not (fx and fx > 0 and spec.train_focal):
        raise ValueError(f"{spec.name}: the focal_crop view needs the camera's fx > 0 and the "
                         f"model's train_focal (got fx={fx}, train_focal={spec.train_focal})")
    H, W = int(image_hw[0]), int(image_hw[1])
    w = min(float(fx) / float(spec.train_focal), W, H / float(pp.crop_aspect))
    h = w * float(pp.crop_aspect)
    w, h = max(1, min(W, int(round(w)))), max(1, min(H, int(round(h))))
    return (H - h) // 2, (W - w) // 2, h, w


def crop_to_view(image, spec: ModelSpec, fx: Optional[float]):
    """``(view, window)``: the part of an ``H x W x 3`` image (numpy or tensor) the network is
    fed under the spec's view, and its :func:`view_window` (None: the whole image, unchanged).

    Raises:
        ValueError: as :func:`view_window`.
    """
    window = view_window(spec, image.shape[:2], fx)
    if window is None:
        return image, None
    top, left, h, w = window
    return image[top:top + h, left:left + w], window


def normalize_images(rgb: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """Network input from images: ``B x H x W x 3`` uint8 RGB (any device) -> ``B x 3 x H x W``
    float32 in the spec's channel order, scaled to ``[0, 1]`` and normalised with its mean/std.
    The one place both inference and training prepare images."""
    if spec.channel_order == "BGR":
        rgb = rgb.flip(-1)
    x = rgb.permute(0, 3, 1, 2).float().div_(255.0)
    return _normalize(x, spec)


def _normalize(x: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    mean = torch.tensor(spec.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def _to_multiple(value: float, multiple: int) -> int:
    # transformers' constrain_to_multiple_of (round half to even, never below one multiple)
    x = round(value / multiple) * multiple
    return int(x if x > 0 else math.ceil(value / multiple) * multiple)


def network_size(image_hw: Tuple[int, int], target_hw: Tuple[int, int], pp: Preprocessing
                 ) -> Tuple[int, int]:
    """Network input ``(h, w)`` for an image of ``image_hw`` under resize rule ``pp.resize``.

    ``keep_aspect`` follows transformers' DPT/ZoeDepth rule: of the two scale factors that reach
    ``target_hw``, use the one closer to 1 for both sides ("scale as little as possible"), then
    round each side to a multiple of ``pp.multiple``. E.g. 480x640 with Depth Anything's 518 and
    multiple 14 gives 518x686.
    """
    H, W = image_hw
    if pp.resize == "stretch":
        return tuple(target_hw)
    if pp.resize == "floor_multiple":
        m = pp.multiple
        return (max(H // m, 1) * m, max(W // m, 1) * m)
    sh, sw = target_hw[0] / H, target_hw[1] / W
    if abs(1 - sw) < abs(1 - sh):
        sh = sw
    else:
        sw = sh
    return _to_multiple(sh * H, pp.multiple), _to_multiple(sw * W, pp.multiple)


def reflect_padding(image_hw: Tuple[int, int]) -> Tuple[int, int]:
    """ZoeDepth's reflect padding ``(pad_h, pad_w) = int(sqrt(side / 2) * 3)``."""
    return int(np.sqrt(image_hw[0] / 2) * 3), int(np.sqrt(image_hw[1] / 2) * 3)


def prepare(rgb: np.ndarray, spec: ModelSpec, target_hw: Tuple[int, int],
            device: torch.device, fx: Optional[float] = None) -> Prepared:
    """Network input for one ``H x W x 3`` uint8 RGB image (see the module docstring).

    Args:
        rgb: ``H x W x 3`` uint8 RGB (numpy; or a tensor already on the device for the recipes
            that resize there, see :class:`~mono_depth_ros.inference.device_path.DeviceFrame`).
        spec: the model's contract (channel order, mean/std, preprocessing recipe).
        target_hw: the network size to aim at (``spec.input_size`` or a user override).
        device: where the model runs (the resize runs there too, except for ``area``).
        fx: the camera's focal length in pixels (needed by the ``focal_crop`` view only).

    Returns:
        :class:`Prepared` with ``x`` of shape ``1 x 3 x h x w`` (float32).

    Raises:
        ValueError: the ``focal_crop`` view without ``fx`` (:func:`view_window`).
    """
    view, window = crop_to_view(rgb, spec, fx)
    prepared = _prepare_image(view, spec, target_hw, device)
    return Prepared(prepared.x, prepared.pad, window)


def _prepare_image(rgb, spec: ModelSpec, target_hw: Tuple[int, int], device: torch.device
                   ) -> Prepared:
    """:func:`prepare` of the whole of ``rgb`` (the view already applied)."""
    pp = spec.preprocessing
    H, W = rgb.shape[:2]
    if not pp.on_device:
        h, w = network_size((H, W), target_hw, pp)
        interp = cv2.INTER_AREA if H > h else cv2.INTER_LINEAR
        img = cv2.resize(rgb, (w, h), interpolation=interp)
        return Prepared(normalize_images(torch.from_numpy(img).unsqueeze(0).to(device), spec))
    t = (rgb if isinstance(rgb, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(rgb))
         ).to(device).permute(2, 0, 1).unsqueeze(0)
    if spec.channel_order == "BGR":
        t = t.flip(1)
    if pp.normalize_first:  # Depth Pro, ZoeDepth: float image, (padding), then resize
        x = _normalize(t.float() / 255.0, spec)
        pad = reflect_padding((H, W)) if pp.reflect_pad else (0, 0)
        if pad != (0, 0):
            x = F.pad(x, (pad[1], pad[1], pad[0], pad[0]), mode="reflect")
        size = network_size(tuple(x.shape[-2:]), target_hw, pp)
        corners = pp.align_corners if pp.interpolation in ("bilinear", "bicubic") else None
        x = F.interpolate(x, size=size, mode=pp.interpolation, align_corners=corners,
                          antialias=pp.antialias)
        return Prepared(x, pad)
    # DPT / Depth Anything / GLPN: resize the uint8 image (torchvision rounds back to uint8)
    from torchvision.transforms.v2 import functional as tvF
    mode = tvF.InterpolationMode(pp.interpolation)
    size = network_size((H, W), target_hw, pp)
    t = tvF.resize(t, list(size), interpolation=mode, antialias=pp.antialias)
    return Prepared(_normalize(t.float() / 255.0, spec))


def restore(out: torch.Tensor, prepared: Prepared, image_hw: Tuple[int, int], spec: ModelSpec
            ) -> torch.Tensor:
    """Resize a ``B x C x h x w`` output map back to ``image_hw`` (float32), cutting away the
    reflect padding of :func:`prepare`; a ``focal_crop`` window is resized to its place and
    every pixel outside it takes the nearest window pixel's value (replicate padding)."""
    if prepared.window is not None:
        top, left, h, w = prepared.window
        inner = restore(out, Prepared(prepared.x, prepared.pad), (h, w), spec)
        H, W = image_hw
        return F.pad(inner, (left, W - left - w, top, H - top - h), mode="replicate")
    pad_h, pad_w = prepared.pad
    H, W = image_hw
    up = F.interpolate(out.float(), size=(H + 2 * pad_h, W + 2 * pad_w),
                       mode=spec.preprocessing.output_interpolation, align_corners=False)
    return up[..., pad_h:pad_h + H, pad_w:pad_w + W]
