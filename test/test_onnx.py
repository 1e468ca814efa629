"""ONNX: export of every registered model with its spec as metadata and parity with PyTorch, the
``onnx`` model (exported and third-party files), the backend registry and its export cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from test_model_zoo import OWN_MODELS, _input, _small  # noqa: E402

from mono_depth_ros.inference import backends  # noqa: E402
from mono_depth_ros.inference.estimator import DepthEstimator  # noqa: E402
from mono_depth_ros.inference.onnx_export import (cache_dir, export_onnx, parity,  # noqa: E402
                                                  weights_key)
from mono_depth_ros.models import create_model, get_spec  # noqa: E402
from mono_depth_ros.models.onnx_model import SPEC_KEY  # noqa: E402
from mono_depth_ros.models.spec import ModelSpec  # noqa: E402

#: Parity tolerance: max |ONNX Runtime - PyTorch| <= PARITY_TOL * max(1, max |PyTorch output|)
#: (float32; different kernels sum in other orders, measured <= 2e-6 relative here).
PARITY_TOL = 1e-4
HF_TINY = ["depth_anything_v2_small", "dpt_large", "glpn_nyu", "zoedepth_nyu_kitti", "depth_pro"]
ROOT = Path(__file__).resolve().parents[1]
FRAME = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
K = np.array([[110.0, 0, 64], [0, 110.0, 48], [0, 0, 1]])


def _assert_parity(net, x, tmp_path, name):
    path = export_onnx(net, net.spec, tmp_path / f"{name}.onnx", x)
    with torch.inference_mode():
        ref = net(x)
    ref = {k: v for k, v in ref.items() if torch.is_tensor(v)} if isinstance(ref, dict) \
        else {"depth": ref}
    diffs = parity(net, path, x)
    assert set(diffs) == set(ref)
    for key, diff in diffs.items():
        scale = max(1.0, float(ref[key].abs().max()))
        assert diff <= PARITY_TOL * scale, (key, diff, scale)
    return path


@pytest.mark.parametrize("name", OWN_MODELS)
def test_export_parity_every_own_model(name, tmp_path):
    net = _small(name)
    x = _input(name, batch=1)
    path = _assert_parity(net, x, tmp_path, name)
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    stored = ModelSpec.from_dict(json.loads(meta[SPEC_KEY]))
    assert stored.name == name and stored.output_kind == get_spec(name).output_kind
    assert stored.input_size == tuple(x.shape[-2:])


@pytest.mark.parametrize("name", HF_TINY)
def test_export_parity_every_hf_family(name, tmp_path):
    from hf_helpers import make_tiny
    folder = make_tiny(name, tmp_path / "ckpt")
    net = create_model(name, checkpoint=str(folder))
    size = {"glpn_nyu": (64, 96), "zoedepth_nyu_kitti": (64, 96)}.get(name, net.spec.input_size)
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    _assert_parity(net, x, tmp_path, name)


def test_export_command_then_onnx_model_equals_pytorch(tmp_path, capsys):
    """``export`` writes the shipped fastdepth with its spec; ``model onnx`` runs it with the same
    pre/post-processing and gives the same depth as PyTorch."""
    from mono_depth_ros.tools.cli import main
    out = tmp_path / "fd.onnx"
    with pytest.raises(SystemExit) as exc:
        main(["export", "--model", "fastdepth", "--format", "onnx", "--out", str(out)])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "fastdepth_indoor.pt" in text
    diff = float(text.split("max |onnxruntime - pytorch| = ")[1].split()[0])
    assert diff <= 1e-5
    onnx_est = DepthEstimator("onnx", checkpoint=str(out), device="cpu")
    torch_est = DepthEstimator("fastdepth", device="cpu", backend="torch")
    assert onnx_est.spec.extras["source_model"] == "fastdepth" and onnx_est.backend == "onnxruntime"
    assert onnx_est.spec.input_size == torch_est.spec.input_size == (192, 256)
    assert onnx_est.spec.depth_range == torch_est.spec.depth_range
    a, b = onnx_est.predict(FRAME, K).depth, torch_est.predict(FRAME, K).depth
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a[np.isfinite(a)], b[np.isfinite(b)], atol=1e-4)


def test_third_party_onnx_runs_with_a_spec_file_beside_it(tmp_path):
    class Net(torch.nn.Module):  # B x 3 x H x W -> B x H x W, like many depth exports
        def forward(self, x):
            return torch.nn.functional.softplus(x.mean(1)) + 0.5

    path = tmp_path / "third_party.onnx"
    torch.onnx.export(Net(), (torch.rand(1, 3, 64, 64),), str(path), dynamo=False,
                      input_names=["image"], output_names=["depth"])
    with pytest.raises(ValueError, match="third_party.yaml"):
        create_model("onnx", checkpoint=str(path))
    (tmp_path / "third_party.yaml").write_text(
        "input_size: [64, 64]\noutput_kind: relative_inverse\nweights_licence: MIT\n"
        "mean: [0.5, 0.5, 0.5]\nstd: [0.5, 0.5, 0.5]\n"
        "preprocessing: {resize: stretch, multiple: 1, interpolation: bicubic,"
        " output_interpolation: bicubic}\n")
    est = DepthEstimator("onnx", checkpoint=str(path), device="cpu")
    assert est.spec.is_relative and est.spec.weights_licence == "MIT"
    pred = est.predict(FRAME, K)
    assert pred.depth is None and pred.relative.shape == FRAME.shape[:2]
    assert np.isfinite(pred.relative).all() and pred.relative.min() > 0.5
    # JSON beside the file, no preprocessing given: a 60x60 file (not a multiple of 32) runs
    small = tmp_path / "small.onnx"
    torch.onnx.export(Net(), (torch.rand(1, 3, 60, 60),), str(small), dynamo=False)
    (tmp_path / "small.onnx.json").write_text(json.dumps(
        {"input_size": [60, 60], "output_kind": "metric_depth", "depth_range": [0.1, 10.0]}))
    pred = DepthEstimator("onnx", checkpoint=str(small), device="cpu").predict(FRAME, K)
    assert np.isfinite(pred.depth).all() and pred.depth.min() > 0.5
    with pytest.raises(ValueError, match="checkpoint"):
        create_model("onnx")


def test_backend_auto_uses_onnxruntime_for_trained_fastdepth_on_cpu_with_a_cache():
    est = DepthEstimator("fastdepth", device="cpu")  # shipped weights
    assert est.backend == "onnxruntime"
    ref = DepthEstimator("fastdepth", device="cpu", backend="torch")
    a, b = est.predict(FRAME, K).depth, ref.predict(FRAME, K).depth
    np.testing.assert_allclose(a[np.isfinite(a)], b[np.isfinite(b)], atol=1e-4)
    files = est._run.files
    assert len(files) == 1 and Path(files[0]).parent == cache_dir()
    assert Path(os.environ["MONO_DEPTH_ROS_CACHE"]) in Path(files[0]).parents
    mtime = Path(files[0]).stat().st_mtime_ns
    again = DepthEstimator("fastdepth", device="cpu")
    again.predict(FRAME, K)
    assert again._run.files == files and Path(files[0]).stat().st_mtime_ns == mtime  # reused
    shape = (1, 3, 192, 256)
    key = weights_key(again.net, again.spec, shape)
    assert key in files[0]
    with torch.no_grad():  # other weights (a changed checkpoint) -> another cache entry
        again.net.head.bias.add_(0.5)
    assert weights_key(again.net, again.spec, shape) != key
    # untrained weights are not worth an export; explicit choices are honoured
    assert DepthEstimator("resnete_v1", device="cpu").backend == "torch"
    assert DepthEstimator("resnete_v1", device="cpu", backend="onnxruntime").backend == "onnxruntime"
    with pytest.raises(ValueError, match="stateful"):
        DepthEstimator("siamese_convlstm", device="cpu", backend="onnxruntime", stateful=True)
    with pytest.raises(ValueError, match="backend"):
        DepthEstimator("fastdepth", device="cpu", backend="tensorflow")


def test_cli_backend_choices_are_the_registry_choices():
    from mono_depth_ros.inference.estimator import PRECISIONS
    from mono_depth_ros.tools.cli import BACKEND_CHOICES, PRECISION_CHOICES
    assert BACKEND_CHOICES == backends.CHOICES
    assert PRECISION_CHOICES == tuple(PRECISIONS)
    assert set(backends.BACKENDS) == set(backends.CHOICES) - {"auto"}


def test_bench_model_table_has_a_column_per_backend():
    from mono_depth_ros.inference.estimator import default_checkpoint
    from mono_depth_ros.tools.bench import format_model_table, model_table
    # the shipped weights at the spec size: the export cached by the auto-backend test is reused
    rows = model_table("cpu", iters=1, models=["fastdepth"], backends=("torch", "onnxruntime"),
                       checkpoints={"fastdepth": str(default_checkpoint("fastdepth"))})
    assert rows[0]["cpu_torch_p50_ms"] > 0 and rows[0]["cpu_onnxruntime_p50_ms"] > 0
    table = format_model_table(rows, "cpu", ("torch", "onnxruntime"))
    assert "cpu torch p50 (ms) | cpu onnxruntime p50 (ms)" in table


def test_onnx_input_size_must_match_the_files_fixed_shape(tmp_path):
    """A size the file was not made for is refused at validation with the file's size (it used
    to pass and then fail on every frame); a side left at 0 is the file's, not the registry's."""
    from mono_depth_ros.inference.node_config import defaults, estimator_kwargs, validate_config
    net = create_model("fastdepth").eval()
    path = export_onnx(net, net.spec, tmp_path / "fd.onnx", torch.rand(1, 3, 64, 96))
    cfg = {**defaults(), "device": "cpu", "model": "onnx", "checkpoint": str(path)}
    assert validate_config(cfg) == []
    assert validate_config({**cfg, "input_width": 96, "input_height": 64}) == []
    reasons = validate_config({**cfg, "input_width": 128})
    assert len(reasons) == 1 and "input_width 128 != 96" in reasons[0], reasons
    assert "fixed 64x96" in reasons[0] and "fd.onnx" in reasons[0]
    assert estimator_kwargs({**cfg, "input_width": 96})["input_size"] == (64, 96)
    with pytest.raises(ValueError, match="input_height 32 != 64.*fixed 64x96"):
        DepthEstimator("onnx", checkpoint=str(path), device="cpu", input_size=(32, 96))
    # a file with dynamic height and width takes the size asked for
    dyn = tmp_path / "dyn.onnx"
    torch.onnx.export(net, (torch.rand(1, 3, 64, 96),), str(dyn), dynamo=False,
                      input_names=["input"], dynamic_axes={"input": {2: "h", 3: "w"}})
    (tmp_path / "dyn.yaml").write_text("input_size: [64, 96]\noutput_kind: metric_depth\n")
    assert validate_config({**cfg, "checkpoint": str(dyn), "input_width": 128}) == []
    est = DepthEstimator("onnx", checkpoint=str(dyn), device="cpu", input_size=(64, 128))
    assert np.isfinite(est.predict(FRAME, K).depth).any()
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a protobuf")
    assert "not a readable ONNX file" in " ".join(
        validate_config({**cfg, "checkpoint": str(broken), "input_width": 96}))
