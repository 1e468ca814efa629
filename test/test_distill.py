"""Distillation in ``mono-depth-ros train``: colour-only image folders, the teacher's target, the
teacher's canonical camera (plain pytest, tiny networks)."""

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from mono_depth_ros.data import open_dataset
from mono_depth_ros.data.datasets import DatasetError
from mono_depth_ros.data.generic import ImageFolder
from mono_depth_ros.models import create_model, save_checkpoint
from mono_depth_ros.training.losses import create_loss
from mono_depth_ros.training.trainer import (Pack, TrainConfig, depth_objective, teacher_depth,
                                             train)

SMALL = dict(encoder_widths=(8, 16, 24, 24, 32, 40, 48, 48, 48, 48, 48, 48, 64, 72),
             decoder_widths=(40, 40, 24, 16, 8))


def _folder(root, n=4, per_image=True):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = ["# name fx fy cx cy"]
    for i in range(n):
        cv2.imwrite(str(root / f"img_{i}.png"), rng.integers(0, 255, (48, 64, 3), np.uint8))
        lines.append(f"img_{i}.png {50 + i} {50 + i} 32 24")
    (root / "intrinsics.txt").write_text("\n".join(lines) if per_image else "50 50 32 24")
    return root


def test_image_folder_reads_per_image_and_common_intrinsics(tmp_path):
    ds = open_dataset(_folder(tmp_path / "a"))
    assert isinstance(ds, ImageFolder) and len(ds) == 4
    s = ds[2]
    assert s.depth is None and s.rgb.shape == (48, 64, 3) and s.K[0, 0] == 52
    assert open_dataset(_folder(tmp_path / "b", per_image=False))[3].K[0, 0] == 50
    bad = _folder(tmp_path / "c")
    (bad / "intrinsics.txt").write_text("img_0.png 50 50 32 24\n")
    with pytest.raises(DatasetError, match="no intrinsics for img_1.png"):
        ImageFolder(bad)


def test_colour_only_sets_need_a_teacher(tmp_path):
    folder = _folder(tmp_path / "f")
    with pytest.raises(ValueError, match="need a teacher"):
        Pack(str(folder), (32, 32))
    pack = Pack(str(folder), (32, 32), unlabelled=True)
    assert pack.depth.shape == (4, 32, 32) and np.isnan(pack.depth.astype(np.float32)).all()


def test_teacher_target_is_the_flip_averaged_prediction():
    torch.manual_seed(0)
    teacher = create_model("fastdepth_nyu", **SMALL).eval()
    batch = {"rgb": torch.randint(0, 255, (2, 64, 64, 3), dtype=torch.uint8)}
    x = batch["rgb"].permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        want = 0.5 * (teacher(x) + teacher(x.flip(-1)).flip(-1))
    assert torch.allclose(teacher_depth(teacher, batch, "cpu", flip=True), want, atol=1e-6)
    assert torch.allclose(teacher_depth(teacher, batch, "cpu", flip=False), teacher(x), atol=1e-6)


def test_objective_adds_the_teacher_term_and_skips_missing_ground_truth():
    torch.manual_seed(0)
    student = create_model("fastdepth_nyu", **SMALL)
    teacher = create_model("fastdepth_nyu", **SMALL).eval()
    for p in teacher.parameters():  # a teacher that predicts something positive
        p.data.abs_()
    spec = student.spec
    loss = create_loss("l1")
    rgb = torch.randint(0, 255, (2, 64, 64, 3), dtype=torch.uint8)
    nan = torch.full((2, 1, 64, 64), float("nan"))
    x = rgb.permute(0, 3, 1, 2).float() / 255
    pred = student(x)
    t = teacher_depth(teacher, {"rgb": rgb}, "cpu").clamp(*spec.depth_range)
    only_t = depth_objective(student, spec, {"rgb": rgb, "depth": nan}, "cpu", loss,
                             teacher=teacher, teacher_weight=0.5)
    assert torch.isclose(only_t, 0.5 * loss(pred, t), atol=1e-5)
    gt = torch.full((2, 1, 64, 64), 2.0)
    both = depth_objective(student, spec, {"rgb": rgb, "depth": gt}, "cpu", loss,
                           teacher=teacher, teacher_weight=0.5)
    assert torch.isclose(both, loss(pred, gt) + 0.5 * loss(pred, t), atol=1e-5)
    with pytest.raises(ValueError, match="trained on depth"):
        depth_objective(student, spec, {"rgb": rgb}, "cpu", loss)


def test_train_with_a_teacher_on_colour_only_images(tmp_path):
    torch.manual_seed(0)
    teacher = create_model("fastdepth_nyu", **SMALL)
    teacher.spec = teacher.spec.replace(input_size=(64, 64))
    tpath = save_checkpoint(teacher, tmp_path / "teacher.pt")
    val = tmp_path / "val"
    (val / "rgb").mkdir(parents=True)
    (val / "depth").mkdir()
    for i in range(2):
        cv2.imwrite(str(val / "rgb" / f"{i}.png"), np.full((48, 64, 3), 100 + i, np.uint8))
        cv2.imwrite(str(val / "depth" / f"{i}.png"), np.full((48, 64), 2000, np.uint16))
    (val / "intrinsics.txt").write_text("50 50 32 24")
    cfg = dataclasses.replace(
        TrainConfig(), model="fastdepth_nyu", model_kwargs=dict(SMALL), train=str(_folder(
            tmp_path / "imgs")), val=str(val), out=str(tmp_path / "run"), pretrained=False,
        teacher=str(tpath), focal_norm=True, batch_size=2, max_steps=2, epochs=1, device="cpu",
        rotate_deg=0.0, loss="l1")
    best = train(cfg, progress=False)
    ck = torch.load(best, weights_only=True)
    # the canonical camera is the teacher's, whatever the training images' focal
    assert ck["spec"]["train_focal"] == pytest.approx(teacher.spec.train_focal)
    with pytest.raises(ValueError, match="differs from the teacher"):
        train(dataclasses.replace(cfg, ref_focal=0.5, out=str(tmp_path / "run2")), progress=False)
