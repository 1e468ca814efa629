"""Depth with embedded semantic segmentation (Valdez-Rodríguez et al., Sensors 2022).

Implements the networks of Valdez-Rodríguez et al., "Improving Depth Estimation by Embedding
Semantic Segmentation: A Hybrid CNN Model", Sensors 2022, trained on SYNTHIA-AL street scenes:

* ``unet_seg``: the original U-Net (Ronneberger et al., MICCAI 2015) predicting the one-hot
  encoded semantic segmentation (OHES): 14 sigmoid planes, one per :data:`SYNTHIA_CLASSES`.
* ``scrx_rgb`` / ``scrx_ohes``: the SCRX net (global residual feature extractor + refinement
  stage) on RGB or on RGB + OHES.
* ``cnn3d_s`` / ``cnn3d_s_relu``: a LeNet-like stack of seven 3D convolutions over the 17-plane
  RGB + OHES volume.
* ``cnn3d_up`` / ``cnn3d_up_do``: 3D convolutional encoder + 3D deconvolution decoder over the
  same volume (``_do``: with dropout 0.5).
* ``ssegdep_net``: the hybrid: ``unet_seg`` predicts the OHES from RGB, ``cnn3d_up`` predicts
  depth from RGB + predicted OHES, in one forward.

All of them take raw ``[0, 1]`` RGB (spec mean 0, std 1) and predict depth normalised to
``[0, 1]`` over ``depth_range`` (0-80 m for SYNTHIA-style street scenes).

The 3D nets treat the 17 input planes (R, G, B, then the 14 OHES planes) as the depth axis of a
``Conv3d`` volume ``B x 1 x 17 x H x W`` (:func:`build_ohes_volume`); their convolutions use no
padding along that axis so it shrinks to one plane by the output.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from .layers import resize_to
from .encoders import PretrainedWeightsUnavailable
from .registry import create_model, register_model
from .spec import ModelSpec

#: SYNTHIA-AL classes in OHES plane order (plane ``i`` of the segmentation is class ``i``).
SYNTHIA_CLASSES = (
    "Miscellaneous", "Sky", "Building", "Road", "Sidewalk", "Fence", "Vegetation", "Pole",
    "Vehicle", "Sign", "Pedestrian", "Cyclist", "Lanemark", "Traffic light",
)

#: RGB display colour (uint8 triples) per class of :data:`SYNTHIA_CLASSES`, following the
#: SYNTHIA label colour convention.
SYNTHIA_PALETTE = (
    (0, 0, 0),        # Miscellaneous (void)
    (128, 128, 128),  # Sky
    (128, 0, 0),      # Building
    (128, 64, 128),   # Road
    (0, 0, 192),      # Sidewalk
    (64, 64, 128),    # Fence
    (128, 128, 0),    # Vegetation
    (192, 192, 128),  # Pole
    (64, 0, 128),     # Vehicle
    (192, 128, 128),  # Sign
    (64, 64, 0),      # Pedestrian
    (0, 128, 192),    # Cyclist
    (0, 172, 0),      # Lanemark
    (0, 128, 128),    # Traffic light
)

NUM_CLASSES = len(SYNTHIA_CLASSES)
#: Planes of the 3D nets' input volume: RGB followed by the OHES planes.
VOLUME_PLANES = 3 + NUM_CLASSES

_CITATION = ("Valdez-Rodríguez et al., 'Improving Depth Estimation by Embedding Semantic "
             "Segmentation: A Hybrid CNN Model', Sensors 2022")
_RAW_MEAN = (0.0, 0.0, 0.0)
_RAW_STD = (1.0, 1.0, 1.0)
_STREET_RANGE = (0.0, 80.0)


def build_ohes_volume(rgb: torch.Tensor, ohes: torch.Tensor) -> torch.Tensor:
    """Stack RGB and the OHES planes into the 3D nets' input volume.

    Args:
        rgb: ``B x 3 x H x W`` float image in ``[0, 1]``.
        ohes: ``B x 14 x H x W`` float one-hot (or probability) planes in ``[0, 1]``, in
            :data:`SYNTHIA_CLASSES` order.

    Returns:
        ``B x 1 x 17 x H x W`` volume (one input channel, 17 planes along the Conv3d depth axis).

    Raises:
        ValueError: wrong channel counts, or batch / spatial sizes that differ.
    """
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"rgb must be B x 3 x H x W, got {tuple(rgb.shape)}")
    if ohes.dim() != 4 or ohes.shape[1] != NUM_CLASSES:
        raise ValueError(f"ohes must be B x {NUM_CLASSES} x H x W, got {tuple(ohes.shape)}")
    if rgb.shape[0] != ohes.shape[0] or rgb.shape[-2:] != ohes.shape[-2:]:
        raise ValueError(f"rgb {tuple(rgb.shape)} and ohes {tuple(ohes.shape)} do not match")
    return torch.cat([rgb, ohes.to(rgb.dtype)], dim=1).unsqueeze(1)


def _check_input(x: torch.Tensor, channels: int, name: str) -> None:
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} expects B x {channels} x H x W input, got {tuple(x.shape)}")



def _load_whole_model(model: nn.Module, name: str, pretrained: Union[bool, str, os.PathLike]):
    """Apply ``pretrained`` to a model that has no ImageNet encoder.

    ``True`` cannot be honoured (no published weights ship with this package) and raises instead
    of silently keeping a random initialisation; a path loads a full state dict strictly.
    """
    if not pretrained:
        return model
    if pretrained is True:
        raise PretrainedWeightsUnavailable(
            f"{name} has no pretrained weights on this machine (nothing is downloaded); train it "
            f"or load a checkpoint with create_model({name!r}, checkpoint=...)")
    path = Path(pretrained)
    if not path.is_file():
        raise PretrainedWeightsUnavailable(f"{name} weights file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state.get("state_dict", state), strict=True)
    return model


# --------------------------------------------------------------------------------------------
# U-Net (semantic segmentation)
# --------------------------------------------------------------------------------------------

class _DoubleConv(nn.Sequential):
    """Two 3x3 conv + ReLU (U-Net's unit). 'same' padding so the 320x192 maps keep their size."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))


class UNetSeg(nn.Module):
    """U-Net predicting the 14-plane OHES (Ronneberger et al. 2015, as used by Valdez-Rodríguez).

    Contracting path of four 2x2 max-pools with two 3x3 conv + ReLU per level (``base_channels``
    doubling to ``16 * base_channels``), dropout at the end of the contracting path, expanding
    path of 2x2 up-convolutions + concatenation + two 3x3 conv + ReLU, 1x1 conv to
    ``num_classes`` planes and a sigmoid (one independent probability per class, trained with
    binary cross-entropy).

    Input ``B x in_channels x H x W`` float32 raw RGB in ``[0, 1]``; H, W multiples of 16 keep
    every level aligned (other sizes are resized to the skip maps).

    Returns:
        ``{"segmentation": B x num_classes x H x W}`` float32 probabilities in ``[0, 1]``, and
        ``"segmentation_logits"`` (same shape, pre-sigmoid, the autocast dtype) for the loss.

    Raises:
        ValueError: input with another channel count than ``in_channels``.
    """

    def __init__(self, base_channels: int = 64, in_channels: int = 3,
                 num_classes: int = NUM_CLASSES, dropout: float = 0.5):
        super().__init__()
        w = [base_channels * 2 ** i for i in range(5)]
        self.in_channels = in_channels
        self.down = nn.ModuleList([_DoubleConv(in_channels, w[0])] +
                                  [_DoubleConv(w[i], w[i + 1]) for i in range(4)])
        self.drop = nn.Dropout(dropout)
        self.up = nn.ModuleList(nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2)
                                for i in reversed(range(4)))
        self.fuse = nn.ModuleList(_DoubleConv(2 * w[i], w[i]) for i in reversed(range(4)))
        self.head = nn.Conv2d(w[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``B x C x H x W`` image -> ``{"segmentation": B x 14 x H x W}`` probabilities."""
        _check_input(x, self.in_channels, "unet_seg")
        skips = []
        y = x
        for i, block in enumerate(self.down):
            if i:
                y = F.max_pool2d(y, 2)
            y = block(y)
            skips.append(y)
        y = self.drop(y)
        for up, fuse, skip in zip(self.up, self.fuse, reversed(skips[:-1])):
            y = resize_to(up(y), skip.shape[-2:])
            y = fuse(torch.cat([skip, y], dim=1))
        y = resize_to(self.head(y), x.shape[-2:])
        # float32 sigmoid: in float16 it rounds to exactly 0 / 1 well inside the logit range
        return {"segmentation": torch.sigmoid(y.float()), "segmentation_logits": y}


# --------------------------------------------------------------------------------------------
# SCRX
# --------------------------------------------------------------------------------------------

class _ResBlock(nn.Module):
    """Residual block: two 3x3 conv (ReLU between), identity or 1x1 projection shortcut, ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.short = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        return F.relu(y + self.short(x))


class SCRX(nn.Module):
    """SCRX net: global residual depth estimate + refinement stage (Valdez-Rodríguez 2022).

    Feature extraction: four residual blocks (3x3 convs, ReLU; 2x2 max-pool after the first two)
    and a 3x3 conv + sigmoid giving a global depth map at 1/4 resolution. Refinement: two
    3x3 conv + ReLU blocks, each followed by a 2x2 max-pool, on the input; their features are
    concatenated with the global map and a 3x3 conv + sigmoid gives the refined map, bilinearly
    upsampled to the input size.

    Input ``B x in_channels x H x W`` float32: raw RGB in ``[0, 1]`` (3 channels) or RGB + 14
    OHES planes (17 channels); H, W multiples of 4 keep both branches aligned.

    Returns:
        ``B x 1 x H x W`` float32 depth normalised to ``[0, 1]`` (spec ``depth_range``).

    Raises:
        ValueError: input with another channel count than ``in_channels``.
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 64):
        super().__init__()
        b = base_channels
        self.in_channels = in_channels
        self.res = nn.ModuleList([_ResBlock(in_channels, b), _ResBlock(b, 2 * b),
                                  _ResBlock(2 * b, 4 * b), _ResBlock(4 * b, 4 * b)])
        self.global_out = nn.Conv2d(4 * b, 1, 3, padding=1)
        self.refine = nn.ModuleList([nn.Conv2d(in_channels, b, 3, padding=1),
                                     nn.Conv2d(b, b, 3, padding=1)])
        self.out = nn.Conv2d(b + 1, 1, 3, padding=1)

    def forward_global(self, x: torch.Tensor) -> torch.Tensor:
        """Global (coarse) estimate: ``B x 1 x H/4 x W/4`` in ``[0, 1]``."""
        y = x
        for i, block in enumerate(self.res):
            y = block(y)
            if i < 2:
                y = F.max_pool2d(y, 2)
        return torch.sigmoid(self.global_out(y))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``B x C x H x W`` -> ``B x 1 x H x W`` normalised depth in ``[0, 1]``."""
        _check_input(x, self.in_channels, "scrx")
        coarse = self.forward_global(x)
        f = x
        for conv in self.refine:
            f = F.max_pool2d(F.relu(conv(f)), 2)
        coarse = resize_to(coarse, f.shape[-2:])
        y = torch.sigmoid(self.out(torch.cat([f, coarse], dim=1)))
        return resize_to(y, x.shape[-2:])


# --------------------------------------------------------------------------------------------
# 3D CNNs over the RGB + OHES volume
# --------------------------------------------------------------------------------------------

def _positive_bias(layer: nn.Module, value: float = 0.5) -> None:
    # A ReLU output starting negative everywhere would pass no gradient: start at mid-range.
    nn.init.constant_(layer.bias, value)


def _conv3d(cin: int, cout: int, spatial_stride: int = 1) -> nn.Conv3d:
    # 3x3x3 kernels, unpadded along the plane axis: every layer removes two of the 17 planes.
    return nn.Conv3d(cin, cout, 3, stride=(1, spatial_stride, spatial_stride), padding=(0, 1, 1))


def _as_volume(x: torch.Tensor, name: str) -> torch.Tensor:
    _check_input(x, VOLUME_PLANES, name)
    return build_ohes_volume(x[:, :3], x[:, 3:])


class CNN3DS(nn.Module):
    """LeNet-like 3D CNN: seven 3x3x3 convolutions then a max-pool (Valdez-Rodríguez 2022).

    The six hidden convolutions use ReLU; the seventh outputs one channel and is followed by a
    ``3 x 2 x 2`` max-pool that merges the last three planes and halves H, W, then the output
    activation (sigmoid, or ReLU for ``cnn3d_s_relu``) and a bilinear upsampling to the input.

    Input ``B x 17 x H x W`` float32 (raw RGB in ``[0, 1]`` + 14 OHES planes), H, W even.

    Returns:
        ``B x 1 x H x W`` float32 normalised depth (``[0, 1]`` with sigmoid, ``>= 0`` with ReLU).

    Raises:
        ValueError: input not ``B x 17 x H x W``.
    """

    def __init__(self, base_channels: int = 16, last_activation: str = "sigmoid"):
        super().__init__()
        if last_activation not in ("sigmoid", "relu"):
            raise ValueError(f"last_activation must be sigmoid or relu, got {last_activation!r}")
        b = base_channels
        widths = [1, b, b, 2 * b, 2 * b, 4 * b, 4 * b, 1]
        self.convs = nn.ModuleList(_conv3d(widths[i], widths[i + 1]) for i in range(7))
        self.last_activation = last_activation
        if last_activation == "relu":
            _positive_bias(self.convs[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``B x 17 x H x W`` -> ``B x 1 x H x W`` normalised depth."""
        y = _as_volume(x, "cnn3d_s")                       # B x 1 x 17 x H x W
        for i, conv in enumerate(self.convs):
            y = conv(y)
            if i < 6:
                y = F.relu(y)
        y = F.max_pool3d(y, kernel_size=(y.shape[2], 2, 2))  # 3 planes left -> 1, H/2 x W/2
        y = torch.sigmoid(y) if self.last_activation == "sigmoid" else F.relu(y)
        return resize_to(y[:, :, 0], x.shape[-2:])


class CNN3DUp(nn.Module):
    """3D conv encoder + 3D deconvolution decoder (``cnn3d_up``, Valdez-Rodríguez 2022).

    Eight 3x3x3 convolutions (unpadded along the plane axis: 17 planes -> 1; stride 2 in H, W at
    the 2nd, 4th and 6th) extract and reduce the features; three 3D deconvolutions
    (``1 x 4 x 4``, stride 2 in H, W) upsample back to the input size and a last 3D
    deconvolution (``1 x 3 x 3``) gives the depth map. ReLU after every layer, the output
    included. With ``dropout > 0`` (``cnn3d_up_do``: 0.5) dropout follows the bottleneck and each
    upsampling deconvolution.

    Input ``B x 17 x H x W`` float32 (raw RGB in ``[0, 1]`` + 14 OHES planes), H, W multiples
    of 8 (others are resized at the output).

    Returns:
        ``B x 1 x H x W`` float32 depth normalised over the spec ``depth_range`` (``>= 0``).

    Raises:
        ValueError: input not ``B x 17 x H x W``.
    """

    def __init__(self, base_channels: int = 32, dropout: float = 0.0):
        super().__init__()
        b = base_channels
        widths = [1, b, b, 2 * b, 2 * b, 4 * b, 4 * b, 8 * b, 8 * b]
        self.convs = nn.ModuleList(
            _conv3d(widths[i], widths[i + 1], spatial_stride=2 if i in (1, 3, 5) else 1)
            for i in range(8))
        up = [8 * b, 4 * b, 2 * b, b]
        self.deconvs = nn.ModuleList(
            nn.ConvTranspose3d(up[i], up[i + 1], (1, 4, 4), stride=(1, 2, 2), padding=(0, 1, 1))
            for i in range(3))
        self.out = nn.ConvTranspose3d(b, 1, (1, 3, 3), padding=(0, 1, 1))
        _positive_bias(self.out)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward_volume(self, vol: torch.Tensor, size) -> torch.Tensor:
        """``B x 1 x 17 x H x W`` volume -> ``B x 1 x H x W`` depth resized to ``size``."""
        y = vol
        for conv in self.convs:
            y = F.relu(conv(y))
        y = self.drop(y)
        for deconv in self.deconvs:
            y = self.drop(F.relu(deconv(y)))
        y = F.relu(self.out(y))
        return resize_to(y[:, :, 0], size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``B x 17 x H x W`` -> ``B x 1 x H x W`` normalised depth (``>= 0``)."""
        return self.forward_volume(_as_volume(x, "cnn3d_up"), x.shape[-2:])


# --------------------------------------------------------------------------------------------
# Hybrid
# --------------------------------------------------------------------------------------------

class SSegDepNet(nn.Module):
    """Hybrid segmentation + depth net (``ssegdep_net``, Valdez-Rodríguez 2022).

    ``seg`` (a :class:`UNetSeg`) predicts the OHES from RGB; the RGB + predicted OHES volume
    (:func:`build_ohes_volume`) goes through ``depth`` (a :class:`CNN3DUp`).

    Input ``B x 3 x H x W`` float32 raw RGB in ``[0, 1]``, H, W multiples of 16.

    Returns:
        ``{"depth": B x 1 x H x W normalised depth (>= 0), "segmentation": B x 14 x H x W
        probabilities}``, float32.

    Args:
        hard_ohes: feed the depth net a one-hot argmax of the segmentation (the encoding it
            was trained on) instead of the probabilities. Not differentiable w.r.t. ``seg``.
    """

    def __init__(self, seg: UNetSeg, depth: CNN3DUp, hard_ohes: bool = False):
        super().__init__()
        self.seg = seg
        self.depth = depth
        self.hard_ohes = hard_ohes

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``B x 3 x H x W`` RGB -> ``{"depth", "segmentation"}``."""
        _check_input(x, 3, "ssegdep_net")
        seg = self.seg(x)["segmentation"]
        ohes = seg
        if self.hard_ohes:
            ohes = F.one_hot(seg.argmax(1), seg.shape[1]).permute(0, 3, 1, 2).to(seg.dtype)
        depth = self.depth.forward_volume(build_ohes_volume(x, ohes), x.shape[-2:])
        return {"depth": depth, "segmentation": seg}


# --------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------

#: Licence of the shipped weights trained on the package's own generated streets.
_SYNTH_LICENCE = "Apache-2.0 (shipped; trained on generated streets)"


def _spec(name: str, description: str, **kw) -> ModelSpec:
    base = dict(input_size=(192, 320), output_kind="normalized_depth", citation=_CITATION,
                mean=_RAW_MEAN, std=_RAW_STD, depth_range=_STREET_RANGE, recommended_loss="l1")
    base.update(kw)
    return ModelSpec(name=name, description=description, **base)


@register_model(_spec(
    "unet_seg", "U-Net (Ronneberger 2015) predicting 14 SYNTHIA-AL OHES planes (sigmoid)",
    citation=_CITATION + "; Ronneberger et al., 'U-Net: Convolutional Networks for Biomedical "
                         "Image Segmentation', MICCAI 2015",
    returns_segmentation=True, num_classes=NUM_CLASSES, recommended_loss="bce",
    weights_licence=_SYNTH_LICENCE,
    extras={"segmentation_only": True, "classes": SYNTHIA_CLASSES, "palette": SYNTHIA_PALETTE,
            "output_activation": "sigmoid", "default_checkpoint": "unet_seg_synth.pt"}))
def unet_seg(pretrained: Union[bool, str] = False, base_channels: int = 64,
             **kwargs) -> UNetSeg:
    """Factory for :class:`UNetSeg` (registered as ``unet_seg``)."""
    return _load_whole_model(UNetSeg(base_channels=base_channels, **kwargs), "unet_seg",
                             pretrained)


@register_model(_spec("scrx_rgb", "SCRX: residual global depth + refinement stage, RGB input",
                      extras={"output_activation": "sigmoid"}))
def scrx_rgb(pretrained: Union[bool, str] = False, base_channels: int = 64) -> SCRX:
    """Factory for :class:`SCRX` on RGB (registered as ``scrx_rgb``)."""
    return _load_whole_model(SCRX(3, base_channels), "scrx_rgb", pretrained)


@register_model(_spec("scrx_ohes", "SCRX: residual global depth + refinement, RGB + OHES input",
                      needs_semantic_input=True, num_classes=NUM_CLASSES,
                      extras={"output_activation": "sigmoid"}))
def scrx_ohes(pretrained: Union[bool, str] = False, base_channels: int = 64) -> SCRX:
    """Factory for :class:`SCRX` on RGB + OHES (registered as ``scrx_ohes``)."""
    return _load_whole_model(SCRX(VOLUME_PLANES, base_channels), "scrx_ohes", pretrained)


@register_model(_spec("cnn3d_s", "LeNet-like 3D CNN (7 conv3d + max-pool) over RGB+OHES volume",
                      needs_semantic_input=True, num_classes=NUM_CLASSES,
                      extras={"output_activation": "sigmoid"}))
def cnn3d_s(pretrained: Union[bool, str] = False, base_channels: int = 16) -> CNN3DS:
    """Factory for :class:`CNN3DS` with a sigmoid output (registered as ``cnn3d_s``)."""
    return _load_whole_model(CNN3DS(base_channels, "sigmoid"), "cnn3d_s", pretrained)


@register_model(_spec("cnn3d_s_relu", "cnn3d_s with a ReLU (not sigmoid) output",
                      needs_semantic_input=True, num_classes=NUM_CLASSES,
                      extras={"output_activation": "relu"}))
def cnn3d_s_relu(pretrained: Union[bool, str] = False, base_channels: int = 16) -> CNN3DS:
    """Factory for :class:`CNN3DS` with a ReLU output (registered as ``cnn3d_s_relu``)."""
    return _load_whole_model(CNN3DS(base_channels, "relu"), "cnn3d_s_relu", pretrained)


@register_model(_spec("cnn3d_up", "3D conv encoder + 3D deconv decoder over RGB+OHES volume",
                      needs_semantic_input=True, num_classes=NUM_CLASSES,
                      weights_licence=_SYNTH_LICENCE,
                      extras={"output_activation": "relu", "default_checkpoint": "cnn3d_up_synth.pt"}))
def cnn3d_up(pretrained: Union[bool, str] = False, base_channels: int = 32) -> CNN3DUp:
    """Factory for :class:`CNN3DUp` (registered as ``cnn3d_up``)."""
    return _load_whole_model(CNN3DUp(base_channels, 0.0), "cnn3d_up", pretrained)


@register_model(_spec("cnn3d_up_do", "cnn3d_up with dropout 0.5",
                      needs_semantic_input=True, num_classes=NUM_CLASSES,
                      extras={"output_activation": "relu"}))
def cnn3d_up_do(pretrained: Union[bool, str] = False, base_channels: int = 32,
                dropout: float = 0.5) -> CNN3DUp:
    """Factory for :class:`CNN3DUp` with dropout (registered as ``cnn3d_up_do``)."""
    return _load_whole_model(CNN3DUp(base_channels, dropout), "cnn3d_up_do", pretrained)


@register_model(_spec("ssegdep_net", "Hybrid: unet_seg OHES + cnn3d_up depth from RGB",
                      returns_segmentation=True, num_classes=NUM_CLASSES,
                      weights_licence=_SYNTH_LICENCE,
                      extras={"output_activation": "relu", "classes": SYNTHIA_CLASSES,
                              "palette": SYNTHIA_PALETTE,
                              # trained separately, shipped as two files (factory arguments)
                              "default_component_checkpoints": {
                                  "seg_checkpoint": "unet_seg_synth.pt",
                                  "depth_checkpoint": "cnn3d_up_synth.pt"}}))
def ssegdep_net(pretrained: Union[bool, str] = False,
                seg_checkpoint: Optional[Union[str, os.PathLike]] = None,
                depth_checkpoint: Optional[Union[str, os.PathLike]] = None,
                seg_base_channels: int = 64, depth_base_channels: int = 32,
                depth_model: str = "cnn3d_up", hard_ohes: bool = False) -> SSegDepNet:
    """Factory for :class:`SSegDepNet` (registered as ``ssegdep_net``).

    Args:
        pretrained: ``False``, or a path to a full ``ssegdep_net`` state dict; ``True`` raises.
        seg_checkpoint: ``unet_seg`` checkpoint (see ``save_checkpoint``); its stored options
            replace ``seg_base_channels``.
        depth_checkpoint: checkpoint of ``depth_model``; its stored options replace
            ``depth_base_channels``.
        depth_model: ``"cnn3d_up"`` or ``"cnn3d_up_do"``.
        hard_ohes: see :class:`SSegDepNet`.

    Raises:
        ValueError: unknown ``depth_model`` or a checkpoint of another model.
        FileNotFoundError: a checkpoint path does not exist.
        PretrainedWeightsUnavailable: ``pretrained=True``.
    """
    if depth_model not in ("cnn3d_up", "cnn3d_up_do"):
        raise ValueError(f"depth_model must be cnn3d_up or cnn3d_up_do, got {depth_model!r}")
    if pretrained is True:
        _load_whole_model(nn.Identity(), "ssegdep_net", True)  # raises
    if seg_checkpoint is not None:
        seg = create_model("unet_seg", checkpoint=seg_checkpoint)
    else:
        seg = UNetSeg(base_channels=seg_base_channels)
    if depth_checkpoint is not None:
        depth = create_model(depth_model, checkpoint=depth_checkpoint)
    else:
        depth = CNN3DUp(depth_base_channels, 0.5 if depth_model == "cnn3d_up_do" else 0.0)
    model = SSegDepNet(seg, depth, hard_ohes=hard_ohes)
    if depth_checkpoint is not None:
        # depth comes from the depth part: its training camera decides the focal rescaling
        model.spec_overrides = {k: getattr(depth.spec, k) for k in
                                ("train_focal", "rescale_by_focal", "depth_range")}
    return _load_whole_model(model, "ssegdep_net", pretrained)
