"""Training beyond the default model: DDP under torchrun (one CPU process, gloo), and the
objectives chosen from each model's spec (segmentation, semantic input, normalised depth)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from mono_depth_ros.models import create_model
from mono_depth_ros.training.trainer import OBJECTIVES, Pack, objective_for, model_input


def test_torchrun_one_process_gloo(tmp_path, data_dir):
    scenes = data_dir / "7scenes-redkitchen"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": str(29500 + os.getpid() % 1000)}
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=1",
         f"--master_port={env['MASTER_PORT']}", "-m", "mono_depth_ros.tools.cli", "train",
         "--model", "fastdepth", "--encoder", "mobilenetv2", "--no-pretrained",
         "--data", f"{scenes}@0:4", "--val", f"{scenes}@800:802", "--out", str(tmp_path / "run"),
         "--epochs", "1", "--batch-size", "2", "--max-steps", "2", "--device", "cpu"],
        capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "world size 1" in res.stdout
    ckpt = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert ckpt["world_size"] == 1 and ckpt["model"] == "fastdepth"
    # DDP wraps the model, but the checkpoint holds the plain module's weights
    create_model("fastdepth", checkpoint=tmp_path / "run" / "best.pt")


def test_objective_is_chosen_from_the_spec():
    assert objective_for(create_model("unet_seg", base_channels=4).spec) == "segmentation"
    assert objective_for(create_model("siamese_convlstm", base_channels=4).spec) == "stereo"
    assert objective_for(create_model("fastdepth").spec) == "depth"
    assert objective_for(create_model("cnn3d_up").spec) == "depth"


class _FakePack(Pack):
    """A pack built in memory: 2 frames of 64x64 with depth and labels."""

    def __init__(self):  # noqa: D107 - bypasses dataset loading
        rng = np.random.default_rng(0)
        self.rgb = rng.integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)
        self.depth = rng.uniform(5, 50, (2, 64, 64)).astype(np.float16)
        self.labels = rng.integers(0, 14, (2, 64, 64)).astype(np.uint8)
        self.rgb_right = None
        self.fx_norm, self.baseline = 1.0, None
        self.fxn = np.ones(2)


@pytest.mark.parametrize("name, kwargs", [("unet_seg", {"base_channels": 4}),
                                          ("cnn3d_up", {}), ("scrx_ohes", {})])
def test_objective_backpropagates(name, kwargs):
    model = create_model(name, **kwargs).train()
    kind = objective_for(model.spec)
    objective, default_loss = OBJECTIVES[kind]
    from mono_depth_ros.training.losses import create_loss
    loss_fn = create_loss(default_loss or model.spec.recommended_loss)
    batch = _FakePack().batch(np.arange(2), np.random.default_rng(0), True)
    if model.spec.needs_semantic_input:
        assert model_input(model.spec, batch, "cpu").shape[1] == 17  # RGB + 14 OHES planes
    loss = objective(model, model.spec, batch, "cpu", loss_fn)
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_self_supervised_stereo_step_on_real_kitti_pair(tmp_path, data_dir):
    """siamese_convlstm trains from the real KITTI stereo pair (no depth labels used)."""
    from mono_depth_ros.training.trainer import TrainConfig, train
    kitti = data_dir / "kitti-raw-frame"
    cfg = TrainConfig(model="siamese_convlstm", train=str(kitti), val=str(kitti),
                      out=str(tmp_path / "run"), model_kwargs={"base_channels": 4},
                      pretrained=False, epochs=1, batch_size=1, max_steps=1, device="cpu")
    best = train(cfg, progress=False)
    ckpt = torch.load(best, weights_only=True)
    assert ckpt["model"] == "siamese_convlstm"
    # the baseline learnt from the calibration replaces the spec's nominal one
    assert abs(ckpt["spec"]["stereo_baseline"] - 0.5327) < 1e-3
    # scored as depth against the annotation, through the disparity -> depth conversion: the
    # stored number is what validating the saved model gives again
    from mono_depth_ros.training.trainer import load_pack, validate
    model = create_model("siamese_convlstm", checkpoint=best)
    again = validate(model, load_pack(str(kitti), model.spec.input_size, stereo=True),
                     torch.device("cpu"))
    assert ckpt["metrics"]["abs_rel"] > 0
    assert again["abs_rel"] == pytest.approx(ckpt["metrics"]["abs_rel"], rel=1e-4)


def test_rotation_augmentation_keeps_geometry():
    """A roll about the principal point keeps the centre pixel and invalidates the corners."""
    pack = _FakePack()
    pack.K = np.array([[50.0, 0, 31.5], [0, 50.0, 31.5], [0, 0, 1]])
    pack.depth[:] = 7.0
    batch = pack.batch(np.arange(2), np.random.default_rng(3), True, rotate_deg=5.0)
    d = batch["depth"].numpy()[:, 0]
    assert np.allclose(d[:, 31:33, 31:33], 7.0)
    assert np.isnan(d[:, 0, 0]).any() or np.isnan(d[:, -1, -1]).any()
    assert (batch["labels"].numpy()[np.isnan(d)] == 255).all()


def test_resume_continues_from_last_checkpoint(tmp_path, data_dir):
    from mono_depth_ros.training.trainer import TrainConfig, train
    scenes = data_dir / "7scenes-redkitchen"
    cfg = TrainConfig(model="fastdepth", model_kwargs={"encoder": "mobilenetv2"}, pretrained=False,
                      train=f"{scenes}@0:4", val=f"{scenes}@800:802", out=str(tmp_path / "run"),
                      epochs=2, batch_size=2, device="cpu", num_threads=2)
    import dataclasses
    train(dataclasses.replace(cfg, epochs=1), progress=False)
    first = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert first["epoch"] == 0 and len(first["history"]) == 1
    train(cfg, resume=str(tmp_path / "run" / "last.pt"), progress=False)
    second = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert second["epoch"] == 1 and [h["epoch"] for h in second["history"]] == [1, 2]
    assert second["step"] == first["step"] + 2


def test_training_pack_round_trip(tmp_path, data_dir):
    """`pack` writes the generic folder layout at the training size; depth within 0.5 mm."""
    import cv2

    from mono_depth_ros.data import SevenScenes, open_dataset
    from mono_depth_ros.data.pack import write_pack
    src = SevenScenes(data_dir / "7scenes-redkitchen", slice(0, 3))
    info = write_pack(src, tmp_path / "pack", (96, 128))
    assert info["frames"] == 3 and info["bytes"] < 3 * 60_000
    pack = open_dataset(tmp_path / "pack")
    assert len(pack) == 3 and pack[0].rgb.shape == (96, 128, 3)
    # K scaled with pixel centres kept: fx 585 * 0.2 = 117, cx (320 + .5) * .2 - .5 = 63.6
    np.testing.assert_allclose(pack[0].K[[0, 0, 1, 1], [0, 2, 1, 2]], [117.0, 63.6, 117.0, 47.6])
    want = cv2.resize(src[0].depth, (128, 96), interpolation=cv2.INTER_NEAREST)
    got = pack[0].depth
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.nanmax(np.abs(got - want)) <= 0.0005 + 1e-6


def test_pack_marks_depth_beyond_the_format_invalid(tmp_path):
    """80 m (a KITTI far point) does not fit uint16 millimetres: stored invalid, not 65.535 m."""
    from types import SimpleNamespace

    from mono_depth_ros.data import open_dataset
    from mono_depth_ros.data.pack import write_pack
    depth = np.full((8, 8), 5.0, np.float32)
    depth[0, :4] = 80.0
    depth[1, 0] = np.nan
    s = SimpleNamespace(rgb=np.zeros((8, 8, 3), np.uint8), depth=depth, name="f0",
                        K=np.array([[8.0, 0, 3.5], [0, 8.0, 3.5], [0, 0, 1]]))
    write_pack([s], tmp_path / "p", (8, 8))
    got = open_dataset(tmp_path / "p")[0].depth
    assert np.isnan(got[0, :4]).all() and np.isnan(got[1, 0])
    np.testing.assert_allclose(got[2:], 5.0)
