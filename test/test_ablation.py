"""The SSegDep-Net ablation runner end to end at toy scale (one training step per network)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pybullet")

from mono_depth_ros.ablation import DEPTH_ROWS, run_ablation  # noqa: E402
from mono_depth_ros.synth import generate  # noqa: E402
from mono_depth_ros.train import TrainConfig  # noqa: E402


def test_ablation_runs_and_reports_tables(tmp_path):
    generate(tmp_path / "train", frames=2, seed=1, sequence_length=2)
    generate(tmp_path / "test", frames=2, seed=2, sequence_length=2)
    small = {"unet_seg": {"base_channels": 4}, "scrx_rgb": {"base_channels": 4},
             "scrx_ohes": {"base_channels": 4}, "cnn3d_s": {"base_channels": 2},
             "cnn3d_s_relu": {"base_channels": 2}, "cnn3d_up": {"base_channels": 2},
             "cnn3d_up_do": {"base_channels": 2}}
    base = TrainConfig(epochs=1, batch_size=2, max_steps=1, device="cpu", num_threads=2)
    res = run_ablation(str(tmp_path / "train"), str(tmp_path / "test"), str(tmp_path / "run"),
                       str(tmp_path / "report.md"), base, small)
    assert res["models"] == [name for _, name in DEPTH_ROWS] + ["ssegdep_net"]
    assert len(res["segmentation"]["iou"]) == 14
    for _, m in res["depth"]:
        assert 0.0 <= m["delta3"] <= 1.0 and m["frames"] == 2
    report = (tmp_path / "report.md").read_text()
    for heading in ("Table 1", "Table 2", "Table 3", "Table 4", "SSegDep-Net (predicted OHES)"):
        assert heading in report
    assert (tmp_path / "run" / "figure.png").is_file()
    assert json.loads((tmp_path / "run" / "ablation.json").read_text())["checkpoints"]["cnn3d_up"]
