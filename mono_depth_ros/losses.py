"""Depth losses as function + ``nn.Module`` pairs, each taking a valid-pixel mask (ROS-free).

All functions take ``pred`` and ``target`` of shape ``B x 1 x H x W`` (float32, metres or the
model's output unit) and an optional boolean ``mask`` of the same shape (True = supervise);
they return a scalar tensor. Pixels outside the mask never contribute, so Kinect holes (NaN or
0 in the ground truth) need no in-painting.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn


def _check(pred: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if pred.dim() != 4 or pred.shape[1] != 1:
        raise ValueError(f"expected B x 1 x H x W, got {tuple(pred.shape)}")
    valid = torch.isfinite(target) & (target > 0)
    if mask is not None:
        if mask.shape != pred.shape:
            raise ValueError(f"mask {tuple(mask.shape)} does not match {tuple(pred.shape)}")
        valid &= mask.bool()
    return valid


def l1_loss(pred: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None
            ) -> torch.Tensor:
    """Mean absolute error over valid pixels.

    Raises:
        ValueError: shapes differ or are not ``B x 1 x H x W``.
    """
    valid = _check(pred, target, mask)
    if not valid.any():
        return pred.sum() * 0.0
    return (pred[valid] - target[valid]).abs().mean()


def berhu_loss(pred: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None,
               threshold: float = 0.2) -> torch.Tensor:
    """Reverse Huber (BerHu) loss, Laina et al., 3DV 2016 (used by Calderoni et al.).

    ``|e|`` for ``|e| <= c`` and ``(e^2 + c^2) / (2c)`` above, with ``c = threshold * max|e|``
    over the batch's valid pixels (detached, as in the paper).

    Raises:
        ValueError: shapes differ or are not ``B x 1 x H x W``.
    """
    valid = _check(pred, target, mask)
    if not valid.any():
        return pred.sum() * 0.0
    err = (pred[valid] - target[valid]).abs()
    c = (threshold * err.max()).detach().clamp_min(1e-6)
    return torch.where(err <= c, err, (err ** 2 + c ** 2) / (2 * c)).mean()


def silog_loss(pred: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None,
               variance_focus: float = 0.85) -> torch.Tensor:
    """Scale-invariant log loss (Eigen et al., NIPS 2014; lambda form of BTS).

    ``sqrt(mean(d^2) - lambda * mean(d)^2)`` with ``d = log(pred) - log(target)``.

    Raises:
        ValueError: shapes differ or are not ``B x 1 x H x W``.
    """
    valid = _check(pred, target, mask) & (pred > 0)
    if not valid.any():
        return pred.sum() * 0.0
    d = torch.log(pred[valid]) - torch.log(target[valid])
    return torch.sqrt((d ** 2).mean() - variance_focus * d.mean() ** 2 + 1e-8)


class L1Loss(nn.Module):
    """Module form of :func:`l1_loss`."""

    def forward(self, pred, target, mask=None):
        return l1_loss(pred, target, mask)


class BerHuLoss(nn.Module):
    """Module form of :func:`berhu_loss`."""

    def __init__(self, threshold: float = 0.2):
        super().__init__()
        self.threshold = threshold

    def forward(self, pred, target, mask=None):
        return berhu_loss(pred, target, mask, self.threshold)


class SILogLoss(nn.Module):
    """Module form of :func:`silog_loss`."""

    def __init__(self, variance_focus: float = 0.85):
        super().__init__()
        self.variance_focus = variance_focus

    def forward(self, pred, target, mask=None):
        return silog_loss(pred, target, mask, self.variance_focus)


LOSSES = {"l1": L1Loss, "berhu": BerHuLoss, "silog": SILogLoss}


def create_loss(name: str, **kwargs) -> nn.Module:
    """Loss module by name.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
    """
    try:
        return LOSSES[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; valid: {', '.join(sorted(LOSSES))}") from None
