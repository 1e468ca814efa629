"""Model zoo contract tests (CPU only, small inputs, no downloads)."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mono_depth_ros.models import (UnknownModelError, create_model, get_spec, list_models,
                                   save_checkpoint)
from mono_depth_ros.models.registry import loads_checkpoint
from mono_depth_ros.models.encoders import PretrainedWeightsUnavailable, create_classifier
from net_helpers import register_const_model

#: Small widths so the whole zoo runs in seconds; models not listed use their defaults.
SMALL_KWARGS = {
    "unet_seg": dict(base_channels=8),
    "scrx_rgb": dict(base_channels=8),
    "scrx_ohes": dict(base_channels=8),
    "cnn3d_s": dict(base_channels=4),
    "cnn3d_s_relu": dict(base_channels=4),
    "cnn3d_up": dict(base_channels=4),
    "cnn3d_up_do": dict(base_channels=4),
    "ssegdep_net": dict(seg_base_channels=8, depth_base_channels=4),
    "siamese_convlstm": dict(base_channels=4),
    "de_noskip": dict(decoder_width=64),
    "resnet_unet": dict(decoder_width=64),
    "densenet_unet": dict(decoder_width=64),
    "irv2_encdec": dict(decoder_width=64),
}
#: Test input (H, W) per model; irv2's unpadded convolutions need sides >= 75.
INPUT_SIZE = {"irv2_encdec": (96, 128)}
DEFAULT_SIZE = (64, 96)
#: The package's own networks (Hugging Face and ONNX models need external weights: they are
#: tested on tiny checkpoints in test_hf_models.py and test_onnx.py).
OWN_MODELS = [n for n in list_models() if not loads_checkpoint(n)]


def _small(name, **extra):
    torch.manual_seed(0)
    return create_model(name, **{**SMALL_KWARGS.get(name, {}), **extra})


def _input(name, batch=2, size=None):
    spec = get_spec(name)
    h, w = size or INPUT_SIZE.get(name, DEFAULT_SIZE)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(batch, 3, h, w, generator=gen)
    if spec.needs_semantic_input:
        labels = torch.randint(0, 14, (batch, h, w), generator=gen)
        ohes = F.one_hot(labels, 14).permute(0, 3, 1, 2).float()
        return torch.cat([x, ohes], dim=1)
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    return (x - mean) / std


@pytest.mark.parametrize("name", OWN_MODELS)
def test_forward_contract(name):
    spec = get_spec(name)
    model = _small(name)
    x = _input(name)
    b, _, h, w = x.shape
    with torch.no_grad():
        out = model(x)
    if isinstance(out, dict):
        assert spec.returns_segmentation or "depth" in out
        if "segmentation" in out:
            seg = out["segmentation"]
            assert seg.shape == (b, spec.num_classes, h, w)
            assert seg.dtype == torch.float32 and torch.isfinite(seg).all()
            assert seg.min() >= 0 and seg.max() <= 1
        if spec.extras.get("segmentation_only"):
            assert set(out) <= {"segmentation", "segmentation_logits"}
            if "segmentation_logits" in out:  # the loss's input: the sigmoid's argument
                torch.testing.assert_close(torch.sigmoid(out["segmentation_logits"].float()), seg)
            return
        depth = out["depth"]
    else:
        assert not spec.extras.get("segmentation_only")
        depth = out
    assert depth.shape == (b, 1, h, w)
    assert depth.dtype == torch.float32
    assert torch.isfinite(depth).all()
    assert depth.min() >= 0  # every output kind here is non-negative
    act = spec.extras.get("output_activation")
    if spec.output_kind == "normalized_depth" and act == "sigmoid":
        assert depth.max() <= 1
    if spec.output_kind == "disparity":
        assert depth.max() <= spec.extras.get("output_max", 1.0)


@pytest.mark.parametrize("name", OWN_MODELS)
def test_spec_is_complete(name):
    spec = get_spec(name)
    assert spec.citation and spec.description
    h, w = spec.input_size
    assert h % 32 == 0 and w % 32 == 0
    if spec.needs_semantic_input:
        assert spec.num_classes == 14


def test_unet_seg_outputs_14_synthia_planes():
    from mono_depth_ros.models import valdez

    assert valdez.SYNTHIA_CLASSES == (
        "Miscellaneous", "Sky", "Building", "Road", "Sidewalk", "Fence", "Vegetation", "Pole",
        "Vehicle", "Sign", "Pedestrian", "Cyclist", "Lanemark", "Traffic light")
    assert len(valdez.SYNTHIA_PALETTE) == 14
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in valdez.SYNTHIA_PALETTE)
    assert len(set(valdez.SYNTHIA_PALETTE)) == 14
    spec = get_spec("unet_seg")
    assert spec.input_size == (192, 320)
    assert spec.returns_segmentation and spec.num_classes == 14
    assert spec.extras["segmentation_only"] and spec.recommended_loss == "bce"
    model = _small("unet_seg")
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 96))
    assert out["segmentation"].shape == (1, 14, 64, 96)
    assert isinstance(model.head, torch.nn.Conv2d) and model.head.out_channels == 14
    # The paper's width (64) by default: the original U-Net's ~31 M parameters.
    default = create_model("unet_seg")
    assert default.down[0][0].out_channels == 64 and default.down[4][0].out_channels == 1024


def test_build_ohes_volume():
    from mono_depth_ros.models.valdez import build_ohes_volume

    rgb = torch.rand(2, 3, 32, 64)
    ohes = torch.rand(2, 14, 32, 64)
    vol = build_ohes_volume(rgb, ohes)
    assert vol.shape == (2, 1, 17, 32, 64)
    assert torch.equal(vol[:, 0, :3], rgb) and torch.equal(vol[:, 0, 3:], ohes)
    with pytest.raises(ValueError):
        build_ohes_volume(rgb, ohes[:, :13])
    with pytest.raises(ValueError):
        build_ohes_volume(rgb, ohes[..., :32])


@pytest.mark.parametrize("name", ["cnn3d_s", "cnn3d_s_relu", "cnn3d_up", "cnn3d_up_do"])
def test_3d_nets_take_17_plane_volume(name):
    assert get_spec(name).needs_semantic_input
    model = _small(name)
    seen = []
    first, last = model.convs[0], model.convs[-1]
    first.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape)))
    last.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    with torch.no_grad():
        model(_input(name, batch=1, size=(32, 64)))
    assert seen[0][:3] == (1, 1, 17)           # B x 1 x 17 x H x W into the first Conv3d
    # Unpadded plane axis: seven layers leave 3 planes (then a 3-deep max-pool), eight leave 1.
    assert seen[1][2] == (3 if name.startswith("cnn3d_s") else 1)
    assert len(model.convs) == (7 if name.startswith("cnn3d_s") else 8)
    with pytest.raises(ValueError, match="17"):
        model(torch.rand(1, 3, 32, 64))


def test_valdez_nets_train():
    # Gradients reach the first layer (no dead ReLU output at initialisation).
    for name in ("scrx_ohes", "cnn3d_s_relu", "cnn3d_up_do", "ssegdep_net"):
        model = _small(name).train()
        out = model(_input(name, batch=2, size=(32, 32)))
        depth = out["depth"] if isinstance(out, dict) else out
        depth.mean().backward()
        first = next(p for p in model.parameters() if p.dim() > 1)
        assert first.grad is not None and first.grad.abs().sum() > 0, name


def test_ssegdep_net_returns_depth_and_segmentation(tmp_path):
    spec = get_spec("ssegdep_net")
    assert spec.returns_segmentation and spec.num_classes == 14
    assert not spec.needs_semantic_input
    seg = _small("unet_seg")
    depth = _small("cnn3d_up")
    seg_ckpt = save_checkpoint(seg, tmp_path / "seg.pt")
    depth_ckpt = save_checkpoint(depth, tmp_path / "depth.pt")
    model = create_model("ssegdep_net", seg_checkpoint=str(seg_ckpt),
                         depth_checkpoint=str(depth_ckpt))
    x = torch.rand(1, 3, 32, 64)
    with torch.no_grad():
        out = model(x)
        s = seg(x)["segmentation"]
        d = depth(torch.cat([x, s], dim=1))
    assert set(out) == {"depth", "segmentation"}
    assert out["segmentation"].shape == (1, 14, 32, 64)
    assert out["depth"].shape == (1, 1, 32, 64)
    # One forward = unet_seg, then cnn3d_up on RGB + predicted OHES, with the loaded weights.
    assert torch.allclose(out["segmentation"], s)
    assert torch.allclose(out["depth"], d, atol=1e-6)
    # The hybrid itself round-trips through a checkpoint.
    path = save_checkpoint(model, tmp_path / "hybrid.pt")
    again = create_model("ssegdep_net", checkpoint=path)
    with torch.no_grad():
        assert torch.allclose(again(x)["depth"], out["depth"], atol=1e-6)
    with pytest.raises(ValueError):
        create_model("ssegdep_net", seg_checkpoint=str(depth_ckpt))


def test_siamese_convlstm_scales_and_refinement():
    spec = get_spec("siamese_convlstm")
    assert spec.output_kind == "disparity" and spec.stereo_baseline == 0.54
    assert spec.input_size == (256, 512)
    model = _small("siamese_convlstm")
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        out = model(x)
    disps = out["disparities"]
    assert len(disps) == 4
    for s, d in enumerate(disps):
        assert d.shape == (2, 2, 64 // 2 ** s, 96 // 2 ** s)
        assert d.min() >= 0 and d.max() <= 0.3
    # The siamese branch on flip(x) is the same network: flipping the input swaps the branches.
    with torch.no_grad():
        out_f = model(x.flip(-1))
    assert torch.allclose(out_f["disparities"][0], out["disparities_flipped"][0], atol=1e-6)
    # Refinement starts as monodepth's post-processing (own re-derivation of that formula).
    l_disp = out["disparities"][0][:, :1]
    r_disp = out["disparities_flipped"][0][:, :1].flip(-1)
    xs = torch.linspace(0, 1, 96)
    l_mask = 1.0 - torch.clamp(20 * (xs - 0.05), 0, 1)
    r_mask = l_mask.flip(0)
    expected = r_mask * l_disp + l_mask * r_disp + (1 - l_mask - r_mask) * 0.5 * (l_disp + r_disp)
    assert torch.allclose(out["depth"], expected, atol=2e-3)
    assert model.refine.weight.requires_grad


def test_siamese_convlstm_stateful():
    model = _small("siamese_convlstm")
    fresh = copy.deepcopy(model)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref = fresh(x)["depth"]
        assert torch.equal(model(x)["depth"], ref)        # stateless by default
        assert torch.equal(model(x)["depth"], ref)
        model.stateful = True
        first = model(x)["depth"]
        second = model(x)["depth"]
        assert torch.allclose(first, ref)                 # starts from zero state
        assert not torch.allclose(second, ref)            # carries the previous frame's state
        model.reset_state()
        assert torch.allclose(model(x)["depth"], ref)


def test_irv2_encdec_half_resolution_and_odd_skips():
    spec = get_spec("irv2_encdec")
    assert spec.input_size == (480, 640) and spec.recommended_loss == "das_composite"
    assert spec.output_kind == "normalized_depth" and spec.depth_range == (0.0, 10.0)
    model = _small("irv2_encdec", ir_b_blocks=2, ir_c_blocks=1)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        half = model.forward_half(x)
        full = model(x)
    assert half.shape == (1, 1, 48, 64) and full.shape == (1, 1, 96, 128)
    assert half.min() >= 0 and half.max() <= 1
    with pytest.raises(ValueError):
        model(torch.randn(1, 3, 64, 64))


def test_calderoni_structures():
    for name in ("de_noskip", "resnete_v1", "resnete_v2", "resnete_v3", "resnet_unet",
                 "densenet_unet"):
        spec = get_spec(name)
        assert spec.output_kind == "metric_depth" and spec.input_size == (128, 128)
        assert spec.depth_range == (0.1, 10.0)
    assert _small("de_noskip").encoder.reductions[-1] == 16     # ResNet50 without layer4
    v1, v3 = create_model("resnete_v1"), create_model("resnete_v3")
    assert len(v1.blocks) == 5 and len(v1.residual) == 3
    assert v3.blocks[0].conv is None and len(v3.head) == 5      # deconv+ReLU; three final convs


def test_unknown_model_lists_valid_names():
    with pytest.raises(UnknownModelError) as err:
        create_model("no_such_net")
    msg = str(err.value)
    for name in ("unet_seg", "siamese_convlstm", "irv2_encdec", "resnete_v2"):
        assert name in msg


@pytest.mark.parametrize("name", ["resnet_unet", "densenet_unet", "irv2_encdec", "unet_seg",
                                  "siamese_convlstm", "ssegdep_net"])
def test_pretrained_without_local_weights_raises(name):
    with pytest.raises(PretrainedWeightsUnavailable):
        create_model(name, pretrained=True)


def test_efficientnet_lite0_wheel_weights_classify_cat():
    skimage_data = pytest.importorskip("skimage.data")
    model = create_classifier("efficientnet_lite0", pretrained=True).eval()
    img = torch.from_numpy(np.ascontiguousarray(skimage_data.chelsea())).permute(2, 0, 1)
    img = img.float().unsqueeze(0) / 255.0
    img = F.interpolate(img, size=(224, 224), mode="bilinear", align_corners=False,
                        antialias=True)
    with torch.no_grad():
        cls = int(model((img - 0.5) / 0.5).argmax(1))
    assert 281 <= cls <= 285  # ImageNet domestic cats


@pytest.mark.parametrize("kind,raw,expected", [
    ("metric_depth", 4.0, 4.0 * 1.5),
    ("normalized_depth", 0.25, (0.5 + 0.25 * 7.5) * 1.5),
    ("inverse_depth", 0.5, 2.0 * 1.5),
    ("disparity", 0.05, 1.5 * 0.5 * 0.54 / 0.05),  # camera-aware: one factor, from fx / W
    ("canonical_inverse_depth", 0.25, 0.75 / 0.25),  # Depth Pro: (fx / W) / output, camera-aware
])
def test_every_output_kind_through_predict(monkeypatch, kind, raw, expected):
    """DepthEstimator.predict converts each output kind to metres with the focal handled once,
    for a camera whose fx / W is 1.5x the training camera's, and masks the model's range."""
    from mono_depth_ros.inference.estimator import DepthEstimator
    from mono_depth_ros.models.spec import ModelSpec
    spec = ModelSpec(name=f"t_{kind}", input_size=(32, 32), output_kind=kind, citation="test",
                     description="test", depth_range=(0.5, 8.0), train_focal=0.5,
                     rescale_by_focal=True,
                     stereo_baseline=0.54 if kind == "disparity" else None)
    register_const_model(monkeypatch, spec, raw)
    W, H = 64, 48
    K = np.array([[0.75 * W, 0, W / 2], [0, 0.75 * W, H / 2], [0, 0, 1]])
    rgb = np.zeros((H, W, 3), np.uint8)
    pred = DepthEstimator(spec.name, device="cpu").predict(rgb, K)
    np.testing.assert_allclose(pred.unmasked, expected, rtol=1e-5)
    in_range = 0.5 <= expected <= 8.0
    assert np.isfinite(pred.depth).all() == in_range and np.isnan(pred.depth).all() != in_range
    narrow = DepthEstimator(spec.name, device="cpu", max_depth=expected * 0.9).predict(rgb, K)
    assert np.isnan(narrow.depth).all()  # outside the range: NaN for the node, kept in unmasked
    np.testing.assert_allclose(narrow.unmasked, expected, rtol=1e-5)
