"""Losses against hand-computed values; masks, invalid targets, gradients, errors."""

import math

import pytest
import torch
import torch.nn.functional as F

from mono_depth_ros.training.losses import (DEPTH_LOSSES, LOSSES, STEREO_TERMS, BCELoss, BerHuLoss,
                                   DasCompositeLoss, GradientLoss, L1Loss, L2Loss, SILogLoss,
                                   SSIMLoss, StereoLoss, appearance_matching_loss, bce_loss,
                                   berhu_loss, create_loss, das_composite_loss,
                                   disparity_smoothness_loss, gradient_loss, l1_loss, l2_loss,
                                   lr_consistency_loss, max_depth_heuristic_loss, silog_loss,
                                   ssim_loss, stereo_loss, stereo_scale_terms, warp_by_disparity)


def _t(values, requires_grad=False):
    """1 x 1 x 1 x N tensor."""
    return torch.tensor(values, dtype=torch.float32).view(1, 1, 1, -1).requires_grad_(requires_grad)


def test_l1_hand_computed():
    pred, target = _t([1.1, 2.0, 3.5]), _t([1.0, 2.5, 3.0])
    assert float(l1_loss(pred, target)) == pytest.approx((0.1 + 0.5 + 0.5) / 3, rel=1e-6)
    assert float(L1Loss()(pred, target)) == pytest.approx(1.1 / 3, rel=1e-6)


def test_berhu_hand_computed():
    # |e| = [0.1, 1.0] -> c = 0.2 * 1.0 = 0.2 -> [0.1, (1 + 0.04) / 0.4 = 2.6]
    pred, target = _t([1.1, 3.0]), _t([1.0, 2.0])
    expected = (0.1 + (1.0 + 0.04) / 0.4) / 2
    assert float(berhu_loss(pred, target)) == pytest.approx(expected, rel=1e-5)
    assert float(BerHuLoss()(pred, target)) == pytest.approx(1.35, rel=1e-5)
    # another threshold: c = 0.5 -> 0.1 stays linear, 1.0 -> (1 + 0.25) / 1.0
    assert float(berhu_loss(pred, target, threshold=0.5)) == pytest.approx((0.1 + 1.25) / 2, rel=1e-5)
    # all errors below c (single pixel: |e| = max|e| > c) -> quadratic branch
    one_p, one_t = _t([2.0]), _t([1.0])
    assert float(berhu_loss(one_p, one_t)) == pytest.approx((1.0 + 0.04) / 0.4, rel=1e-5)


def test_silog_hand_computed():
    p, g = [1.1, 1.8, 5.0], [1.0, 2.0, 4.0]
    d = [math.log(a) - math.log(b) for a, b in zip(p, g)]
    m2 = sum(x * x for x in d) / 3
    m1 = sum(d) / 3
    expected = math.sqrt(m2 - 0.85 * m1 ** 2 + 1e-8)
    assert float(silog_loss(_t(p), _t(g))) == pytest.approx(expected, rel=1e-5)
    # lambda = 1: fully scale invariant -> a scaled prediction has (almost) zero loss
    gt = _t([1.0, 2.0, 4.0, 8.0])
    assert float(silog_loss(2.5 * gt, gt, variance_focus=1.0)) == pytest.approx(0.0, abs=1e-3)
    assert float(SILogLoss(variance_focus=1.0)(2.5 * gt, gt)) == pytest.approx(0.0, abs=1e-3)
    # lambda = 0: plain RMS of log error
    expected0 = math.sqrt(m2 + 1e-8)
    assert float(silog_loss(_t(p), _t(g), variance_focus=0.0)) == pytest.approx(expected0, rel=1e-5)


@pytest.mark.parametrize("name", ["l1", "berhu", "silog", "l2"])
def test_mask_excludes_pixels(name):
    loss = create_loss(name)
    pred = _t([1.1, 3.0, 100.0, 0.01])
    target = _t([1.0, 2.0, 1.0, 5.0])
    mask = torch.tensor([True, True, False, False]).view(1, 1, 1, -1)
    ref = loss(_t([1.1, 3.0]), _t([1.0, 2.0]))
    assert float(loss(pred, target, mask)) == pytest.approx(float(ref), rel=1e-6)
    # integer / float masks are accepted too
    assert float(loss(pred, target, mask.float())) == pytest.approx(float(ref), rel=1e-6)


