"""Export-based backends (issue #22): exports are fp32 graphs made outside autocast when the
estimator is built, cached under a key that covers everything that changes the graph; any failure
there (export error, unwritable cache, ONNX Runtime refusing the graph) runs PyTorch with one
warning and a reason on ``/diagnostics``, never a failing frame; ``tensorrt`` follows
``precision``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from mono_depth_ros.inference import backends  # noqa: E402
from mono_depth_ros.inference.estimator import DepthEstimator  # noqa: E402
from mono_depth_ros.inference.onnx_export import cached_export, weights_key  # noqa: E402
from mono_depth_ros.models import create_model  # noqa: E402
from mono_depth_ros.models.onnx_model import OnnxModel  # noqa: E402

FRAME = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
K = np.array([[110.0, 0, 64], [0, 110.0, 48], [0, 0, 1]])


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty export cache for this test only."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("MONO_DEPTH_ROS_CACHE", str(folder))
    return folder


@pytest.fixture
def unwritable_cache(tmp_path, monkeypatch):
    """MONO_DEPTH_ROS_CACHE below a regular file: no folder can be made there, even by root
    (which ignores a read-only mode)."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    monkeypatch.setenv("MONO_DEPTH_ROS_CACHE", str(blocker / "cache"))
    return blocker / "cache"


def _torch_depth(**kw):
    return DepthEstimator("fastdepth", device="cpu", backend="torch", **kw).predict(FRAME, K).depth


def _graph_types(path):
    """Every element type named in an ONNX graph (inputs, outputs, values, initializers, Cast)."""
    g = onnx.load(str(path)).graph
    types = {v.type.tensor_type.elem_type for v in [*g.input, *g.output, *g.value_info]}
    types |= {t.data_type for t in g.initializer}
    types |= {a.i for n in g.node if n.op_type == "Cast" for a in n.attribute if a.name == "to"}
    return types


def test_an_export_made_inside_bf16_autocast_is_an_fp32_graph(fresh_cache):
    net = create_model("fastdepth").eval()
    x = torch.rand(1, 3, 64, 96)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.inference_mode():
        path = cached_export(net, net.spec, x)
    assert onnx.TensorProto.BFLOAT16 not in _graph_types(path)
    with torch.inference_mode():
        got = OnnxModel(str(path))(x)  # ONNX Runtime refused the bf16 graph here before
        torch.testing.assert_close(got, net(x), atol=1e-4, rtol=1e-4)


def test_the_cache_key_covers_precision_device_and_weight_dtypes():
    net = create_model("fastdepth").eval()
    shape = (1, 3, 64, 96)
    key = weights_key(net, net.spec, shape)
    assert weights_key(net, net.spec, shape, precision="bf16") != key
    assert weights_key(net, net.spec, shape, device="cuda") != key
    assert weights_key(net, net.spec, (1, 3, 64, 128)) != key
    assert weights_key(net.to(torch.float64), net.spec, shape) != key


def test_evaluate_bf16_then_plain_evaluate_both_run_with_a_fresh_cache(fresh_cache, data_dir,
                                                                      tmp_path, capsys):
    """The issue's sequence: bf16 used to export inside autocast into the shared cache, and
    both runs then failed with INVALID_GRAPH ... tensor(bfloat16)."""
    from mono_depth_ros.tools.cli import main
    runs = {}
    for name, extra in (("bf16", ["--precision", "bf16"]), ("plain", [])):
        with pytest.raises(SystemExit) as exc:
            main(["evaluate", "--model", "fastdepth", "--data", str(data_dir / "kitti-raw-frame"),
                  "--device", "cpu", "--panels", "0", "--out", str(tmp_path / name), *extra])
        assert exc.value.code == 0, capsys.readouterr().err[-2000:]
        runs[name] = json.loads((tmp_path / name / "metrics.json").read_text())
    # bf16 is PyTorch autocast (ONNX Runtime would run fp32); the plain run uses the fp32 export
    assert (runs["bf16"]["backend"], runs["bf16"]["precision"]) == ("torch", "bf16")
    assert (runs["plain"]["backend"], runs["plain"]["precision"]) == ("onnxruntime", "fp32")
    assert all(np.isfinite(r["mean"]["abs_rel"]) for r in runs.values())


def test_onnxruntime_with_bf16_runs_fp32_and_leaves_the_cache_usable(fresh_cache):
    est = DepthEstimator("fastdepth", device="cpu", backend="onnxruntime", precision="bf16")
    assert est.precision == "fp32" and est.backend == "onnxruntime"
    assert any("runs fp32" in w and "bf16" in w for w in est.warnings)
    ref = _torch_depth()
    np.testing.assert_allclose(est.predict(FRAME, K).depth, ref, atol=1e-4)
    plain = DepthEstimator("fastdepth", device="cpu")
    assert plain.backend == "onnxruntime" and plain.backend_fallback is None
    np.testing.assert_allclose(plain.predict(FRAME, K).depth, ref, atol=1e-4)


