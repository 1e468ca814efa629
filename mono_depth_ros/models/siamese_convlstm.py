"""Siamese convolutional-LSTM disparity network for driving scenes (Yusiong & Naval).

Follows Yusiong & Naval, "Unsupervised Monocular Depth Estimation of Driving Scenes Using
Siamese Convolutional LSTM Networks": a monodepth-style (Godard et al., CVPR 2017)
encoder-decoder trained without depth labels from rectified stereo pairs, whose skip connections
and bottleneck are convolutional LSTMs (Shi et al., NeurIPS 2015) so that it can carry state
across consecutive video frames. The same weights run on the left image and on its horizontal
mirror (siamese branches); a refinement module merges the two predictions and removes the
disparity ramps that occluded borders cause.

The output is disparity as a fraction of image width; the runtime turns it into depth with
``Z = fx * baseline / (d * W)`` using the spec's KITTI baseline (0.54 m).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .layers import resize_to
from .encoders import PretrainedWeightsUnavailable
from .registry import register_model
from .spec import ModelSpec

#: Sigmoid disparities are scaled to at most 30 % of the image width (monodepth convention).
DISP_SCALE = 0.3



class ConvLSTM(nn.Module):
    """Convolutional LSTM cell (Shi et al. 2015) that can keep its state between calls.

    ``forward(x, stateful)``: ``x`` is ``B x cin x H x W`` float; returns the hidden state
    ``B x hidden x H x W``. Without ``stateful`` (or without a stored state of that shape and
    device) the state starts at zero. With ``stateful`` the new ``(h, c)`` is stored,
    detached (truncated back-propagation: gradients do not flow into earlier frames).
    """

    def __init__(self, cin: int, hidden: int, kernel_size: int = 3):
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(cin + hidden, 4 * hidden, kernel_size, padding=kernel_size // 2)
        with torch.no_grad():  # forget-gate bias 1: remember by default early in training
            self.gates.bias.zero_()
            self.gates.bias[hidden:2 * hidden].fill_(1.0)
        self.state: Optional[Tuple[torch.Tensor, torch.Tensor]] = None

    def reset_state(self) -> None:
        """Forget the stored ``(h, c)``."""
        self.state = None

    def forward(self, x: torch.Tensor, stateful: bool = False) -> torch.Tensor:
        b, _, hgt, wid = x.shape
        shape = (b, self.hidden, hgt, wid)
        st = self.state if stateful else None
        if st is None or tuple(st[0].shape) != shape or st[0].device != x.device:
            h = c = x.new_zeros(shape)
        else:  # cast, not reset: under autocast the stored state's dtype may differ from x's
            h, c = st[0].to(x.dtype), st[1].to(x.dtype)
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        if stateful:
            self.state = (h.detach(), c.detach())
        return h


def _conv_elu(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.ELU(inplace=True))


class _Branch(nn.Module):
    """One siamese branch: encoder, convLSTM skips and bottleneck, disparity decoder.

    ``forward(x, stateful)``: ``B x 3 x H x W`` (H, W multiples of 32) -> list of four
    ``B x 2 x H/s x W/s`` (s = 1, 2, 4, 8) left/right disparities in ``[0, 0.3]``, finest first.
    """

    def __init__(self, b: int):
        super().__init__()
        ch = [b, 2 * b, 4 * b, 8 * b, 16 * b, 16 * b]
        ks = [7, 5, 3, 3, 3, 3]
        cin = [3] + ch[:-1]
        # conv1a..conv6b: two convs + ELU per level; 2x2 max-pool after levels 1-5.
        self.enc = nn.ModuleList(nn.Sequential(_conv_elu(cin[i], ch[i], ks[i]),
                                               _conv_elu(ch[i], ch[i], ks[i])) for i in range(6))
        self.skip_lstm = nn.ModuleList(ConvLSTM(ch[i], ch[i]) for i in range(5))
        self.bottleneck = nn.ModuleList([ConvLSTM(ch[5], ch[5]), ConvLSTM(ch[5], ch[5])])
        up = [8 * b, 4 * b, 2 * b, b, max(1, b // 2)]       # deconv5 .. deconv1
        dec_in = [ch[5]] + up[:-1]
        self.deconv = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(dec_in[i], up[i], 4, stride=2, padding=1),
                          nn.ELU(inplace=True)) for i in range(5))
        # iconv5 .. iconv1: deconv output + convLSTM skip (+ upsampled coarser disparity).
        self.iconv = nn.ModuleList(
            _conv_elu(up[i] + ch[4 - i] + (2 if i >= 2 else 0), up[i], 3) for i in range(5))
        self.disp = nn.ModuleList(nn.Conv2d(up[i], 2, 3, padding=1) for i in (1, 2, 3, 4))

    def forward(self, x: torch.Tensor, stateful: bool) -> List[torch.Tensor]:
        skips = []
        y = x
        for i, level in enumerate(self.enc):
            y = level(y)
            if i < 5:
                skips.append(self.skip_lstm[i](y, stateful))
                y = F.max_pool2d(y, 2)
        for lstm in self.bottleneck:
            y = F.leaky_relu(lstm(y, stateful), 0.2)
        disps: List[torch.Tensor] = []
        for i in range(5):
            skip = skips[4 - i]
            y = resize_to(self.deconv[i](y), skip.shape[-2:])
            parts = [y, skip]
            if disps:  # the coarser disparity, upsampled, feeds the next scale
                parts.append(resize_to(disps[-1], skip.shape[-2:]))
            y = self.iconv[i](torch.cat(parts, dim=1))
            if i >= 1:
                disps.append(DISP_SCALE * torch.sigmoid(self.disp[i - 1](y)))
        return disps[::-1]


class FlipAverage(nn.Module):
    """Trainable merge of a disparity and the un-flipped disparity of the mirrored image.

    ``out = a(x) * d + (1 - a(x)) * d_mirror`` with a per-column weight ``a`` in ``[0, 1]``
    (``knots`` learnable values over the normalised column ``x`` in ``[0, 1]``, linearly
    interpolated to the image width). It is initialised to monodepth's post-processing: the
    plain average in the middle, and at each border only the prediction that has no occlusion
    ramp there (the mirrored one at the left border, over the left 5-10 % of the width).

    ``forward(d, d_mirror)``: two ``B x 1 x H x W`` float maps -> ``B x 1 x H x W``.
    """

    def __init__(self, knots: int = 256):
        super().__init__()
        x = torch.linspace(0.0, 1.0, knots)
        left = 1.0 - torch.clamp(20.0 * (x - 0.05), 0.0, 1.0)   # 1 where d has the ramp
        right = left.flip(0)
        self.weight = nn.Parameter(0.5 + 0.5 * (right - left))

    def profile(self, width: int) -> torch.Tensor:
        """Per-column weight of ``d``: ``width`` floats in ``[0, 1]``."""
        a = F.interpolate(self.weight.view(1, 1, -1), size=width, mode="linear",
                          align_corners=True)
        return a.view(-1).clamp(0.0, 1.0)

    def forward(self, d: torch.Tensor, d_mirror: torch.Tensor) -> torch.Tensor:
        a = self.profile(d.shape[-1]).to(d.dtype).view(1, 1, 1, -1)
        return a * d + (1.0 - a) * d_mirror


class SiameseConvLSTM(nn.Module):
    """Siamese convLSTM encoder-decoder predicting disparity (``siamese_convlstm``).

    The shared branch (:class:`_Branch`) runs on ``I`` and on ``flip(I)`` in one batch;
    :class:`FlipAverage` merges the finest left disparity of the first with the un-flipped one of
    the second.

    Attributes:
        stateful: ``False`` (default): every call starts from zero convLSTM states. ``True``:
            each call continues from the states left by the previous call (consecutive frames
            of one stream, same batch and size); :meth:`reset_state` starts a new sequence.

    Input ``B x 3 x H x W`` float32 raw RGB in ``[0, 1]``, H, W multiples of 32.

    Returns:
        dict of float32 tensors: ``"depth"``: ``B x 1 x H x W`` refined left disparity as a
        fraction of image width, in ``[0, 0.3]``; ``"disparities"``: four ``B x 2 x H/s x W/s``
        (s = 1, 2, 4, 8, finest first) left/right disparities of the ``I`` branch, for the
        unsupervised stereo losses; ``"disparities_flipped"``: the same for the ``flip(I)``
        branch (in mirrored image coordinates).

    Raises:
        ValueError: input not ``B x 3 x H x W``.
    """

    def __init__(self, base_channels: int = 32, blend_knots: int = 256):
        super().__init__()
        self.branch = _Branch(base_channels)
        self.refine = FlipAverage(blend_knots)
        self.stateful = False

    def reset_state(self) -> None:
        """Zero every convLSTM state (start of a new frame sequence)."""
        for m in self.modules():
            if isinstance(m, ConvLSTM):
                m.reset_state()

    def forward(self, x: torch.Tensor) -> Dict[str, object]:
        """``B x 3 x H x W`` -> ``{"depth", "disparities", "disparities_flipped"}``."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"siamese_convlstm expects B x 3 x H x W, got {tuple(x.shape)}")
        b = x.shape[0]
        disps = self.branch(torch.cat([x, x.flip(-1)], dim=0), self.stateful)
        d1 = [d[:b] for d in disps]
        d2 = [d[b:] for d in disps]
        depth = self.refine(d1[0][:, :1], d2[0][:, :1].flip(-1))
        return {"depth": depth, "disparities": d1, "disparities_flipped": d2}


