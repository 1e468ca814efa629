"""ResNet / DenseNet encoder-decoders for indoor metric depth (Calderoni et al.).

Implements the architectures compared by Calderoni et al., "Monocular Depth Estimation"
(NYU-Depth V2, 128x128 inputs):

* ``de_noskip``: ResNet50 trunk without its last block, conv + BatchNorm bridge, four
  (bilinear upsample + conv + ReLU) blocks with three internal residual skips, no
  encoder-decoder skips.
* ``resnete_v1`` / ``resnete_v2`` / ``resnete_v3``: ResNet34 encoder with a five-block
  transposed-convolution decoder, differing in how skips are made (see :class:`ResNetE`).
* ``resnet_unet`` / ``densenet_unet``: U-Nets on a ResNet50 / DenseNet121 encoder.

Every variant takes an ImageNet-normalised RGB image and returns metric depth in metres
(ReLU output, so ``>= 0``). The decoders are assembled from the shared blocks below.
Encoders come from :func:`~mono_depth_ros.models.encoders.create_encoder`, so
``pretrained=True`` raises ``PretrainedWeightsUnavailable`` unless the weights are local.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from .layers import resize_to
from .encoders import create_encoder
from .registry import register_model
from .spec import ModelSpec

_CITATION = "Calderoni et al., 'Monocular Depth Estimation' (NYU-Depth V2, 128x128 inputs)"
_RESNET = "He et al., 'Deep Residual Learning for Image Recognition', CVPR 2016"
_DENSENET = "Huang et al., 'Densely Connected Convolutional Networks', CVPR 2017"
_UNET = "Ronneberger et al., 'U-Net', MICCAI 2015"


# --------------------------------------------------------------------------------------------
# Shared building blocks
# --------------------------------------------------------------------------------------------


def conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    """``k x k`` conv (no bias: BatchNorm follows) + BatchNorm + ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UpConv(nn.Module):
    """Bilinear upsampling to ``size`` (default x2) + 3x3 conv + ReLU: ``cin -> cout``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x: torch.Tensor, size: Optional[Sequence[int]] = None) -> torch.Tensor:
        size = size or (2 * x.shape[-2], 2 * x.shape[-1])
        return F.relu(self.conv(resize_to(x, size)))


class DeconvBlock(nn.Module):
    """Transposed 4x4 conv (stride 2) [+ 3x3 conv], ReLU: ``cin -> cout``, x2 resolution."""

    def __init__(self, cin: int, cout: int, extra_conv: bool = True):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)
        self.conv = nn.Conv2d(cout, cout, 3, padding=1) if extra_conv else None

    def forward(self, x: torch.Tensor, size: Optional[Sequence[int]] = None) -> torch.Tensor:
        y = self.deconv(x)
        if self.conv is not None:
            y = self.conv(y)
        return F.relu(resize_to(y, size) if size is not None else y)


class SkipUp(nn.Module):
    """Skip from a lower-resolution map: 1x1 conv ``cin -> cout`` + bilinear upsample [+ ReLU].

    Used for the decoders' internal residual skips (the conv matches the channels of the block
    it bypasses, the upsampling its resolution).
    """

    def __init__(self, cin: int, cout: int, relu: bool):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)
        self.relu = relu

    def forward(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        y = resize_to(self.conv(x), size)
        return F.relu(y) if self.relu else y


class UNetUp(nn.Module):
    """Bilinear upsample to the skip's size, concatenate it, two (conv, BatchNorm, ReLU)."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.convs = nn.Sequential(conv_bn_relu(cin + cskip, cout), conv_bn_relu(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.convs(torch.cat([resize_to(x, skip.shape[-2:]), skip], dim=1))


def init_depth_head(conv: nn.Conv2d, depth_m: float = 2.0) -> nn.Conv2d:
    """Start a ReLU depth output at ``depth_m`` metres.

    With the default zero-mean init the ReLU output can be 0 everywhere, which passes no
    gradient; a positive bias (a typical indoor depth) keeps it in its active range.
    """
    nn.init.constant_(conv.bias, depth_m)
    return conv


