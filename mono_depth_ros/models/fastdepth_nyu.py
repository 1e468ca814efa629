"""The original FastDepth network (Wofk et al., ICRA 2019), as its authors trained it on NYU.

``MobileNet-NNConv5(depthwise), skip-add, pruned`` of the paper: a MobileNet (v1) encoder
(a 3x3 stride-2 convolution, then 13 depthwise-separable blocks with ReLU6), a decoder of five
NNConv5 layers (5x5 depthwise + pointwise convolution, each with ReLU, then nearest-neighbour
x2 upsampling) with additive skips from the encoder at strides 8, 4 and 2, and a pointwise
output convolution with ReLU. NetAdapt pruning left every layer with its own width; the widths
are constructor arguments, read from the weights file by the importer
(:mod:`mono_depth_ros.tools.import_weights`). BatchNorm is folded into the convolutions, as in
the released file, so every convolution carries a bias.

The weights are not shipped with this package (third-party, MIT): ``mono-depth-ros
import-weights`` converts the authors' network from an ONNX or TFLite file into a checkpoint in
:func:`~mono_depth_ros.core.paths.imported_weights_dir`, where ``create_model("fastdepth_nyu")``
finds it. The students trained from it by ``mono-depth-ros train`` use the same architecture.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_model
from .spec import ModelSpec, Preprocessing

#: Channel widths of the authors' pruned network (NetAdapt): the stem, then the 13 pointwise
#: convolutions of the encoder blocks.
ENCODER_WIDTHS = (16, 56, 88, 120, 144, 256, 408, 376, 272, 288, 296, 328, 480, 512)
#: Output widths of the five NNConv5 decoder layers.
DECODER_WIDTHS = (200, 256, 120, 56, 16)
#: Strides of MobileNet v1's 13 depthwise-separable blocks (Howard et al., 2017, Table 1).
BLOCK_STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)
#: Encoder blocks whose output is added after decoder layers 2, 3 and 4 (strides 8, 4, 2).
SKIP_BLOCKS = (4, 2, 0)
#: The authors' validation view of a 640x480 NYU frame: resize to 250 px high, centre crop
#: 228 x 304, resize to 224 x 224. NYU's fx = 518.86 px at 640 wide becomes 518.86 * 250/480 *
#: 224/304 = 199.1 px at the 224-px input.
NYU_FX = 518.86
TRAIN_FOCAL_PX = NYU_FX * 250.0 / 480.0 * 224.0 / 304.0
#: Height / width of the training crop (228 / 304 = 3 / 4: NYU's own aspect).
TRAIN_CROP_ASPECT = 228.0 / 304.0


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    # symmetric padding k // 2, as the released graph pads (also at stride 2)
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=True)


class SeparableBlock(nn.Module):
    """MobileNet v1 block: 3x3 depthwise (stride ``s``) + ReLU6, 1x1 pointwise + ReLU6."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.dw = _conv(cin, cin, 3, stride, groups=cin)
        self.pw = _conv(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self.pw(F.relu6(self.dw(x))))


class NNConv5(nn.Module):
    """FastDepth decoder layer: 5x5 depthwise + ReLU, 1x1 pointwise + ReLU, nearest x2."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.dw = _conv(cin, cin, 5, groups=cin)
        self.pw = _conv(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.pw(F.relu(self.dw(x))))
        return F.interpolate(x, scale_factor=2.0, mode="nearest")


class FastDepthNYU(nn.Module):
    """FastDepth (MobileNet-NNConv5dw, skip-add, pruned) of Wofk et al.

    Input ``B x 3 x H x W`` float32 RGB in ``[0, 1]`` (no mean/std), ``H`` and ``W`` multiples
    of 32 (224 x 224 as trained); output ``B x 1 x H x W`` float32 depth in metres (ReLU, so
    ``>= 0``; 0 means no valid prediction).

    Args:
        encoder_widths: 14 widths: the stem's output, then each block's pointwise output.
        decoder_widths: 5 widths of the NNConv5 layers' outputs.

    Raises:
        ValueError: wrong number of widths, or a skip whose encoder and decoder widths differ
            (an additive skip needs equal channel counts).
    """

    def __init__(self, encoder_widths: Sequence[int] = ENCODER_WIDTHS,
                 decoder_widths: Sequence[int] = DECODER_WIDTHS):
        super().__init__()
        enc, dec = [int(c) for c in encoder_widths], [int(c) for c in decoder_widths]
        if len(enc) != 1 + len(BLOCK_STRIDES) or len(dec) != 5:
            raise ValueError(f"need {1 + len(BLOCK_STRIDES)} encoder and 5 decoder widths, got "
                             f"{len(enc)} and {len(dec)}")
        for layer, block in enumerate(SKIP_BLOCKS, start=1):
            if dec[layer] != enc[block + 1]:
                raise ValueError(f"skip into decoder layer {layer + 1} adds encoder block {block} "
                                 f"({enc[block + 1]} channels) to {dec[layer]} channels")
        self.encoder_widths, self.decoder_widths = tuple(enc), tuple(dec)
        self.stem = _conv(3, enc[0], 3, stride=2)
        self.blocks = nn.ModuleList(SeparableBlock(enc[i], enc[i + 1], s)
                                    for i, s in enumerate(BLOCK_STRIDES))
        ins = [enc[-1], *dec[:-1]]
        self.decoder = nn.ModuleList(NNConv5(ins[i], dec[i]) for i in range(5))
        self.head = _conv(dec[-1], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``B x 3 x H x W`` RGB in [0, 1] -> ``B x 1 x H x W`` depth (m)."""
        y = F.relu6(self.stem(x))
        skips = {}
        for i, block in enumerate(self.blocks):
            y = block(y)
            if i in SKIP_BLOCKS:
                skips[i] = y
        for layer, dec in enumerate(self.decoder):
            y = dec(y)
            if 1 <= layer <= len(SKIP_BLOCKS):
                y = y + skips[SKIP_BLOCKS[layer - 1]]
        return F.relu(self.head(y))