_CITATION = ("Yusiong & Naval, 'Unsupervised Monocular Depth Estimation of Driving Scenes Using "
             "Siamese Convolutional LSTM Networks'; Godard et al., 'Unsupervised Monocular Depth "
             "Estimation with Left-Right Consistency', CVPR 2017")


@register_model(ModelSpec(
    name="siamese_convlstm",
    input_size=(256, 512),
    output_kind="disparity",
    stereo_baseline=0.54,
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
    depth_range=(1.0, 80.0),
    recommended_loss="monodepth",
    citation=_CITATION,
    description="Siamese convLSTM encoder-decoder, unsupervised stereo training; disparity "
                "(fraction of width), stateful across frames",
    extras={"output_activation": "sigmoid", "output_max": DISP_SCALE, "num_scales": 4},
))
def siamese_convlstm(pretrained: Union[bool, str] = False, base_channels: int = 32,
                     blend_knots: int = 256) -> SiameseConvLSTM:
    """Factory for :class:`SiameseConvLSTM` (registered as ``siamese_convlstm``).

    Raises:
        PretrainedWeightsUnavailable: ``pretrained=True`` (no published weights are on this
            machine) or a weights path that does not exist; a path loads a full state dict.
    """
    if pretrained is True:
        raise PretrainedWeightsUnavailable(
            "siamese_convlstm has no pretrained weights on this machine (nothing is downloaded); "
            "train it or load a checkpoint with create_model(..., checkpoint=...)")
    model = SiameseConvLSTM(base_channels=base_channels, blend_knots=blend_knots)
    if pretrained:
        path = Path(os.fspath(pretrained))
        if not path.is_file():
            raise PretrainedWeightsUnavailable(f"siamese_convlstm weights not found: {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state.get("state_dict", state), strict=True)
    return model