def _size(x: torch.Tensor, stride: int) -> List[int]:
    # Decoder resolutions come from the input so that every stage lands on H / stride exactly.
    return [x.shape[-2] // stride, x.shape[-1] // stride]


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------

class DENoSkip(nn.Module):
    """``de_noskip``: ResNet50 without its last block + upsampling decoder, no encoder skips.

    ResNet50 up to ``layer3`` (stride 16, 1024 channels), a 3x3 conv + BatchNorm bridge to
    ``decoder_width`` channels, four :class:`UpConv` blocks halving the channels (stride 16 ->
    1); blocks 2-4 get an internal residual :class:`SkipUp` from their (lower-resolution) input,
    summed and followed by BatchNorm; a 3x3 conv + ReLU output.

    Input ``B x 3 x H x W`` float32 ImageNet-normalised, H, W multiples of 16.
    Returns ``B x 1 x H x W`` float32 metric depth in metres (``>= 0``).
    """

    def __init__(self, pretrained: Union[bool, str] = False, decoder_width: int = 512):
        super().__init__()
        self.encoder = create_encoder("resnet50", pretrained=pretrained, out_indices=(0, 1, 2, 3))
        w = [decoder_width // 2 ** i for i in range(5)]
        self.bridge = nn.Sequential(nn.Conv2d(self.encoder.out_channels[-1], w[0], 3, padding=1),
                                    nn.BatchNorm2d(w[0]))
        self.blocks = nn.ModuleList(UpConv(w[i], w[i + 1]) for i in range(4))
        self.skips = nn.ModuleList(SkipUp(w[i], w[i + 1], relu=False) for i in (1, 2, 3))
        self.skip_bns = nn.ModuleList(nn.BatchNorm2d(w[i + 1]) for i in (1, 2, 3))
        self.head = init_depth_head(nn.Conv2d(w[4], 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``B x 3 x H x W`` -> ``B x 1 x H x W`` depth (m)."""
        y = self.bridge(self.encoder(x)[-1])
        for i, block in enumerate(self.blocks):
            size = _size(x, 2 ** (3 - i))
            z = block(y, size)
            if i >= 1:
                z = self.skip_bns[i - 1](z + self.skips[i - 1](y, size))
            y = z
        return F.relu(resize_to(self.head(y), x.shape[-2:]))


#: ResNetE variants: (encoder skip mode, conv inside decoder blocks, blocks with an internal
#: residual skip, input skip, number of final convs).
_RESNETE = {
    "v1": dict(skip="sum", block_conv=True, residual=(1, 2, 3), input_skip=False, final=1),
    "v2": dict(skip="sum", block_conv=True, residual=(4,), input_skip=True, final=1),
    "v3": dict(skip="concat", block_conv=False, residual=(), input_skip=True, final=3),
}


class ResNetE(nn.Module):
    """ResNet34 encoder + five-block transposed-conv decoder (``resnete_v1/v2/v3``).

    The encoder gives maps at strides 2, 4, 8, 16, 32 (64, 64, 128, 256, 512 channels); decoder
    blocks 0-4 upsample x2 each (stride 32 -> 1) to 256, 128, 64, 64, 32 channels, and blocks 0-3
    receive the encoder map of their stride.

    * ``v1``: blocks are transposed conv + conv + ReLU; encoder skips are summed and followed by
      BatchNorm; blocks 1-3 get an internal residual skip (1x1 conv + bilinear upsample + ReLU of
      the block input); a last conv to one channel, resized to the input.
    * ``v2``: as v1, but the internal residual skip is only around the last block; the input
      image, that skip and the last block's output are concatenated before the final conv.
    * ``v3``: blocks are transposed conv + ReLU; every skip (encoder maps and the input image)
      is concatenated; three final 3x3 convs.

    Input ``B x 3 x H x W`` float32 ImageNet-normalised, H, W multiples of 32.
    Returns ``B x 1 x H x W`` float32 metric depth in metres (ReLU, ``>= 0``).

    Raises:
        ValueError: unknown ``variant``.
    """

    def __init__(self, variant: str = "v1", pretrained: Union[bool, str] = False):
        super().__init__()
        if variant not in _RESNETE:
            raise ValueError(f"ResNetE variant must be one of {sorted(_RESNETE)}, got {variant!r}")
        cfg = _RESNETE[variant]
        self.cfg = cfg
        self.encoder = create_encoder("resnet34", pretrained=pretrained)
        ch = self.encoder.out_channels                      # 64 64 128 256 512
        # Summed skips need decoder widths equal to the encoder's at each stride.
        widths = [ch[4], ch[3], ch[2], ch[1], ch[0], ch[0] // 2]
        skip_ch = [ch[3], ch[2], ch[1], ch[0], 0]
        concat = cfg["skip"] == "concat"
        blocks, bns, cin = [], [], widths[0]
        for i in range(5):
            blocks.append(DeconvBlock(cin, widths[i + 1], extra_conv=cfg["block_conv"]))
            cin = widths[i + 1] + (skip_ch[i] if concat else 0)
            bns.append(nn.BatchNorm2d(widths[i + 1]) if (not concat and skip_ch[i]) else None)
        self.blocks = nn.ModuleList(blocks)
        self.skip_bns = nn.ModuleList(bn or nn.Identity() for bn in bns)
        block_in = [widths[0]] + [widths[i + 1] + (skip_ch[i] if concat else 0) for i in range(4)]
        self.residual = nn.ModuleDict({
            str(i): SkipUp(block_in[i], widths[i + 1], relu=True) for i in cfg["residual"]})
        head_in = cin + (3 if cfg["input_skip"] else 0)
        if variant == "v2":
            head_in += widths[5]                            # the last block's residual skip
        if cfg["final"] == 1:
            self.head = init_depth_head(nn.Conv2d(head_in, 1, 3, padding=1))
        else:
            self.head = nn.Sequential(nn.Conv2d(head_in, 32, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(inplace=True),
                                      init_depth_head(nn.Conv2d(16, 1, 3, padding=1)))
        self.variant = variant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``B x 3 x H x W`` -> ``B x 1 x H x W`` depth (m)."""
        feats = self.encoder(x)
        y = feats[-1]
        concat = self.cfg["skip"] == "concat"
        v2_skip = None
        for i, block in enumerate(self.blocks):
            size = _size(x, 2 ** (4 - i))
            z = block(y, size)
            if str(i) in self.residual:
                r = self.residual[str(i)](y, size)
                if self.variant == "v2":
                    v2_skip = r                             # concatenated at the head instead
                else:
                    z = z + r
            if i < 4:
                e = resize_to(feats[3 - i], size)
                z = torch.cat([z, e], 1) if concat else self.skip_bns[i](z + e)
            y = z
        parts = [y]
        if v2_skip is not None:
            parts.insert(0, v2_skip)
        if self.cfg["input_skip"]:
            parts.insert(0, resize_to(x, y.shape[-2:]))
        out = self.head(torch.cat(parts, 1) if len(parts) > 1 else y)
        return F.relu(resize_to(out, x.shape[-2:]))


class EncoderUNet(nn.Module):
    """``resnet_unet`` / ``densenet_unet``: ImageNet encoder + four :class:`UNetUp` blocks.

    The stride-32 encoder map (DenseNet121: after an intermediate 1x1 conv + ReLU) is upsampled
    four times, each time concatenated with the encoder map of strides 16, 8, 4, 2 and passed
    through two (conv, BatchNorm, ReLU) to ``decoder_width / 2**i`` channels; a final 3x3 conv to
    one channel at stride 2 is bilinearly resized to the input.

    Input ``B x 3 x H x W`` float32 ImageNet-normalised, H, W multiples of 32.
    Returns ``B x 1 x H x W`` float32 metric depth in metres (ReLU, ``>= 0``).
    """

    def __init__(self, encoder: str, pretrained: Union[bool, str] = False,
                 decoder_width: int = 512, intermediate_conv: bool = False):
        super().__init__()
        self.encoder = create_encoder(encoder, pretrained=pretrained)
        ch = self.encoder.out_channels
        self.mid = (nn.Sequential(nn.Conv2d(ch[4], ch[4], 1), nn.ReLU(inplace=True))
                    if intermediate_conv else nn.Identity())
        w = [decoder_width // 2 ** i for i in range(4)]
        cin = [ch[4]] + w[:3]
        self.blocks = nn.ModuleList(UNetUp(cin[i], ch[3 - i], w[i]) for i in range(4))
        self.head = init_depth_head(nn.Conv2d(w[3], 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``B x 3 x H x W`` -> ``B x 1 x H x W`` depth (m)."""
        feats = self.encoder(x)
        y = self.mid(feats[-1])
        for i, block in enumerate(self.blocks):
            y = block(y, resize_to(feats[3 - i], _size(x, 2 ** (4 - i))))
        return F.relu(resize_to(self.head(y), x.shape[-2:]))


# --------------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------------

def _spec(name: str, description: str, citation: str) -> ModelSpec:
    return ModelSpec(name=name, input_size=(128, 128), output_kind="metric_depth",
                     citation=citation, description=description, depth_range=(0.1, 10.0),
                     recommended_loss="berhu", extras={"output_activation": "relu"})


@register_model(_spec("de_noskip", "ResNet50 (no last block) + upsampling decoder, no "
                      "encoder skips; metric depth", f"{_CITATION}; {_RESNET}"))
def de_noskip(pretrained: Union[bool, str] = False, decoder_width: int = 512) -> DENoSkip:
    """Factory for :class:`DENoSkip` (registered as ``de_noskip``)."""
    return DENoSkip(pretrained=pretrained, decoder_width=decoder_width)


@register_model(_spec("resnete_v1", "ResNet34 + deconv decoder, summed skips + BatchNorm, "
                      "decoder residuals; metric depth", f"{_CITATION}; {_RESNET}"))
def resnete_v1(pretrained: Union[bool, str] = False) -> ResNetE:
    """Factory for :class:`ResNetE` ``v1`` (registered as ``resnete_v1``)."""
    return ResNetE("v1", pretrained=pretrained)


@register_model(_spec("resnete_v2", "ResNet34 + deconv decoder, summed skips, input skip "
                      "concatenated at the head; metric depth", f"{_CITATION}; {_RESNET}"))
def resnete_v2(pretrained: Union[bool, str] = False) -> ResNetE:
    """Factory for :class:`ResNetE` ``v2`` (registered as ``resnete_v2``)."""
    return ResNetE("v2", pretrained=pretrained)


@register_model(_spec("resnete_v3", "ResNet34 + deconv decoder, concatenated skips, three "
                      "final convs; metric depth", f"{_CITATION}; {_RESNET}"))
def resnete_v3(pretrained: Union[bool, str] = False) -> ResNetE:
    """Factory for :class:`ResNetE` ``v3`` (registered as ``resnete_v3``)."""
    return ResNetE("v3", pretrained=pretrained)


@register_model(_spec("resnet_unet", "ResNet50 U-Net (bilinear x2 + concat + 2x conv-BN-ReLU); "
                      "metric depth", f"{_CITATION}; {_RESNET}; {_UNET}"))
def resnet_unet(pretrained: Union[bool, str] = False, decoder_width: int = 512) -> EncoderUNet:
    """Factory for :class:`EncoderUNet` on ResNet50 (registered as ``resnet_unet``)."""
    return EncoderUNet("resnet50", pretrained=pretrained, decoder_width=decoder_width)


@register_model(_spec("densenet_unet", "DenseNet121 U-Net with an intermediate conv; metric "
                      "depth", f"{_CITATION}; {_DENSENET}; {_UNET}"))
def densenet_unet(pretrained: Union[bool, str] = False, decoder_width: int = 512) -> EncoderUNet:
    """Factory for :class:`EncoderUNet` on DenseNet121 (registered as ``densenet_unet``)."""
    return EncoderUNet("densenet121", pretrained=pretrained, decoder_width=decoder_width,
                       intermediate_conv=True)