def test_the_export_happens_when_the_estimator_is_built(fresh_cache):
    est = DepthEstimator("fastdepth", device="cpu")
    files = list((fresh_cache / "onnx").glob("*.onnx"))
    assert len(files) == 1 and est._run.files == [str(files[0])]  # before any frame
    assert "-fp32-" in files[0].name


@pytest.mark.parametrize("backend", ["auto", "onnxruntime"])
def test_unwritable_cache_runs_pytorch_with_one_warning(backend, unwritable_cache, caplog):
    """The default configuration (and an explicit onnxruntime) with an unwritable cache: the
    same depth as PyTorch, one warning, the reason kept for /diagnostics."""
    from mono_depth_ros.inference.node_config import build_estimator, defaults
    cfg = {**defaults(), "device": "cpu", "backend": backend}
    with caplog.at_level(logging.WARNING):
        est = build_estimator(cfg)
        depth = [est.predict(FRAME, K).depth for _ in range(2)]
    assert est.backend == "torch"
    if est._backend != "torch":  # an export was tried (always for onnxruntime; auto: fastdepth)
        assert "MONO_DEPTH_ROS_CACHE" in est.backend_fallback
        assert [w for w in est.warnings if "PyTorch" in w] == [est.backend_fallback]
    assert backend == "auto" or est.backend_fallback
    assert not [r for r in caplog.records if "PyTorch" in r.getMessage()]  # not a second time
    ref = build_estimator({**cfg, "backend": "torch"}).predict(FRAME, K).depth
    for d in depth:
        np.testing.assert_allclose(d, ref, atol=1e-5)


@pytest.mark.parametrize("where", ["export", "session"])
def test_a_failed_export_or_a_refused_graph_runs_pytorch(where, fresh_cache, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("[ONNXRuntimeError] : 10 : INVALID_GRAPH : tensor(bfloat16)")

    target = (("mono_depth_ros.inference.onnx_export.export_onnx", refuse) if where == "export"
              else ("mono_depth_ros.models.onnx_model.OnnxModel.forward", refuse))
    monkeypatch.setattr(*target)
    est = DepthEstimator("fastdepth", device="cpu")
    assert est.backend == "torch" and "INVALID_GRAPH" in est.backend_fallback
    np.testing.assert_allclose(est.predict(FRAME, K).depth, _torch_depth(), atol=1e-5)


def test_a_shape_seen_first_on_a_frame_falls_back_with_one_logged_warning(unwritable_cache,
                                                                         caplog):
    """Keep-aspect models meet their input shape on the first frame: same fallback, logged once
    (the estimator's warnings are already out by then)."""
    net = create_model("fastdepth").eval()
    run = backends.make_runner("onnxruntime", net, torch.device("cpu"))
    x = torch.rand(1, 3, 64, 96)
    with caplog.at_level(logging.WARNING), torch.inference_mode():
        outs = [run(x), run(x), run(torch.rand(1, 3, 64, 128))]
        torch.testing.assert_close(outs[0], net(x))
    assert run.fallback_reason and len([r for r in caplog.records
                                        if r.getMessage() == run.fallback_reason]) == 1


@pytest.mark.parametrize("precision, fp16, bf16", [("fp32", False, False), ("fp16", True, False),
                                                    ("bf16", False, True)])
def test_tensorrt_engines_follow_the_precision(precision, fp16, bf16, fresh_cache, monkeypatch):
    opts = backends.tensorrt_provider_options("/engines", precision)
    assert (opts["trt_fp16_enable"], opts["trt_bf16_enable"]) == (fp16, bf16)
    assert opts["trt_engine_cache_enable"] and opts["trt_engine_cache_path"] == "/engines"
    # the backend passes the estimator's precision on, engines cached per precision
    monkeypatch.setattr(backends, "require_tensorrt", lambda: None)
    run = backends.make_runner("tensorrt", create_model("fastdepth"), torch.device("cuda"),
                               precision)
    (name, built), cuda = run.providers()
    assert name == "TensorrtExecutionProvider" and cuda == "CUDAExecutionProvider"
    assert (built["trt_fp16_enable"], built["trt_bf16_enable"]) == (fp16, bf16)
    folder = Path(built["trt_engine_cache_path"])
    assert folder.is_dir() and folder.name.startswith(f"{precision}-ort")
    assert fresh_cache in folder.parents


def test_node_reports_the_backend_fallback_on_diagnostics(unwritable_cache, rclpy_context):
    pytest.importorskip("rclpy")
    from rclpy.parameter import Parameter

    from mono_depth_ros.ros.depth_node import DepthNode
    node = DepthNode(context=rclpy_context, parameter_overrides=[
        Parameter("stats_period", value=0.0), Parameter("device", value="cpu")])
    try:
        values = dict(node.health_report().values)
        assert values["backend"] == "torch"
        assert values["backend fallback"] == node.estimator.backend_fallback
        assert "MONO_DEPTH_ROS_CACHE" in values["backend fallback"]
    finally:
        node.destroy_node()
