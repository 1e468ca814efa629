"""Training losses as function + ``nn.Module`` pairs (ROS-free); :func:`create_loss` by name.

Depth losses (:data:`DEPTH_LOSSES`: ``l1``, ``berhu``, ``silog``, ``silog_image``, ``l2``,
``ssim``, ``gradient``, ``das_composite``; sums such as ``silog_image+berhu``) take ``pred`` and
``target`` of shape ``B x 1 x H x W`` (float32, metres or the model's output unit) and an
optional boolean ``mask`` of the same shape (True = supervise); they return a scalar tensor.
Target pixels that are NaN, inf or <= 0 and pixels outside the mask never contribute, so Kinect
holes need no in-painting; a batch with no valid pixel gives 0 (still attached to the graph).

Other losses: ``bce`` (OHES segmentation planes, Valdez-Rodríguez et al.) and ``stereo`` /
``monodepth`` (self-supervised rectified stereo, Yusiong & Naval), with their own inputs.
Shape errors raise ``ValueError`` everywhere.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import kornia
import torch
import torch.nn.functional as F
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
               variance_focus: float = 0.85, per_image: bool = False) -> torch.Tensor:
    """Scale-invariant log loss (Eigen et al., NIPS 2014; lambda form of BTS).

    ``sqrt(mean(d^2) - lambda * mean(d)^2)`` with ``d = log(pred) - log(target)``, over the
    batch's valid pixels, or with ``per_image`` over each image's (Eigen et al.'s form: one
    scale per image, which matters when a batch mixes scenes) and then averaged over the
    images that have valid pixels.

    Raises:
        ValueError: shapes differ or are not ``B x 1 x H x W``.
    """
    valid = _check(pred, target, mask) & (pred > 0)
    if not valid.any():
        return pred.sum() * 0.0
    if not per_image:
        d = torch.log(pred[valid]) - torch.log(target[valid])
        return torch.sqrt((d ** 2).mean() - variance_focus * d.mean() ** 2 + 1e-8)
    d = torch.where(valid, torch.log(pred.clamp_min(1e-6)) - torch.log(
        torch.where(valid, target, torch.ones_like(target))), torch.zeros_like(pred))
    n = valid.flatten(1).sum(1).float()
    has = n > 0
    m1 = d.flatten(1).sum(1)[has] / n[has]
    m2 = (d ** 2).flatten(1).sum(1)[has] / n[has]
    return torch.sqrt((m2 - variance_focus * m1 ** 2).clamp_min(0) + 1e-8).mean()


# ------------------------------------------------------------------------------ L2

def l2_loss(pred: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None
            ) -> torch.Tensor:
    """Half mean squared error over valid pixels, Valdez-Rodríguez et al., Sensors 2022, eq. 3.

    ``L = 1/(2n) * sum_i (pred_i - target_i)^2`` over the ``n`` valid pixels (the ½ is the
    paper's; it only rescales the gradient). Inputs as in the module docstring; returns a
    float32 scalar in squared target units (m² for metric depth).

    Raises:
        ValueError: shapes differ or are not ``B x 1 x H x W``.
    """
    valid = _check(pred, target, mask)
    if not valid.any():
        return pred.sum() * 0.0
    return 0.5 * ((pred[valid] - target[valid]) ** 2).mean()


# ------------------------------------------------------------------------------ SSIM

def _ssim_map(x: torch.Tensor, y: torch.Tensor, max_val: float = 1.0) -> torch.Tensor:
    """Per-pixel SSIM of two ``B x C x H x W`` float tensors over a 3×3 window (kornia).

    The window is kornia's 3-tap Gaussian (σ = 1.5, weights ≈ 0.31/0.38/0.31), close to the 3×3
    mean pooling of Yusiong & Naval / Godard et al.; borders are reflect-padded (replicate when a
    side is 1 pixel) so the map keeps ``H x W``. ``eps=0`` so identical images give exactly 1
    (``C1 = (0.01·max_val)², C2 = (0.03·max_val)²`` keep the ratio finite).
    """
    mode = "reflect" if min(x.shape[-2:]) >= 2 else "replicate"
    xp = F.pad(x, (1, 1, 1, 1), mode=mode)
    yp = F.pad(y, (1, 1, 1, 1), mode=mode)
    return kornia.metrics.ssim(xp, yp, 3, max_val=float(max_val), eps=0.0, padding="valid")


def ssim_loss(pred: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None,
              max_val: float = 1.0) -> torch.Tensor:
    """Structural dissimilarity ``(1 - SSIM) / 2`` over a 3×3 window, masked mean.

    As in Yusiong & Naval (and Das et al.'s SSIM term), SSIM (Wang et al., 2004) is computed by
    :func:`kornia.metrics.ssim` (see :func:`_ssim_map` for the window), the per-pixel
    dissimilarity is clamped to ``[0, 1]`` and averaged over the valid pixels.

    Invalid target pixels (NaN, inf, <= 0, or outside ``mask``) are filled with the detached
    prediction before filtering so that holes neither poison their neighbours' windows with NaN
    nor create artificial edges; they are then left out of the mean.

    Args:
        pred, target: ``B x 1 x H x W`` float.
        mask: optional ``B x 1 x H x W`` (True = supervise).
        max_val: dynamic range ``L`` of the values (1.0 for images in ``[0, 1]`` and normalised
            depth; the depth range, e.g. 10.0 m, for metric depth).

    Returns:
        Scalar tensor in ``[0, 1]``; 0 for identical inputs.

    Raises:
        ValueError: shapes differ or are not ``B x 1 x H x W``.
    """
    valid = _check(pred, target, mask)
    if not valid.any():
        return pred.sum() * 0.0
    filled = torch.where(valid, target, pred.detach())
    dssim = ((1.0 - _ssim_map(pred, filled, max_val)) / 2.0).clamp(0.0, 1.0)
    return dssim[valid].mean()


# ------------------------------------------------------------------------------ gradient

def gradient_loss(pred: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None
                  ) -> torch.Tensor:
    """Gradient-edge loss, Das et al. eq. 4 (the DenseDepth ``L_grad`` form).

    With forward differences ``∂x f(i, j) = f(i, j+1) - f(i, j)`` and
    ``∂y f(i, j) = f(i+1, j) - f(i, j)`` and ``e = pred - target``::

        L = mean_x |∂x pred - ∂x target| + mean_y |∂y pred - ∂y target|
          = mean_x |∂x e| + mean_y |∂y e|

    i.e. the L1 distance of the image gradients; ``mean_x`` runs over the horizontal pairs
    whose two pixels are both valid, ``mean_y`` over the valid vertical pairs (a direction with
    no valid pair contributes 0). It is zero for any prediction differing from the target by a
    constant, so it only supervises edges and slopes.

    Args:
        pred, target: ``B x 1 x H x W`` float (metres or the model's unit).
        mask: optional ``B x 1 x H x W`` (True = supervise).

    Returns:
        Scalar tensor (target units per pixel).

    Raises:
        ValueError: shapes differ or are not ``B x 1 x H x W``.
    """
    valid = _check(pred, target, mask)
    e = pred - torch.where(valid, target, torch.zeros_like(target))  # no NaN into the graph
    total = pred.sum() * 0.0
    vx = valid[..., :, 1:] & valid[..., :, :-1]
    if vx.any():
        total = total + (e[..., :, 1:] - e[..., :, :-1])[vx].abs().mean()
    vy = valid[..., 1:, :] & valid[..., :-1, :]
    if vy.any():
        total = total + (e[..., 1:, :] - e[..., :-1, :])[vy].abs().mean()
    return total


# ------------------------------------------------------------------------------ Das composite

def das_composite_loss(pred: torch.Tensor, target: torch.Tensor,
                       mask: Optional[torch.Tensor] = None, w1: float = 1.0, w2: float = 1.0,
                       w3: float = 1.0, max_val: float = 1.0) -> torch.Tensor:
    """Das et al. eq. 2: ``w1 * L1 + w2 * gradient + w3 * SSIM`` over the valid pixels.

    Terms: :func:`l1_loss`, :func:`gradient_loss` and :func:`ssim_loss` (``max_val`` goes to the
    SSIM term; the default 1.0 suits the sigmoid-normalised depth of ``irv2_encdec``). The
    weights default to 1 each; DenseDepth (Alhashim & Wonka, 2018), whose loss this follows,
    uses ``w1 = 0.1``.

    Raises:
        ValueError: shapes differ or are not ``B x 1 x H x W``.
    """
    return (w1 * l1_loss(pred, target, mask) + w2 * gradient_loss(pred, target, mask)
            + w3 * ssim_loss(pred, target, mask, max_val))


# ------------------------------------------------------------------------------ BCE over OHES

def bce_loss(pred: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None,
             logits: bool = False) -> torch.Tensor:
    """Binary cross-entropy over one-hot (OHES) planes, Valdez-Rodríguez et al. eq. 1.

    ``L = -mean(t * log p + (1 - t) * log(1 - p))`` over every plane of every valid pixel
    (computed by :func:`torch.nn.functional.binary_cross_entropy` in float32 with autocast off:
    it floors the logs at -100, so saturated probabilities stay finite).

    Args:
        pred: ``B x C x H x W`` float probabilities in ``[0, 1]`` (C = 14 OHES planes).
        target: ``B x C x H x W`` float one-hot (or soft) planes in ``[0, 1]``, or ``B x H x W``
            integer class ids; ids outside ``[0, C)`` (e.g. 255 = void) are left out.
        mask: optional ``B x H x W`` (or ``B x 1 x H x W``) boolean, True = supervise.
        logits: ``pred`` holds the pre-sigmoid logits: the same loss through
            :func:`torch.nn.functional.binary_cross_entropy_with_logits`, which stays exact where
            the sigmoid saturates (a float16 sigmoid rounds to exactly 1 from a logit of about 8,
            and the probability form then sees log(0)). Training uses this form.

    Returns:
        Scalar float32 tensor (nats per plane and pixel).

    Raises:
        ValueError: ``pred`` not 4-D, ``target`` / ``mask`` of the wrong shape, or ``pred``
            outside ``[0, 1]``.
    """
    if pred.dim() != 4:
        raise ValueError(f"pred must be B x C x H x W probabilities, got {tuple(pred.shape)}")
    b, c, h, w = pred.shape
    valid = torch.ones(b, h, w, dtype=torch.bool, device=pred.device)
    if target.dim() == 3 and not target.is_floating_point():
        if tuple(target.shape) != (b, h, w):
            raise ValueError(f"class ids {tuple(target.shape)} do not match pred "
                             f"{tuple(pred.shape)}")
        ids = target.long()
        valid &= (ids >= 0) & (ids < c)
        target = F.one_hot(ids.clamp(0, c - 1), c).permute(0, 3, 1, 2).to(pred.dtype)
    elif target.shape != pred.shape:
        raise ValueError(f"target {tuple(target.shape)} must match pred {tuple(pred.shape)} "
                         "(one-hot planes) or be B x H x W integer class ids")
    if mask is not None:
        if mask.dim() == 4 and mask.shape[1] == 1:
            mask = mask[:, 0]
        if tuple(mask.shape) != (b, h, w):
            raise ValueError(f"mask {tuple(mask.shape)} must be B x H x W = {(b, h, w)}")
        valid &= mask.bool()
    if not logits and bool(((pred < 0) | (pred > 1)).any()):
        raise ValueError("pred must hold probabilities in [0, 1] (apply a sigmoid first)")
    if not valid.any():
        return pred.sum() * 0.0
    p = pred.permute(0, 2, 3, 1)[valid]  # N x C
    t = target.permute(0, 2, 3, 1)[valid]
    # binary_cross_entropy refuses to run under autocast; float32 keeps the log floor exact
    with torch.autocast(device_type=pred.device.type, enabled=False):
        if logits:
            return F.binary_cross_entropy_with_logits(p.float(), t.float())
        return F.binary_cross_entropy(p.float(), t.float())


# ------------------------------------------------------------------------ stereo (Yusiong & Naval)

_DIRECTIONS = ("left", "right")


def warp_by_disparity(img: torch.Tensor, disp: torch.Tensor, direction: str = "left"
                      ) -> torch.Tensor:
    """Reconstruct one view of a rectified stereo pair from the other by horizontal sampling.

    Bilinear :func:`torch.nn.functional.grid_sample` with border padding and pixel-centre
    coordinates (``align_corners=False``); ``disp`` is a fraction of the image width, so a
    disparity ``d`` moves the sampling point by ``d * W`` pixels:

    - ``direction="left"``: ``out(x) = img(x - d * W)``: the left view from the right image
      ``img`` and the left disparity ``d`` (a point at column ``x`` in the left image is at
      ``x - d·W`` in the right one);
    - ``direction="right"``: ``out(x) = img(x + d * W)``: the right view from the left image and
      the right disparity.

    Args:
        img: ``B x C x H x W`` float (image or a disparity map).
        disp: ``B x 1 x H x W`` (or ``B x H x W``) float, fraction of width.
        direction: ``"left"`` or ``"right"``, the view reconstructed.

    Returns:
        ``B x C x H x W`` tensor of ``img``'s dtype, differentiable w.r.t. ``img`` and ``disp``.

    Raises:
        ValueError: bad shapes or direction.
    """
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")
    if img.dim() != 4:
        raise ValueError(f"img must be B x C x H x W, got {tuple(img.shape)}")
    if disp.dim() == 3:
        disp = disp.unsqueeze(1)
    b, _, h, w = img.shape
    if tuple(disp.shape) != (b, 1, h, w):
        raise ValueError(f"disp {tuple(disp.shape)} must be B x 1 x H x W = {(b, 1, h, w)}")
    dtype = img.dtype if img.is_floating_point() else torch.float32
    # normalised pixel centres: x = (2j + 1) / W - 1; d * W pixels = 2d in these units
    xs = (torch.arange(w, device=img.device, dtype=dtype) * 2 + 1) / w - 1
    ys = (torch.arange(h, device=img.device, dtype=dtype) * 2 + 1) / h - 1
    sign = -1.0 if direction == "left" else 1.0
    gx = xs.view(1, 1, w) + sign * 2.0 * disp[:, 0].to(dtype)
    gy = ys.view(1, h, 1).expand(b, h, w)
    grid = torch.stack((gx, gy), dim=-1)
    return F.grid_sample(img.to(dtype), grid, mode="bilinear", padding_mode="border",
                         align_corners=False)


def appearance_matching_loss(img: torch.Tensor, reconstructed: torch.Tensor,
                             alpha: float = 0.85) -> torch.Tensor:
    """Photometric term ``mean(alpha * (1 - SSIM)/2 + (1 - alpha) * |img - reconstructed|)``.

    Yusiong & Naval (after Godard et al., CVPR 2017) with ``alpha = 0.85`` and the 3×3 SSIM of
    :func:`_ssim_map` (``max_val = 1``); the L1 part is averaged over channels per pixel.

    Args:
        img, reconstructed: ``B x C x H x W`` float in ``[0, 1]``.

    Raises:
        ValueError: shapes differ or are not 4-D.
    """
    if img.dim() != 4 or img.shape != reconstructed.shape:
        raise ValueError(f"expected two equal B x C x H x W tensors, got {tuple(img.shape)} "
                         f"and {tuple(reconstructed.shape)}")
    dssim = ((1.0 - _ssim_map(img, reconstructed, 1.0)) / 2.0).clamp(0.0, 1.0)
    return (alpha * dssim + (1.0 - alpha) * (img - reconstructed).abs()).mean()


def disparity_smoothness_loss(disp: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    """Edge-aware smoothness ``mean|∂x d|·exp(-|∂x I|) + mean|∂y d|·exp(-|∂y I|)``.

    Forward differences; ``|∂I|`` is averaged over the image channels, so disparity may jump
    where the image has an edge (Godard et al. / Yusiong & Naval). Zero for constant ``disp``.

    Args:
        disp: ``B x 1 x H x W`` float disparity (fraction of width).
        img: ``B x C x H x W`` float image in ``[0, 1]`` of the same view and size.

    Raises:
        ValueError: shapes do not match.
    """
    if disp.dim() != 4 or img.dim() != 4 or disp.shape[1] != 1 or \
            disp.shape[0] != img.shape[0] or disp.shape[-2:] != img.shape[-2:]:
        raise ValueError(f"disp {tuple(disp.shape)} must be B x 1 x H x W matching img "
                         f"{tuple(img.shape)}")
    total = disp.sum() * 0.0
    if disp.shape[-1] > 1:
        wx = torch.exp(-(img[..., :, 1:] - img[..., :, :-1]).abs().mean(1, keepdim=True))
        total = total + ((disp[..., :, 1:] - disp[..., :, :-1]).abs() * wx).mean()
    if disp.shape[-2] > 1:
        wy = torch.exp(-(img[..., 1:, :] - img[..., :-1, :]).abs().mean(1, keepdim=True))
        total = total + ((disp[..., 1:, :] - disp[..., :-1, :]).abs() * wy).mean()
    return total


def lr_consistency_loss(disp_left: torch.Tensor, disp_right: torch.Tensor) -> torch.Tensor:
    """Left-right disparity consistency (Godard et al.; Yusiong & Naval).

    ``mean|d_l - warp(d_r -> left)| + mean|d_r - warp(d_l -> right)|`` where each disparity map
    is warped into the other view with :func:`warp_by_disparity` using that view's disparity.

    Args:
        disp_left, disp_right: ``B x 1 x H x W`` float (fraction of width).

    Raises:
        ValueError: shapes differ or are not ``B x 1 x H x W``.
    """
    if disp_left.shape != disp_right.shape or disp_left.dim() != 4 or disp_left.shape[1] != 1:
        raise ValueError(f"expected two B x 1 x H x W disparities, got {tuple(disp_left.shape)} "
                         f"and {tuple(disp_right.shape)}")
    r2l = warp_by_disparity(disp_right, disp_left, "left")
    l2r = warp_by_disparity(disp_left, disp_right, "right")
    return (disp_left - r2l).abs().mean() + (disp_right - l2r).abs().mean()


def max_depth_heuristic_loss(disp: torch.Tensor) -> torch.Tensor:
    """Maximum-depth heuristic ``mean |d|`` over all pixels (and channels) of ``disp``.

    Our reading of Yusiong & Naval's MDH: a small L1 pull of every disparity towards 0 (depth
    towards infinity / the maximum), which only wins where the photometric terms leave the
    disparity unconstrained (textureless sky, occlusions), removing the spurious near-depth
    artefacts there. Weighted by ``alpha_mdh = 0.01`` in :func:`stereo_loss`.

    Args:
        disp: ``B x K x H x W`` float disparity (fraction of width).
    """
    return disp.abs().mean()


def _resize_image(img: torch.Tensor, size) -> torch.Tensor:
    """``img`` at ``size = (h, w)``: area averaging when shrinking, bilinear when enlarging."""
    size = tuple(int(s) for s in size)
    if tuple(img.shape[-2:]) == size:
        return img
    if size[0] <= img.shape[-2] and size[1] <= img.shape[-1]:
        return F.interpolate(img, size=size, mode="area")
    return F.interpolate(img, size=size, mode="bilinear", align_corners=False)


STEREO_TERMS = ("appearance", "smoothness", "lr_consistency", "max_depth")


def stereo_scale_terms(disp: torch.Tensor, left: torch.Tensor, right: torch.Tensor,
                       alpha: float = 0.85) -> Dict[str, torch.Tensor]:
    """The four unweighted Yusiong & Naval terms at one scale.

    Args:
        disp: ``B x 2 x h x w`` float, channel 0 left disparity, 1 right (fraction of width).
        left, right: ``B x C x h x w`` float images in ``[0, 1]`` at that scale.
        alpha: SSIM weight of the appearance term.

    Returns:
        dict of scalar tensors keyed by :data:`STEREO_TERMS`; each is the sum of its left- and
        right-view parts (``max_depth`` averages both channels).

    Raises:
        ValueError: shapes do not match.
    """
    if disp.dim() != 4 or disp.shape[1] != 2:
        raise ValueError(f"disparities must be B x 2 x h x w, got {tuple(disp.shape)}")
    if left.shape != right.shape or left.dim() != 4 or left.shape[0] != disp.shape[0] \
            or left.shape[-2:] != disp.shape[-2:]:
        raise ValueError(f"images {tuple(left.shape)} / {tuple(right.shape)} do not match "
                         f"disparities {tuple(disp.shape)}")
    dl, dr = disp[:, :1], disp[:, 1:]
    left_est = warp_by_disparity(right, dl, "left")
    right_est = warp_by_disparity(left, dr, "right")
    return {
        "appearance": appearance_matching_loss(left, left_est, alpha)
        + appearance_matching_loss(right, right_est, alpha),
        "smoothness": disparity_smoothness_loss(dl, left) + disparity_smoothness_loss(dr, right),
        "lr_consistency": lr_consistency_loss(dl, dr),
        "max_depth": max_depth_heuristic_loss(disp),
    }


def stereo_loss(disparities: Sequence[torch.Tensor], left: torch.Tensor, right: torch.Tensor,
                alpha_app: float = 1.0, alpha_smooth: float = 0.1, alpha_lr: float = 1.0,
                alpha_mdh: float = 0.01, alpha_ssim: float = 0.85
                ) -> Tuple[torch.Tensor, Dict[str, float]]:
    """Self-supervised stereo loss of Yusiong & Naval (monodepth-style), summed over scales.

    ``total = sum_s [alpha_app * A_s + alpha_smooth / 2^s * S_s + alpha_lr * LR_s
    + alpha_mdh * MDH_s]`` with the terms of :func:`stereo_scale_terms` at scale ``s`` (0 =
    finest); the smoothness weight halves per scale because coarser disparity gradients span
    twice the image distance. The images are resized to each disparity's size (area averaging).

    Args:
        disparities: list of ``B x 2 x h_s x w_s`` float tensors, finest first (four in the
            paper; ``siamese_convlstm``'s ``"disparities"``); channel 0 left, 1 right
            disparity, as a fraction of image width.
        left, right: ``B x C x H x W`` float rectified images in ``[0, 1]`` (C = 3).

    Returns:
        ``(total, terms)``: ``total`` a scalar tensor with gradients to the disparities;
        ``terms`` a dict of Python floats (:data:`STEREO_TERMS`), each the weighted
        contribution summed over scales (they add up to ``total``).

    Raises:
        ValueError: empty list, or shapes that do not match.
    """
    if isinstance(disparities, torch.Tensor):
        disparities = [disparities]
    if len(disparities) == 0:
        raise ValueError("need at least one disparity scale")
    if left.dim() != 4 or left.shape != right.shape:
        raise ValueError(f"left {tuple(left.shape)} and right {tuple(right.shape)} must be equal "
                         "B x C x H x W")
    weights = {"appearance": alpha_app, "lr_consistency": alpha_lr, "max_depth": alpha_mdh}
    total = disparities[0].sum() * 0.0
    sums = {k: 0.0 for k in STEREO_TERMS}
    for s, disp in enumerate(disparities):
        if disp.dim() != 4:
            raise ValueError(f"disparities[{s}] must be B x 2 x h x w, got {tuple(disp.shape)}")
        size = disp.shape[-2:]
        terms = stereo_scale_terms(disp, _resize_image(left, size), _resize_image(right, size),
                                   alpha_ssim)
        for k, v in terms.items():
            wv = (alpha_smooth / 2 ** s if k == "smoothness" else weights[k]) * v
            total = total + wv
            sums[k] += float(wv.detach())
    return total, sums


# ------------------------------------------------------------------------------ modules

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

    def __init__(self, variance_focus: float = 0.85, per_image: bool = False):
        super().__init__()
        self.variance_focus = variance_focus
        self.per_image = per_image

    def forward(self, pred, target, mask=None):
        return silog_loss(pred, target, mask, self.variance_focus, self.per_image)


class SILogImageLoss(SILogLoss):
    """:func:`silog_loss` per image (``silog_image``)."""

    def __init__(self, variance_focus: float = 0.85):
        super().__init__(variance_focus, per_image=True)


class WeightedSumLoss(nn.Module):
    """``sum_k w_k L_k(pred, target, mask)`` of depth losses, e.g. a scale-invariant term plus
    a metric one: ``create_loss("silog_image+0.5*berhu")``.

    Args:
        terms: ``(weight, name)`` pairs, names from :data:`DEPTH_LOSSES`.

    Raises:
        ValueError: an empty list, a non-depth loss or a negative weight.
    """

    def __init__(self, terms: Sequence[Tuple[float, str]]):
        super().__init__()
        if not terms:
            raise ValueError("WeightedSumLoss needs at least one term")
        for w, name in terms:
            if name not in DEPTH_LOSSES:
                raise ValueError(f"{name!r} is not a depth loss; valid: {', '.join(DEPTH_LOSSES)}")
            if w < 0:
                raise ValueError(f"negative weight {w} for {name}")
        self.weights = [float(w) for w, _ in terms]
        self.names = [name for _, name in terms]
        self.terms = nn.ModuleList(LOSSES[name]() for name in self.names)

    def forward(self, pred, target, mask=None):
        total = pred.sum() * 0.0
        for w, term in zip(self.weights, self.terms):
            total = total + w * term(pred, target, mask)
        return total


def parse_loss_terms(spec: str) -> List[Tuple[float, str]]:
    """``"silog_image+0.5*berhu"`` -> ``[(1.0, "silog_image"), (0.5, "berhu")]``.

    Raises:
        ValueError: a term that is not ``NAME`` or ``WEIGHT*NAME``.
    """
    out = []
    for part in spec.split("+"):
        w, star, name = part.strip().rpartition("*")
        try:
            out.append((float(w) if star else 1.0, name.strip()))
        except ValueError:
            raise ValueError(f"loss term {part!r} is not NAME or WEIGHT*NAME") from None
    return out


class L2Loss(nn.Module):
    """Module form of :func:`l2_loss`."""

    def forward(self, pred, target, mask=None):
        return l2_loss(pred, target, mask)


class SSIMLoss(nn.Module):
    """Module form of :func:`ssim_loss`."""

    def __init__(self, max_val: float = 1.0):
        super().__init__()
        self.max_val = max_val

    def forward(self, pred, target, mask=None):
        return ssim_loss(pred, target, mask, self.max_val)


class GradientLoss(nn.Module):
    """Module form of :func:`gradient_loss`."""

    def forward(self, pred, target, mask=None):
        return gradient_loss(pred, target, mask)


class DasCompositeLoss(nn.Module):
    """Module form of :func:`das_composite_loss` (weights ``w1, w2, w3``, SSIM ``max_val``)."""

    def __init__(self, w1: float = 1.0, w2: float = 1.0, w3: float = 1.0, max_val: float = 1.0):
        super().__init__()
        self.w1, self.w2, self.w3, self.max_val = w1, w2, w3, max_val

    def forward(self, pred, target, mask=None):
        return das_composite_loss(pred, target, mask, self.w1, self.w2, self.w3, self.max_val)


class BCELoss(nn.Module):
    """Module form of :func:`bce_loss` (OHES planes; one-hot or class-id targets)."""

    def forward(self, pred, target, mask=None, logits: bool = False):
        return bce_loss(pred, target, mask, logits)


class StereoLoss(nn.Module):
    """Module form of :func:`stereo_loss`: ``forward(disparities, left, right)`` returns
    ``(total, terms)``; ``disparities`` may also be the model's output dict (its
    ``"disparities"`` entry is used)."""

    def __init__(self, alpha_app: float = 1.0, alpha_smooth: float = 0.1, alpha_lr: float = 1.0,
                 alpha_mdh: float = 0.01, alpha_ssim: float = 0.85):
        super().__init__()
        self.alpha_app, self.alpha_smooth, self.alpha_lr = alpha_app, alpha_smooth, alpha_lr
        self.alpha_mdh, self.alpha_ssim = alpha_mdh, alpha_ssim

    def forward(self, disparities, left, right):
        if isinstance(disparities, dict):
            disparities = disparities["disparities"]
        return stereo_loss(disparities, left, right, self.alpha_app, self.alpha_smooth,
                           self.alpha_lr, self.alpha_mdh, self.alpha_ssim)


#: Loss modules by name. ``monodepth`` is an alias of ``stereo`` (the name in the
#: ``siamese_convlstm`` spec). ``bce`` and ``stereo`` take other inputs than the depth losses.
LOSSES = {"l1": L1Loss, "berhu": BerHuLoss, "silog": SILogLoss, "silog_image": SILogImageLoss,
          "l2": L2Loss, "ssim": SSIMLoss,
          "gradient": GradientLoss, "das_composite": DasCompositeLoss, "bce": BCELoss,
          "stereo": StereoLoss, "monodepth": StereoLoss}
#: The losses taking ``(pred, target, mask)`` depth maps ``B x 1 x H x W``.
DEPTH_LOSSES = ("l1", "berhu", "silog", "silog_image", "l2", "ssim", "gradient", "das_composite")


def create_loss(name: str, **kwargs) -> nn.Module:
    """Loss module by name; ``A+B`` / ``WEIGHT*A+...`` sums depth losses (:class:`WeightedSumLoss`).

    Raises:
        ValueError: unknown name (the message lists the valid ones).
    """
    if "+" in name or "*" in name:
        return WeightedSumLoss(parse_loss_terms(name))
    try:
        return LOSSES[name](**kwargs)
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; valid: {', '.join(sorted(LOSSES))}") from None