@pytest.mark.parametrize("name", ["l1", "berhu", "silog", "l2"])
def test_invalid_targets_excluded_and_gradients_finite(name):
    loss = create_loss(name)
    pred = _t([1.1, 3.0, 7.0, 9.0, 4.0], requires_grad=True)
    target = _t([1.0, 2.0, float("nan"), 0.0, float("inf")])
    value = loss(pred, target)
    ref = loss(_t([1.1, 3.0]), _t([1.0, 2.0]))
    assert torch.isfinite(value)
    assert value.item() == pytest.approx(float(ref), rel=1e-6)
    value.backward()
    assert torch.isfinite(pred.grad).all()
    # invalid pixels receive no gradient, valid ones do
    assert pred.grad[0, 0, 0, 2:].abs().sum() == 0
    assert pred.grad[0, 0, 0, :2].abs().sum() > 0


@pytest.mark.parametrize("name", ["l1", "berhu", "silog", "l2"])
def test_all_invalid_gives_zero_with_graph(name):
    pred = _t([1.0, 2.0], requires_grad=True)
    value = create_loss(name)(pred, _t([float("nan"), 0.0]))
    assert value.item() == 0.0
    value.backward()  # still differentiable (a batch of holes must not crash training)
    assert torch.isfinite(pred.grad).all()


def test_silog_ignores_non_positive_predictions():
    pred = _t([1.1, 1.8, 5.0, -1.0, 0.0], requires_grad=True)
    target = _t([1.0, 2.0, 4.0, 3.0, 3.0])
    value = silog_loss(pred, target)
    assert value.item() == pytest.approx(float(silog_loss(_t([1.1, 1.8, 5.0]), _t([1.0, 2.0, 4.0]))),
                                         rel=1e-6)
    value.backward()
    assert torch.isfinite(pred.grad).all()


def test_batched_gradients_finite_random():
    torch.manual_seed(0)
    pred = (torch.rand(2, 1, 8, 8) * 5 + 0.1).requires_grad_(True)
    target = torch.rand(2, 1, 8, 8) * 5 + 0.1
    target[0, 0, :2] = float("nan")
    target[1, 0, 3:5] = 0.0
    for name in DEPTH_LOSSES:
        pred.grad = None
        v = create_loss(name)(pred, target)
        v.backward()
        assert torch.isfinite(v) and torch.isfinite(pred.grad).all(), name


@pytest.mark.parametrize("fn", [l1_loss, berhu_loss, silog_loss, l2_loss, ssim_loss,
                                gradient_loss, das_composite_loss])
def test_shape_errors(fn):
    with pytest.raises(ValueError):
        fn(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 4, 5))
    with pytest.raises(ValueError):
        fn(torch.ones(1, 2, 4, 4), torch.ones(1, 2, 4, 4))  # not B x 1 x H x W
    with pytest.raises(ValueError):
        fn(torch.ones(4, 4), torch.ones(4, 4))
    with pytest.raises(ValueError):
        fn(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 4, 4), torch.ones(1, 1, 2, 2, dtype=torch.bool))


