"""Inception-ResNet-v2 encoder-decoder for indoor depth (Das et al.).

Follows Das et al., "Depth Estimation From Monocular Images With Enhanced Encoder-Decoder
Architecture": an Inception-ResNet-v2 encoder (Szegedy et al., AAAI 2017) truncated before its
classification head, a LeakyReLU bottleneck and a decoder that upsamples and concatenates the
encoder map of each scale, with a sigmoid output of depth normalised to ``[0, 1]`` (NYU-Depth V2,
0-10 m). The network takes 480x640 images and predicts a 240x320 map, upsampled x2 at test time.

The encoder modules are timm's ``inception_resnet_v2``; its convolutions are unpadded
('valid', as in the TF original), so its maps have odd sizes (e.g. 57x77 for stride 8 of a
480x640 input). The decoder therefore works on exact ``H / 2**k`` grids and bilinearly resizes
the encoder maps onto them before concatenating.
"""

from __future__ import annotations

from typing import Union

import torch
from torch import nn

from .layers import resize_to
from .encoders import create_classifier
from .registry import register_model
from .spec import ModelSpec

#: Normalisation of timm's (TF-ported) Inception-ResNet-v2 ImageNet weights: (x - 0.5) / 0.5.
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)
#: Smallest input side the unpadded Inception-ResNet-v2 stem and reductions accept.
MIN_INPUT_SIDE = 75



class _UpBlock(nn.Module):
    """Upsample to the skip's grid, concatenate the (resized) skip, two 3x3 conv + BN + ReLU."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(cin + cskip, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor, skip: torch.Tensor, size) -> torch.Tensor:
        return self.convs(torch.cat([resize_to(x, size), resize_to(skip, size)], dim=1))


class IRv2EncDec(nn.Module):
    """Inception-ResNet-v2 encoder + skip-connected upsampling decoder (``irv2_encdec``).

    Encoder (timm modules): stem (to 64 channels, stride 2 | to 192 channels, stride 4),
    Mixed-5b + ``10 x`` Inception-ResNet-A (320, stride 8), Reduction-A + ``ir_b_blocks x``
    Inception-ResNet-B (1088, stride 16), Reduction-B + ``ir_c_blocks x`` Inception-ResNet-C +
    the final linear Block8 (2080, stride 32). The 1x1 conv to 1536 channels, pooling and
    classifier are dropped.

    Decoder: 1x1 conv + LeakyReLU(0.2) bottleneck to ``decoder_width`` channels, then four
    upsampling blocks to strides 16, 8, 4, 2 that concatenate the encoder map of that stride
    (widths ``decoder_width / 2, / 4, / 8, / 16``), a 3x3 conv and a sigmoid.

    Input ``B x 3 x H x W`` float32 normalised with :data:`INCEPTION_MEAN` / ``STD``,
    ``H, W >= 75`` (480x640 in the paper).

    Returns:
        :meth:`forward`: ``B x 1 x H x W`` float32 depth normalised to ``[0, 1]`` (the half
        resolution map upsampled x2, as at test time in the paper);
        :meth:`forward_half`: the ``B x 1 x H/2 x W/2`` map the paper trains on.

    Raises:
        ValueError: input not ``B x 3 x H x W`` or smaller than :data:`MIN_INPUT_SIDE`; block
            counts out of range.
        PretrainedWeightsUnavailable: ``pretrained`` weights not on this machine.
    """

    def __init__(self, pretrained: Union[bool, str] = False, decoder_width: int = 1024,
                 ir_b_blocks: int = 20, ir_c_blocks: int = 9):
        super().__init__()
        if not 0 <= ir_b_blocks <= 20 or not 0 <= ir_c_blocks <= 9:
            raise ValueError("ir_b_blocks must be in [0, 20] and ir_c_blocks in [0, 9]")
        net = create_classifier("inception_resnet_v2", pretrained=pretrained)
        self.stem2 = nn.Sequential(net.conv2d_1a, net.conv2d_2a, net.conv2d_2b)
        self.stem4 = nn.Sequential(net.maxpool_3a, net.conv2d_3b, net.conv2d_4a)
        self.stage8 = nn.Sequential(net.maxpool_5a, net.mixed_5b, net.repeat)
        self.stage16 = nn.Sequential(net.mixed_6a, *list(net.repeat_1)[:ir_b_blocks])
        self.stage32 = nn.Sequential(net.mixed_7a, *list(net.repeat_2)[:ir_c_blocks], net.block8)
        skip_ch = (64, 192, 320, 1088)                      # strides 2, 4, 8, 16
        w = [decoder_width // 2 ** i for i in range(5)]
        self.bottleneck = nn.Sequential(nn.Conv2d(2080, w[0], 1), nn.LeakyReLU(0.2, inplace=True))
        self.up = nn.ModuleList(_UpBlock(w[i], skip_ch[3 - i], w[i + 1]) for i in range(4))
        self.head = nn.Conv2d(w[4], 1, 3, padding=1)

    def forward_half(self, x: torch.Tensor) -> torch.Tensor:
        """``B x 3 x H x W`` -> ``B x 1 x H/2 x W/2`` normalised depth in ``[0, 1]``."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"irv2_encdec expects B x 3 x H x W, got {tuple(x.shape)}")
        if min(x.shape[-2:]) < MIN_INPUT_SIDE:
            raise ValueError(f"irv2_encdec needs H, W >= {MIN_INPUT_SIDE}, got {tuple(x.shape)}")
        s2 = self.stem2(x)
        s4 = self.stem4(s2)
        s8 = self.stage8(s4)
        s16 = self.stage16(s8)
        y = self.bottleneck(self.stage32(s16))
        h, w = x.shape[-2:]
        for i, skip in enumerate((s16, s8, s4, s2)):
            stride = 2 ** (4 - i)
            y = self.up[i](y, skip, (h // stride, w // stride))
        return torch.sigmoid(self.head(y))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``B x 3 x H x W`` -> ``B x 1 x H x W`` normalised depth in ``[0, 1]``."""
        return resize_to(self.forward_half(x), x.shape[-2:])


_CITATION = ("Das et al., 'Depth Estimation From Monocular Images With Enhanced Encoder-Decoder "
             "Architecture'; Szegedy et al., 'Inception-v4, Inception-ResNet and the Impact of "
             "Residual Connections on Learning', AAAI 2017")


@register_model(ModelSpec(
    name="irv2_encdec",
    input_size=(480, 640),
    output_kind="normalized_depth",
    mean=INCEPTION_MEAN,
    std=INCEPTION_STD,
    depth_range=(0.0, 10.0),
    recommended_loss="das_composite",
    citation=_CITATION,
    description="Inception-ResNet-v2 encoder + skip-connected decoder, sigmoid depth "
                "(240x320 map upsampled x2)",
    extras={"output_activation": "sigmoid", "output_stride": 2,
            "min_input_side": MIN_INPUT_SIDE},
))
def irv2_encdec(pretrained: Union[bool, str] = False, decoder_width: int = 1024,
                ir_b_blocks: int = 20, ir_c_blocks: int = 9) -> IRv2EncDec:
    """Factory for :class:`IRv2EncDec` (registered as ``irv2_encdec``).

    ``ir_b_blocks`` (0-20) and ``ir_c_blocks`` (0-9, the linear Block8 always follows) truncate
    the Inception-ResNet-B / -C repeats; the defaults keep the full Inception-ResNet-v2.
    """
    return IRv2EncDec(pretrained=pretrained, decoder_width=decoder_width,
                      ir_b_blocks=ir_b_blocks, ir_c_blocks=ir_c_blocks)
