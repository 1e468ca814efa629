"""The shipped SSegDep-Net pair (models/unet_seg_synth.pt + models/cnn3d_up_synth.pt), trained by
``mono-depth-ros ablation`` on generated streets, loads by default and works on a held-out
street frame (a seed the training set did not use)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("pybullet")

from mono_depth_ros.core.metrics import ConfusionMatrix, compute_depth_metrics  # noqa: E402
from mono_depth_ros.models.valdez import SYNTHIA_CLASSES  # noqa: E402
from mono_depth_ros.inference.estimator import DepthEstimator, default_component_checkpoints  # noqa: E402
from synth_helpers import render_frame  # noqa: E402


@pytest.fixture(scope="module")
def frame():
    return render_frame(seed=7, index=40)  # training used seed 1, the reported test set seed 2


@pytest.fixture(scope="module")
def estimator():
    torch.set_num_threads(2)
    return DepthEstimator("ssegdep_net", device="cpu")


def test_shipped_pair_is_the_default(estimator):
    parts = default_component_checkpoints("ssegdep_net")
    assert parts["seg_checkpoint"].endswith("unet_seg_synth.pt")
    assert parts["depth_checkpoint"].endswith("cnn3d_up_synth.pt")
    assert not estimator.warnings  # no "weights not meaningful" warning
    assert "unet_seg_synth.pt" in estimator.checkpoint and "cnn3d_up_synth.pt" in estimator.checkpoint
    assert estimator.net.seg.model_kwargs == {"base_channels": 32}
    assert estimator.spec.train_focal == pytest.approx(0.683, abs=0.01)


def test_shipped_pair_segments_and_ranges_a_held_out_street(estimator, frame):
    pred = estimator.predict(frame["rgb"], frame["K"])
    assert pred.labels.shape == frame["labels"].shape and pred.depth.shape == frame["depth"].shape
    cm = ConfusionMatrix(len(SYNTHIA_CLASSES))
    cm.update(pred.labels, frame["labels"])
    iou = dict(zip(SYNTHIA_CLASSES, cm.iou()))
    # the large classes the obstacle cloud relies on (test set: 0.99 / 0.99 / 0.92 / 0.95)
    for cls in ("Sky", "Road", "Sidewalk", "Building"):
        assert iou[cls] > 0.8, iou
    gt = np.where(frame["labels"] == SYNTHIA_CLASSES.index("Sky"), np.nan, frame["depth"])
    m = compute_depth_metrics(pred.depth, gt, 0.5, 80.0)
    assert m["abs_rel"] < 0.5 and m["delta3"] > 0.85, m  # test set: AbsRel 0.24, σ3 0.97