def test_create_loss():
    assert isinstance(create_loss("l1"), L1Loss)
    assert isinstance(create_loss("berhu", threshold=0.3), BerHuLoss)
    assert create_loss("berhu", threshold=0.3).threshold == 0.3
    assert isinstance(create_loss("silog"), SILogLoss)
    with pytest.raises(ValueError) as exc:
        create_loss("huber")
    msg = str(exc.value)
    assert "huber" in msg
    for name in ("berhu", "l1", "silog"):
        assert name in msg
    for name in ("l2", "ssim", "gradient", "das_composite", "bce", "stereo", "monodepth"):
        assert name in msg
    assert isinstance(create_loss("l2"), L2Loss)
    assert isinstance(create_loss("ssim", max_val=10.0), SSIMLoss)
    assert create_loss("ssim", max_val=10.0).max_val == 10.0
    assert isinstance(create_loss("gradient"), GradientLoss)
    das = create_loss("das_composite", w1=0.1, w3=2.0)
    assert isinstance(das, DasCompositeLoss) and (das.w1, das.w2, das.w3) == (0.1, 1.0, 2.0)
    assert isinstance(create_loss("bce"), BCELoss)
    assert isinstance(create_loss("stereo"), StereoLoss)
    assert isinstance(create_loss("monodepth"), StereoLoss)
    assert set(DEPTH_LOSSES) <= set(LOSSES)


# --------------------------------------------------------------------------- L2

def test_l2_hand_computed():
    # errors [1, 2] -> 1/2 * (1 + 4) / 2
    pred, target = _t([2.0, 4.0]), _t([1.0, 2.0])
    assert float(l2_loss(pred, target)) == pytest.approx(1.25, rel=1e-6)
    assert float(L2Loss()(pred, target)) == pytest.approx(1.25, rel=1e-6)


# --------------------------------------------------------------------------- gradient

def _grid(rows):
    return torch.tensor(rows, dtype=torch.float32).view(1, 1, len(rows), len(rows[0]))


def test_gradient_hand_computed():
    # ramp 1x1x2x3 against a constant target: e = pred - 1, ∂x e = 1 everywhere, ∂y e = 3
    ramp = _grid([[0, 1, 2], [3, 4, 5]])
    ones = torch.ones_like(ramp)
    assert float(gradient_loss(ramp, ones)) == pytest.approx(1.0 + 3.0)
    assert float(GradientLoss()(ramp, ones)) == pytest.approx(4.0)
    # a prediction off by a constant has the target's gradients: zero loss
    assert float(gradient_loss(ramp + 2.5, ramp + 1.0)) == pytest.approx(0.0, abs=1e-6)
    # uneven: e = [[-1, 0, 3], [2, 3, 4]]:
    # |∂x e| = [1, 3, 1, 1] -> 1.5; |∂y e| = [3, 3, 1] -> 7/3
    pred = _grid([[0, 1, 4], [3, 4, 5]])
    assert float(gradient_loss(pred, ones)) == pytest.approx(1.5 + 7 / 3, rel=1e-6)
    # masking pixel (0, 2) drops the pairs touching it: ∂x [1, 1, 1] -> 1; ∂y [3, 3] -> 3
    mask = torch.ones_like(pred, dtype=torch.bool)
    mask[0, 0, 0, 2] = False
    assert float(gradient_loss(pred, ones, mask)) == pytest.approx(4.0, rel=1e-6)
    # an invalid target there (NaN) does the same, with finite gradients
    tgt = ones.clone()
    tgt[0, 0, 0, 2] = float("nan")
    p = pred.clone().requires_grad_(True)
    v = gradient_loss(p, tgt)
    assert v.item() == pytest.approx(4.0, rel=1e-6)
    v.backward()
    assert torch.isfinite(p.grad).all() and p.grad[0, 0, 0, 2] == 0
    # a single row has no vertical pair: only the x term
    assert float(gradient_loss(_t([0.0, 1.0, 4.0]), _t([1.0, 1.0, 1.0]))) == pytest.approx(2.0)


# --------------------------------------------------------------------------- SSIM

C1, C2 = 0.01 ** 2, 0.03 ** 2


def _ssim_direct(x, y, max_val=1.0):
    """SSIM map from the formula: 3x3 Gaussian (σ = 1.5) window, reflect padding."""
    g = torch.exp(-torch.tensor([1.0, 0.0, 1.0]) / (2 * 1.5 ** 2))
    g = g / g.sum()
    k = (g[:, None] * g[None, :]).view(1, 1, 3, 3).repeat(x.shape[1], 1, 1, 1)

    def filt(z):
        return F.conv2d(F.pad(z, (1, 1, 1, 1), mode="reflect"), k, groups=x.shape[1])

    c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
    mx, my = filt(x), filt(y)
    vx, vy, cxy = filt(x * x) - mx ** 2, filt(y * y) - my ** 2, filt(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))


