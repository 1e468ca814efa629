"""Depth losses against hand-computed values; masks, invalid targets, gradients, errors."""

import math

import pytest
import torch

from mono_depth_ros.losses import (LOSSES, BerHuLoss, L1Loss, SILogLoss, berhu_loss,
                                   create_loss, l1_loss, silog_loss)


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


@pytest.mark.parametrize("name", ["l1", "berhu", "silog"])
def test_mask_excludes_pixels(name):
    loss = create_loss(name)
    pred = _t([1.1, 3.0, 100.0, 0.01])
    target = _t([1.0, 2.0, 1.0, 5.0])
    mask = torch.tensor([True, True, False, False]).view(1, 1, 1, -1)
    ref = loss(_t([1.1, 3.0]), _t([1.0, 2.0]))
    assert float(loss(pred, target, mask)) == pytest.approx(float(ref), rel=1e-6)
    # integer / float masks are accepted too
    assert float(loss(pred, target, mask.float())) == pytest.approx(float(ref), rel=1e-6)


@pytest.mark.parametrize("name", ["l1", "berhu", "silog"])
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


@pytest.mark.parametrize("name", ["l1", "berhu", "silog"])
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
    for name in LOSSES:
        pred.grad = None
        v = create_loss(name)(pred, target)
        v.backward()
        assert torch.isfinite(v) and torch.isfinite(pred.grad).all(), name


@pytest.mark.parametrize("fn", [l1_loss, berhu_loss, silog_loss])
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