SPEC = ModelSpec(
    name="fastdepth_nyu",
    input_size=(224, 224),
    output_kind="metric_depth",
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
    depth_range=(0.1, 10.0),
    train_focal=TRAIN_FOCAL_PX / 224.0,
    rescale_by_focal=True,
    recommended_loss="berhu",
    citation=("Wofk, Ma, Yang, Karaman, Sze, 'FastDepth: Fast Monocular Depth Estimation on "
              "Embedded Systems', ICRA 2019"),
    description=("FastDepth MobileNet-NNConv5dw skip-add pruned (1.35 M parameters); metric depth; "
                 "weights imported from the authors' NYU Depth V2 network"),
    weights_licence="MIT (dwofk/fast-depth; imported by mono-depth-ros import-weights, not shipped)",
    # the training view (docs/models.md: focal_crop chosen on 7-Scenes 800-999 + HoloLens)
    preprocessing=Preprocessing(multiple=32, view="focal_crop", crop_aspect=TRAIN_CROP_ASPECT),
    extras={"imported_weights": "fastdepth_nyu.pt",
            "import_hint": ("mono-depth-ros import-weights "
                            "../shared/weights/fastdepth-nyu/fastdepth_224_float32.onnx "
                            "(or the upstream fast_depth_224.tflite)")},
)


@register_model(SPEC)
def fastdepth_nyu(encoder_widths: Sequence[int] = ENCODER_WIDTHS,
                  decoder_widths: Sequence[int] = DECODER_WIDTHS, pretrained=False
                  ) -> FastDepthNYU:
    """Factory for :class:`FastDepthNYU` (registered as ``fastdepth_nyu``); ``pretrained`` is
    accepted for the trainer's interface and ignored (no ImageNet weights for this encoder)."""
    return FastDepthNYU(encoder_widths, decoder_widths)


#: The same network trained by this package (``mono-depth-ros train``): initialised from the
#: imported weights and distilled from them (frozen, flip-averaged) on real frames, with 7-Scenes
#: ground truth where there is some. See
#: ``models/fastdepth_nyu_distilled.md``.
DISTILLED_SPEC = SPEC.replace(
    name="fastdepth_nyu_distilled",
    description=("FastDepth-NYU architecture trained by mono-depth-ros train: initialised from and "
                 "distilled from the authors' NYU network, with 7-Scenes ground truth"),
    weights_licence=("non-commercial research (shipped; trained on Microsoft 7-Scenes and ScanNet, "
                     "SUN RGB-D, TUM images); initialised from MIT-licensed FastDepth weights "
                     "(licence text in the model card)"),
    extras={"default_checkpoint": "fastdepth_nyu_distilled.pt"},
)


@register_model(DISTILLED_SPEC, architecture="fastdepth_nyu")
def fastdepth_nyu_distilled(encoder_widths: Sequence[int] = ENCODER_WIDTHS,
                            decoder_widths: Sequence[int] = DECODER_WIDTHS, pretrained=False
                            ) -> FastDepthNYU:
    """Factory of the package-trained variant (registered as ``fastdepth_nyu_distilled``; loads
    ``fastdepth_nyu`` checkpoints)."""
    return FastDepthNYU(encoder_widths, decoder_widths)