def test_ssim_identical_is_zero_and_constants_hand_computed():
    torch.manual_seed(0)
    x = torch.rand(1, 1, 5, 6) + 0.1
    assert float(ssim_loss(x, x.clone())) == pytest.approx(0.0, abs=1e-6)
    # constant images a, b: no variance, so SSIM = (2ab + C1) / (a² + b² + C1) everywhere
    a, b = 0.2, 0.6
    expected = (1 - (2 * a * b + C1) / (a * a + b * b + C1)) / 2
    # float64: float32 loses ~1e-4 relative in the variances E[x²] - μ² (next to C2 = 9e-4)
    pa = torch.full((1, 1, 4, 4), a, dtype=torch.float64)
    pb = torch.full((1, 1, 4, 4), b, dtype=torch.float64)
    assert float(ssim_loss(pa, pb)) == pytest.approx(expected, rel=1e-9)
    assert float(SSIMLoss()(pa, pb)) == pytest.approx(0.5 * (1 - 0.2401 / 0.4001), rel=1e-9)
    assert float(ssim_loss(pa.float(), pb.float())) == pytest.approx(expected, rel=1e-3)
    # max_val scales the constants: depth in metres with a 10 m range
    c1 = (0.01 * 10) ** 2
    expected10 = (1 - (2 * 2.0 * 6.0 + c1) / (4.0 + 36.0 + c1)) / 2
    assert float(ssim_loss(pa * 10, pb * 10, max_val=10.0)) == pytest.approx(expected10, rel=1e-9)


def test_ssim_matches_direct_formula():
    torch.manual_seed(1)
    x, y = torch.rand(2, 1, 6, 7) + 0.05, torch.rand(2, 1, 6, 7) + 0.05
    expected = ((1 - _ssim_direct(x, y)) / 2).clamp(0, 1).mean()
    assert float(ssim_loss(x, y)) == pytest.approx(float(expected), rel=1e-4)


def test_ssim_mask_and_invalid_targets():
    torch.manual_seed(2)
    pred = torch.rand(1, 1, 6, 6) + 0.1
    target = torch.rand(1, 1, 6, 6) + 0.1
    mask = torch.ones_like(pred, dtype=torch.bool)
    mask[..., 2:4, 1:3] = False
    # what the target holds at masked pixels does not matter (they are filled from pred)
    t1, t2 = target.clone(), target.clone()
    t1[~mask], t2[~mask] = 5.0, 0.01
    assert float(ssim_loss(pred, t1, mask)) == pytest.approx(float(ssim_loss(pred, t2, mask)),
                                                             rel=1e-6)
    # masked mean: equal to the mean of the map over the kept pixels
    filled = torch.where(mask, t1, pred)
    dmap = ((1 - _ssim_direct(pred, filled)) / 2).clamp(0, 1)
    assert float(ssim_loss(pred, t1, mask)) == pytest.approx(float(dmap[mask].mean()), rel=1e-4)
    # NaN holes behave like masked pixels and give finite gradients
    t3 = target.clone()
    t3[~mask] = float("nan")
    p = pred.clone().requires_grad_(True)
    v = ssim_loss(p, t3)
    assert v.item() == pytest.approx(float(ssim_loss(pred, t1, mask)), rel=1e-6)
    v.backward()
    assert torch.isfinite(p.grad).all()
    # nothing valid -> 0
    assert float(ssim_loss(pred, torch.full_like(pred, float("nan")))) == 0.0


