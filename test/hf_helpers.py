"""Tiny random Hugging Face depth checkpoints for offline tests (no hub access).

``make_tiny(name, folder)`` writes a ``save_pretrained`` folder (weights, config and the image
processor's ``preprocessor_config.json`` with the family's real processor settings, but a small
``size`` so the tests stay fast) for the registered Hugging Face model ``name``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

from mono_depth_ros.models.hf import HF_MODELS  # noqa: E402


def _dinov2(**kw):
    base = dict(hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32,
                patch_size=14, image_size=56, out_indices=[1, 2, 3, 4], reshape_hidden_states=False)
    return transformers.Dinov2Config(**{**base, **kw})


def _depth_anything(kind):
    cfg = transformers.DepthAnythingConfig(
        backbone_config=_dinov2(), reassemble_hidden_size=16, neck_hidden_sizes=[8, 8, 16, 16],
        fusion_hidden_size=8, head_hidden_size=8,
        depth_estimation_type="metric" if kind == "metric_depth" else "relative", max_depth=20)
    proc = transformers.DPTImageProcessor(size={"height": 70, "width": 70}, keep_aspect_ratio=True,
                                          ensure_multiple_of=14, resample=3,
                                          image_mean=[0.485, 0.456, 0.406],
                                          image_std=[0.229, 0.224, 0.225])
    return transformers.DepthAnythingForDepthEstimation(cfg), proc


def _dpt(kind):
    cfg = transformers.DPTConfig(hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                                 intermediate_size=32, image_size=64, patch_size=16,
                                 backbone_out_indices=[0, 1, 2, 3], neck_hidden_sizes=[8, 8, 16, 16],
                                 fusion_hidden_size=8)
    proc = transformers.DPTImageProcessor(size={"height": 64, "width": 64}, keep_aspect_ratio=False,
                                          resample=3, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    return transformers.DPTForDepthEstimation(cfg), proc


def _glpn(kind):
    cfg = transformers.GLPNConfig(num_encoder_blocks=4, depths=[1, 1, 1, 1], sr_ratios=[8, 4, 2, 1],
                                  hidden_sizes=[8, 16, 16, 16], num_attention_heads=[1, 1, 1, 1],
                                  decoder_hidden_size=8, max_depth=10)
    return transformers.GLPNForDepthEstimation(cfg), transformers.GLPNImageProcessor(size_divisor=32)


def _zoedepth(kind):
    beit = transformers.BeitConfig(hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                                   intermediate_size=32, image_size=64, patch_size=16,
                                   out_indices=[1, 2, 3, 4], reshape_hidden_states=False,
                                   use_relative_position_bias=True)
    cfg = transformers.ZoeDepthConfig(
        backbone_config=beit, neck_hidden_sizes=[8, 8, 16, 16], fusion_hidden_size=8,
        bottleneck_features=8, num_relative_features=8, bin_embedding_dim=8,
        num_attractors=[4, 2, 2, 1], num_patch_transformer_layers=4,
        patch_transformer_hidden_size=128, patch_transformer_intermediate_size=16,
        patch_transformer_num_attention_heads=2,
        bin_configurations=[{"n_bins": 8, "min_depth": 1e-3, "max_depth": 10.0, "name": "nyu"},
                            {"n_bins": 8, "min_depth": 1e-3, "max_depth": 80.0, "name": "kitti"}])
    proc = transformers.ZoeDepthImageProcessor(size={"height": 64, "width": 96},
                                               keep_aspect_ratio=True, ensure_multiple_of=32,
                                               image_mean=[0.5] * 3, image_std=[0.5] * 3)
    return transformers.ZoeDepthForDepthEstimation(cfg), proc


def _depth_pro(kind):
    enc = dict(model_type="dinov2", hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=32, patch_size=7, image_size=28)
    cfg = transformers.DepthProConfig(
        patch_size=28, fusion_hidden_size=8, intermediate_hook_ids=[1, 0],
        intermediate_feature_dims=[8, 8], scaled_images_ratios=[0.5, 1],
        scaled_images_overlap_ratios=[0.0, 0.25], scaled_images_feature_dims=[8, 8],
        use_fov_model=True, num_fov_head_layers=1, image_model_config=dict(enc),
        patch_model_config=dict(enc), fov_model_config=dict(enc))
    proc = transformers.DepthProImageProcessor(size={"height": 56, "width": 56})
    return transformers.DepthProForDepthEstimation(cfg), proc


BUILDERS = {"depth_anything": _depth_anything, "dpt": _dpt, "glpn": _glpn, "zoedepth": _zoedepth,
            "depth_pro": _depth_pro}


def make_tiny(name: str, folder: Path, seed: int = 0, processor: bool = True) -> Path:
    """Write a tiny random checkpoint for registered HF model ``name`` into ``folder``."""
    _, family, kind, *_ = HF_MODELS[name]
    torch.manual_seed(seed)
    model, proc = BUILDERS[family](kind)
    model.save_pretrained(folder)
    if processor:
        proc.save_pretrained(folder)
    return Path(folder)
