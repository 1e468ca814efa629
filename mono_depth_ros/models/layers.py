"""Small building blocks shared by the model files."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def resize_to(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinearly resize ``B x C x h x w`` to ``size`` ``(H, W)``; a no-op when it matches.

    Used wherever a skip or output must land on another grid (odd sizes from unpadded encoders,
    inputs that are not powers of two).
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