def test_das_composite_is_weighted_sum():
    torch.manual_seed(3)
    pred, target = torch.rand(1, 1, 5, 5) + 0.1, torch.rand(1, 1, 5, 5) + 0.1
    l1, gr, ss = l1_loss(pred, target), gradient_loss(pred, target), ssim_loss(pred, target)
    assert float(das_composite_loss(pred, target)) == pytest.approx(float(l1 + gr + ss), rel=1e-6)
    got = DasCompositeLoss(w1=0.1, w2=2.0, w3=0.5)(pred, target)
    assert float(got) == pytest.approx(float(0.1 * l1 + 2.0 * gr + 0.5 * ss), rel=1e-6)
    mask = torch.rand(1, 1, 5, 5) > 0.3
    got = das_composite_loss(pred, target, mask)
    ref = (l1_loss(pred, target, mask) + gradient_loss(pred, target, mask)
           + ssim_loss(pred, target, mask))
    assert float(got) == pytest.approx(float(ref), rel=1e-6)


# --------------------------------------------------------------------------- BCE

def _bce_formula(p, t):
    return -sum(ti * math.log(pi) + (1 - ti) * math.log(1 - pi) for pi, ti in zip(p, t)) / len(p)


def test_bce_hand_computed_one_hot_and_ids():
    # 1 x 3 x 1 x 2: pixel 0 is class 2, pixel 1 class 0
    probs = torch.tensor([[0.2, 0.7], [0.1, 0.2], [0.6, 0.3]]).view(1, 3, 1, 2)
    onehot = torch.tensor([[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]]).view(1, 3, 1, 2)
    p = [0.2, 0.1, 0.6, 0.7, 0.2, 0.3]
    t = [0, 0, 1, 1, 0, 0]
    assert float(bce_loss(probs, onehot)) == pytest.approx(_bce_formula(p, t), rel=1e-6)
    ids = torch.tensor([[[2, 0]]])
    assert float(bce_loss(probs, ids)) == pytest.approx(_bce_formula(p, t), rel=1e-6)
    assert float(BCELoss()(probs, ids.to(torch.uint8))) == pytest.approx(_bce_formula(p, t),
                                                                          rel=1e-6)
    # mask (B x H x W) and out-of-range ids (255 = void) drop pixel 1
    only0 = _bce_formula(p[:3], t[:3])
    keep0 = torch.tensor([[[True, False]]])
    assert float(bce_loss(probs, onehot, keep0)) == pytest.approx(only0, rel=1e-6)
    assert float(bce_loss(probs, torch.tensor([[[2, 255]]]))) == pytest.approx(only0, rel=1e-6)
    assert float(bce_loss(probs, onehot, keep0[:, None])) == pytest.approx(only0, rel=1e-6)
    # gradients, saturated probabilities stay finite
    sat = torch.tensor([[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]]).view(1, 3, 1, 2).requires_grad_(True)
    v = bce_loss(sat, onehot)
    v.backward()
    assert v.item() == pytest.approx(0.0, abs=1e-6) and torch.isfinite(sat.grad).all()


def test_bce_errors():
    probs = torch.full((1, 3, 2, 2), 0.5)
    with pytest.raises(ValueError):
        bce_loss(probs, torch.zeros(1, 4, 2, 2))            # plane count differs
    with pytest.raises(ValueError):
        bce_loss(probs, torch.zeros(1, 2, 3, dtype=torch.long))  # id map of the wrong size
    with pytest.raises(ValueError):
        bce_loss(probs, torch.zeros(1, 2, 2, dtype=torch.long),
                 torch.ones(1, 3, 3, dtype=torch.bool))
    with pytest.raises(ValueError):
        bce_loss(probs * 3, torch.zeros(1, 3, 2, 2))        # not probabilities
    with pytest.raises(ValueError):
        bce_loss(torch.full((3, 2, 2), 0.5), torch.zeros(3, 2, 2))


# --------------------------------------------------------------------------- stereo

def _ramp(h=4, w=8):
    return torch.arange(w, dtype=torch.float32).view(1, 1, 1, w).expand(1, 1, h, w).clone()


