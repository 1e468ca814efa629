"""The SSegDep-Net ablation runner end to end at toy scale (one training step per network)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pybullet")

from mono_depth_ros.training.ablation import DEPTH_ROWS, run_ablation  # noqa: E402
from mono_depth_ros.tools.synth import generate  # noqa: E402
from mono_depth_ros.training.trainer import TrainConfig  # noqa: E402


def test_ablation_runs_and_reports_tables(tmp_path):
    generate(tmp_path / "train", frames=2, seed=1, sequence_length=2)
    generate(tmp_path / "test", frames=2, seed=2, sequence_length=2)
    generate(tmp_path / "val", frames=2, seed=3, sequence_length=2)
    small = {"unet_seg": {"base_channels": 4}, "scrx_rgb": {"base_channels": 4},
             "scrx_ohes": {"base_channels": 4}, "cnn3d_s": {"base_channels": 2},
             "cnn3d_s_relu": {"base_channels": 2}, "cnn3d_up": {"base_channels": 2},
             "cnn3d_up_do": {"base_channels": 2}}
    base = TrainConfig(epochs=1, batch_size=2, max_steps=1, device="cpu", num_threads=2)
    res = run_ablation(str(tmp_path / "train"), str(tmp_path / "test"), str(tmp_path / "run"),
                       str(tmp_path / "report.md"), base, small, val_spec=str(tmp_path / "val"),
                       budget_s=1.0, ship=str(tmp_path / "ship"))
    assert res["models"] == [name for _, name in DEPTH_ROWS] + ["ssegdep_net"]
    assert len(res["segmentation"]["iou"]) == 14
    rows = [m for _, m in res["depth"]]
    for m in rows:
        assert m["frames"] == 2 and m["abs_rel"] > 0 and m["rmse"] > 0
        assert 0.0 <= m["delta1"] <= m["delta2"] <= m["delta3"] <= 1.0  # thresholds nest
        assert m["coverage"] == 1.0  # every valid-GT pixel was scored
    report = (tmp_path / "report.md").read_text()
    for heading in ("Table 1", "Table 2", "Table 3", "Table 4", "SSegDep-Net (predicted OHES)"):
        assert heading in report
    assert (tmp_path / "run" / "figure.png").is_file()
    assert json.loads((tmp_path / "run" / "ablation.json").read_text())["checkpoints"]["cnn3d_up"]
    # every run is summarised (one step each: max_steps caps the time budget's steps too)
    assert set(res["training"]) == {"unet_seg"} | {name for _, name in DEPTH_ROWS}
    assert all(t["steps"] == 1 and t["frames_seen"] == 2 for t in res["training"].values())
    assert "## Training runs" in report and "`" + str(tmp_path / "val") + "`" in report


def test_ablation_ships_float16_pair(tmp_path):
    """--ship writes float16 unet_seg / cnn3d_up checkpoints that ssegdep_net loads."""
    import torch

    from mono_depth_ros.models import create_model
    generate(tmp_path / "train", frames=2, seed=1, sequence_length=2)
    small = {name: {"base_channels": 2} for _, name in DEPTH_ROWS}
    small["unet_seg"] = {"base_channels": 4}
    base = TrainConfig(epochs=1, batch_size=2, max_steps=1, device="cpu", num_threads=2)
    res = run_ablation(str(tmp_path / "train"), str(tmp_path / "train"), str(tmp_path / "run"),
                       None, base, small, ship=str(tmp_path / "ship"))
    seg_file, depth_file = tmp_path / "ship" / "unet_seg_synth.pt", tmp_path / "ship" / "cnn3d_up_synth.pt"
    ck = torch.load(seg_file, weights_only=True)
    assert all(v.dtype == torch.float16 for v in ck["state_dict"].values() if v.is_floating_point())
    assert len(ck["test_metrics"]["iou"]) == 14 and ck["training"]["steps"] == 1
    hybrid = create_model("ssegdep_net", seg_checkpoint=seg_file, depth_checkpoint=depth_file)
    assert hybrid.seg.model_kwargs["base_channels"] == 4
    assert next(hybrid.parameters()).dtype == torch.float32
    assert res["shipped"]["cnn3d_up"] == str(depth_file)
