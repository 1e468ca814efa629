"""Two training steps of fastdepth on CPU with real 7-Scenes frames; checkpoint contents."""

import csv
import math

import numpy as np
import pytest
import torch

from mono_depth_ros.models import create_model
from mono_depth_ros.training.trainer import Pack, TrainConfig, train


@pytest.fixture(scope="module")
def trained(seven_scenes_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("train_run")
    cfg = TrainConfig(model="fastdepth", max_steps=2, epochs=1, batch_size=2, pretrained=False,
                      train=f"{seven_scenes_dir}@0:4", val=f"{seven_scenes_dir}@800:802",
                      out=str(out), device="cpu", model_kwargs={"encoder": "mobilenetv2"},
                      num_threads=2)
    best = train(cfg, progress=False)
    return cfg, out, best


def test_pack_resizes_and_keeps_holes(seven_scenes_dir):
    pack = Pack(f"{seven_scenes_dir}@0:2", (48, 64))
    assert len(pack) == 2
    assert pack.rgb.shape == (2, 48, 64, 3) and pack.rgb.dtype == np.uint8
    assert pack.depth.shape == (2, 48, 64) and pack.depth.dtype == np.float16
    assert np.isnan(pack.depth).any()  # nearest-neighbour resize keeps Kinect holes as NaN
    assert pack.fx_norm == pytest.approx(585.0 / 640.0)


def test_two_step_training_writes_outputs(trained):
    cfg, out, best = trained
    assert best == out / "best.pt"
    assert best.is_file() and (out / "last.pt").is_file()
    assert (out / "curves.png").is_file()
    with open(out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    row = rows[0]
    assert int(row["epoch"]) == 1 and int(row["step"]) == 2
    assert math.isfinite(float(row["train_loss"])) and float(row["train_loss"]) > 0
    assert math.isfinite(float(row["val_abs_rel"]))


def test_checkpoint_contents(trained):
    cfg, out, best = trained
    ck = torch.load(best, map_location="cpu", weights_only=True)
    assert ck["model"] == "fastdepth"
    assert ck["model_kwargs"] == {"encoder": "mobilenetv2"}
    spec = ck["spec"]
    assert spec["name"] == "fastdepth"
    assert spec["train_focal"] == pytest.approx(585.0 / 640.0)
    assert spec["rescale_by_focal"] is True
    assert ck["config"]["max_steps"] == 2 and ck["config"]["model_kwargs"] == {"encoder": "mobilenetv2"}
    assert ck["config"]["train"] == cfg.train
    for k in ("abs_rel", "rmse", "delta1"):
        assert math.isfinite(ck["metrics"][k])
    assert ck["metrics"]["frames"] == 2
    assert isinstance(ck["git_revision"], str) and ck["git_revision"]
    assert ck["train_frames"] == 4 and ck["val_frames"] == 2
    last = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert last["step"] == 2 and "optimizer" in last and "scheduler" in last


def test_checkpoint_loads_with_create_model(trained):
    _, _, best = trained
    ck = torch.load(best, map_location="cpu", weights_only=True)
    model = create_model("fastdepth", checkpoint=best)
    assert model.spec.train_focal == pytest.approx(585.0 / 640.0)
    assert model.spec.rescale_by_focal is True
    assert model.model_kwargs == {"encoder": "mobilenetv2"}
    assert not model.training
    sd = model.state_dict()
    for k, v in ck["state_dict"].items():
        assert torch.equal(sd[k], v), k
    with torch.inference_mode():
        y = model(torch.zeros(1, 3, 64, 96))
    assert y.shape == (1, 1, 64, 96)
    assert torch.isfinite(y).all() and (y > 0).all()  # softplus keeps metric depth positive


def test_time_budget_caps_steps_and_keeps_weights(seven_scenes_dir, tmp_path, capsys):
    """A budget far below one epoch ends the run after about budget / (s per step) steps; the
    timing steps themselves leave the weights untouched (zero learning rate, state restored)."""
    from mono_depth_ros.training.trainer import _seconds_per_step, load_pack, OBJECTIVES, objective_for
    from mono_depth_ros.training.losses import create_loss
    cfg = TrainConfig(model="fastdepth", epochs=1, batch_size=2, pretrained=False,
                      train=f"{seven_scenes_dir}@0:40", val=f"{seven_scenes_dir}@800:802",
                      out=str(tmp_path), device="cpu", model_kwargs={"encoder": "mobilenetv2"},
                      num_threads=2, time_budget_s=1e-3)
    train(cfg, progress=False)
    ck = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=True)
    assert ck["step"] == 1  # at least one step, never more than the budget allows
    assert "time budget" in capsys.readouterr().out
    model = create_model("fastdepth", encoder="mobilenetv2").train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    objective, _ = OBJECTIVES[objective_for(model.spec)]
    pack = load_pack(cfg.train, tuple(model.spec.input_size))
    assert load_pack(cfg.train, tuple(model.spec.input_size)) is pack  # decoded once per process
    sec = _seconds_per_step(model, model, objective, create_loss("berhu"), pack, cfg,
                            torch.device("cpu"), False, steps=2)
    assert sec > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