def test_warp_by_disparity_shifts_ramp():
    img = _ramp()                          # img(x) = x
    d = torch.full((1, 1, 4, 8), 2 / 8)    # 2 pixels
    left = warp_by_disparity(img, d, "left")    # img(x - 2)
    torch.testing.assert_close(left[..., 2:], img[..., :-2], atol=1e-5, rtol=0)
    torch.testing.assert_close(left[..., :2], torch.zeros(1, 1, 4, 2), atol=1e-5, rtol=0)  # border
    right = warp_by_disparity(img, d, "right")  # img(x + 2)
    torch.testing.assert_close(right[..., :-2], img[..., 2:], atol=1e-5, rtol=0)
    torch.testing.assert_close(right[..., -2:], torch.full((1, 1, 4, 2), 7.0), atol=1e-5, rtol=0)
    # half a pixel: bilinear interpolation of the ramp; B x H x W disparity accepted
    half = warp_by_disparity(img, torch.full((1, 4, 8), 0.5 / 8), "left")
    torch.testing.assert_close(half[..., 1:], img[..., 1:] - 0.5, atol=1e-5, rtol=0)
    # zero disparity is the identity; gradients reach the disparity
    torch.testing.assert_close(warp_by_disparity(img, torch.zeros(1, 1, 4, 8)), img)
    dg = d.clone().requires_grad_(True)
    warp_by_disparity(img, dg, "left")[..., 3:].sum().backward()
    assert torch.isfinite(dg.grad).all() and dg.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        warp_by_disparity(img, d, "up")
    with pytest.raises(ValueError):
        warp_by_disparity(img, torch.zeros(1, 1, 4, 7))
    with pytest.raises(ValueError):
        warp_by_disparity(img[0], d)


def _stereo_pair(shift=2, h=6, w=12, seed=0):
    """Textured left image, constant over its first ``shift + 2`` columns, and the right image
    ``right(x) = left(min(x + shift, W - 1))``: each view is exactly the other one warped."""
    g = torch.Generator().manual_seed(seed)
    left = torch.rand(1, 3, h, w, generator=g) * 0.8 + 0.1
    left[..., : shift + 2] = left[..., shift + 2: shift + 3]
    idx = (torch.arange(w) + shift).clamp(max=w - 1)
    right = left[..., idx]
    return left, right


def test_appearance_zero_for_exact_shift():
    left, right = _stereo_pair()
    d = torch.full((1, 1, 6, 12), 2 / 12)
    assert float(appearance_matching_loss(left, warp_by_disparity(right, d, "left"))) == \
        pytest.approx(0.0, abs=1e-5)
    assert float(appearance_matching_loss(right, warp_by_disparity(left, d, "right"))) == \
        pytest.approx(0.0, abs=1e-5)
    # a wrong disparity is penalised; alpha = 0 leaves only the L1 term
    wrong = warp_by_disparity(right, torch.zeros_like(d), "left")
    assert float(appearance_matching_loss(left, wrong)) > 0.01
    assert float(appearance_matching_loss(left, wrong, alpha=0.0)) == \
        pytest.approx(float((left - wrong).abs().mean()), rel=1e-6)
    with pytest.raises(ValueError):
        appearance_matching_loss(left, right[..., :-1])


def test_smoothness_and_lr_consistency():
    torch.manual_seed(4)
    img = torch.rand(1, 3, 5, 7)
    const = torch.full((1, 1, 5, 7), 0.1)
    assert float(disparity_smoothness_loss(const, img)) == 0.0
    # hand-computed: disparity ramp along x on a flat image: |∂x d| = 0.01, weights exp(0) = 1
    ramp = 0.01 * _ramp(5, 7)
    flat = torch.full((1, 3, 5, 7), 0.5)
    assert float(disparity_smoothness_loss(ramp, flat)) == pytest.approx(0.01)
    # the same ramp across an image edge of height 1 in every channel: weight exp(-1)
    edges = (_ramp(5, 7) % 2).expand(1, 3, 5, 7)
    assert float(disparity_smoothness_loss(ramp, edges)) == pytest.approx(0.01 * math.exp(-1),
                                                                          rel=1e-5)
    assert float(lr_consistency_loss(const, const.clone())) == pytest.approx(0.0, abs=1e-7)
    # inconsistent constants: |0.1 - 0.2| in both views
    assert float(lr_consistency_loss(const, const * 2)) == pytest.approx(0.2, rel=1e-5)
    assert float(max_depth_heuristic_loss(torch.tensor([0.1, -0.3]))) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        disparity_smoothness_loss(const, img[..., :-1])
    with pytest.raises(ValueError):
        lr_consistency_loss(const, const[..., :-1])


def _pyramid(seed=0, b=1, h=16, w=32, requires_grad=True):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(b, 2, h >> s, w >> s, generator=g) * 0.1).requires_grad_(requires_grad)
            for s in range(4)]


def test_stereo_loss_finite_with_gradients_and_terms():
    g = torch.Generator().manual_seed(5)
    left, right = torch.rand(2, 3, 16, 32, generator=g), torch.rand(2, 3, 16, 32, generator=g)
    disps = _pyramid(b=2)
    total, terms = stereo_loss(disps, left, right)
    assert total.dim() == 0 and torch.isfinite(total)
    assert set(terms) == set(STEREO_TERMS) and all(isinstance(v, float) for v in terms.values())
    assert sum(terms.values()) == pytest.approx(total.item(), rel=1e-5)
    total.backward()
    for d in disps:
        assert torch.isfinite(d.grad).all() and d.grad.abs().sum() > 0
    # the module (also as the "monodepth" alias, and given the model's output dict)
    t2, terms2 = create_loss("monodepth")({"disparities": disps}, left, right)
    assert t2.item() == pytest.approx(total.item(), rel=1e-6) and terms2 == pytest.approx(terms)


def test_stereo_loss_zero_terms_for_exact_pair():
    left, right = _stereo_pair(shift=2, h=6, w=12)
    d = torch.full((1, 2, 6, 12), 2 / 12)
    total, terms = stereo_loss([d], left, right, alpha_mdh=0.0)
    assert terms["appearance"] == pytest.approx(0.0, abs=1e-5)
    assert terms["smoothness"] == 0.0 and terms["lr_consistency"] == pytest.approx(0.0, abs=1e-6)
    assert float(total) == pytest.approx(0.0, abs=1e-5)
    _, terms = stereo_loss([d], left, right)
    assert terms["max_depth"] == pytest.approx(0.01 * 2 / 12, rel=1e-5)


def test_stereo_loss_scale_weights():
    g = torch.Generator().manual_seed(6)
    left, right = torch.rand(1, 3, 16, 32, generator=g), torch.rand(1, 3, 16, 32, generator=g)
    disps = _pyramid(seed=7, requires_grad=False)
    per_scale = []
    for d in disps:
        size = d.shape[-2:]
        lf = left if size == left.shape[-2:] else F.interpolate(left, size=size, mode="area")
        rt = right if size == right.shape[-2:] else F.interpolate(right, size=size, mode="area")
        per_scale.append({k: float(v) for k, v in stereo_scale_terms(d, lf, rt).items()})
    # smoothness alone: sum_s 0.1 / 2^s * S_s
    only_smooth, _ = stereo_loss(disps, left, right, alpha_app=0.0, alpha_lr=0.0, alpha_mdh=0.0)
    manual = sum(0.1 / 2 ** s * t["smoothness"] for s, t in enumerate(per_scale))
    assert float(only_smooth) == pytest.approx(manual, rel=1e-5)
    # not a flat 0.1 per scale
    flat_weights = sum(0.1 * t["smoothness"] for t in per_scale)
    assert float(only_smooth) != pytest.approx(flat_weights, rel=1e-3)
    # the rest: alpha_app = alpha_lr = 1, alpha_mdh = 0.01 on every scale
    total, terms = stereo_loss(disps, left, right)
    rest = sum(t["appearance"] + t["lr_consistency"] + 0.01 * t["max_depth"] for t in per_scale)
    assert float(total) == pytest.approx(manual + rest, rel=1e-5)
    assert terms["appearance"] == pytest.approx(sum(t["appearance"] for t in per_scale), rel=1e-5)
    mdh = 0.01 * sum(t["max_depth"] for t in per_scale)
    assert terms["max_depth"] == pytest.approx(mdh, rel=1e-5)
    assert terms["smoothness"] == pytest.approx(manual, rel=1e-5)


def test_stereo_shape_errors():
    left = right = torch.rand(1, 3, 16, 32)
    disps = _pyramid(requires_grad=False)
    with pytest.raises(ValueError):
        stereo_loss([], left, right)
    with pytest.raises(ValueError):
        stereo_loss(disps, left, right[..., :-1])
    with pytest.raises(ValueError):
        stereo_loss([torch.zeros(1, 1, 16, 32)], left, right)   # one channel, not left/right
    with pytest.raises(ValueError):
        stereo_loss([torch.zeros(2, 2, 16, 32)], left, right)   # batch differs
    with pytest.raises(ValueError):
        stereo_loss([torch.zeros(2, 16, 32)], left, right)


def test_bce_from_logits_matches_probabilities_and_survives_saturation():
    """The logits form equals the probability form where both are exact, and stays finite and
    correct where a float16 sigmoid rounds to exactly 1 (logit 12, wrong class)."""
    from mono_depth_ros.training.losses import bce_loss
    torch.manual_seed(0)
    logits = torch.randn(2, 14, 4, 5) * 3
    ids = torch.randint(0, 14, (2, 4, 5))
    torch.testing.assert_close(bce_loss(logits, ids, logits=True), bce_loss(torch.sigmoid(logits), ids))
    sat = torch.full((1, 14, 1, 1), -20.0)
    sat[0, 1] = 12.0  # confident in class 1, truth is class 0
    truth = torch.zeros(1, 1, 1, dtype=torch.long)
    exact = (torch.nn.functional.softplus(torch.tensor(20.0)) + torch.nn.functional.softplus(torch.tensor(12.0))
             + 12 * torch.nn.functional.softplus(torch.tensor(-20.0))) / 14
    torch.testing.assert_close(bce_loss(sat, truth, logits=True), exact)
    assert torch.sigmoid(sat.half())[0, 1].item() == 1.0  # why the probability form is not used


def test_silog_per_image_ignores_a_scale_per_image():
    gt = torch.rand(2, 1, 4, 5) + 0.5
    pred = gt * torch.tensor([2.0, 0.5]).view(2, 1, 1, 1)
    assert float(silog_loss(pred, gt, variance_focus=1.0, per_image=True)) == pytest.approx(0.0, abs=1e-3)
    assert float(silog_loss(pred, gt, variance_focus=1.0)) > 0.5  # one scale for the whole batch
    # an image without valid pixels does not count
    gt2 = gt.clone()
    gt2[1] = float("nan")
    one = silog_loss(pred[:1] * 1.1 ** torch.arange(20.0).view(1, 1, 4, 5), gt[:1], per_image=True)
    both = silog_loss(torch.cat([pred[:1] * 1.1 ** torch.arange(20.0).view(1, 1, 4, 5), pred[1:]]), gt2,
                      per_image=True)
    assert float(both) == pytest.approx(float(one), rel=1e-5)


def test_weighted_sum_loss():
    from mono_depth_ros.training.losses import WeightedSumLoss, parse_loss_terms
    pred, gt = torch.rand(2, 1, 4, 5) + 0.5, torch.rand(2, 1, 4, 5) + 0.5
    loss = create_loss("silog_image+0.5*berhu")
    assert isinstance(loss, WeightedSumLoss) and loss.names == ["silog_image", "berhu"]
    expected = silog_loss(pred, gt, per_image=True) + 0.5 * berhu_loss(pred, gt)
    assert float(loss(pred, gt)) == pytest.approx(float(expected), rel=1e-6)
    assert parse_loss_terms("l1 + 2*silog") == [(1.0, "l1"), (2.0, "silog")]
    for bad in ("silog+bce", "x*l1", "silog+-1*l1"):
        with pytest.raises(ValueError):
            create_loss(bad)
