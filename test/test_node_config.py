"""depth_node's configuration without ROS: every refused case of validate_config names the
parameter, checkpoints are data (weights_only) and must hold the model, the network is built
only from a valid configuration."""

from __future__ import annotations

import pickle

import pytest
import torch

from mono_depth_ros.inference.node_config import (PARAMETERS, ConfigError, build_estimator,
                                                  check_device, defaults, estimator_kwargs,
                                                  validate_config)
from mono_depth_ros.models import create_model, save_checkpoint


def with_(**changes):
    return {**defaults(), "device": "cpu", **changes}


def test_defaults_are_valid():
    assert validate_config(with_()) == []
    assert validate_config({}) == []  # missing names take their defaults


@pytest.mark.parametrize("changes, words", [
    ({"model": "no_such_net"}, ["unknown model", "fastdepth"]),
    ({"precision": "fp64"}, ["precision", "fp16"]),
    ({"precision": "fp16"}, ["fp16 needs a CUDA device"]),  # on this CPU-only configuration
    ({"input_width": 33}, ["input_width", "multiple of 32"]),
    ({"backend": "tensorflow"}, ["backend", "onnxruntime"]),
    ({"model": "onnx"}, ["onnx needs checkpoint"]),
    ({"model": "onnx", "checkpoint": "/nonexistent/net.onnx"}, ["does not exist"]),
    ({"model": "depth_anything_v2_small", "checkpoint": "./no/such/folder"},
     ["does not exist", "hf:owner/name"]),
    # a mistyped relative path with one '/' is a missing folder, never a hub repository
    ({"model": "dpt_large", "checkpoint": "Intel/dpt-large"}, ["does not exist", "hf:owner/name"]),
    ({"model": "dpt_large", "checkpoint": "hf:Intel"}, ["malformed hub id", "hf:owner/name"]),
    ({"model": "dpt_large", "checkpoint": "hf:Intel/dpt-large@"}, ["malformed hub id"]),
    ({"backend": "onnxruntime", "precision": "bf16"}, ["backend onnxruntime", "bf16"]),
    ({"backend": "tensorrt"}, ["tensorrt needs a CUDA device"]),
    ({"input_width": -32}, ["input_width", "within"]),
    ({"input_height": 5000}, ["input_height", "within"]),
    ({"min_depth": 5.0, "max_depth": 2.0}, ["min_depth < max_depth"]),
    ({"min_depth": 20.0}, ["min_depth < max_depth"]),  # above fastdepth's default max (10 m)
    ({"min_depth": -1.0}, ["min_depth", "within"]),
    ({"colored_min": 3.0, "colored_max": 1.0}, ["colored_min < colored_max"]),
    ({"cloud_decimation": 0}, ["cloud_decimation"]),
    ({"output_reliability": "sometimes"}, ["output_reliability", "best_effort"]),
    ({"input_depth": 0}, ["input_depth"]),
    ({"checkpoint": "/nonexistent/weights.pt"}, ["checkpoint", "does not exist"]),
    ({"device": "tpu"}, ["device", "tpu"]),
    ({"max_depth": "far"}, ["max_depth", "float"]),
])
def test_each_invalid_configuration_is_refused_with_a_reason(changes, words):
    reasons = validate_config(with_(**changes))
    assert reasons, changes
    text = " ".join(reasons)
    for w in words:
        assert w in text, (w, text)


def test_hf_and_onnx_models_validate_their_own_sizes_and_checkpoints(tmp_path):
    """A Depth Anything target size needs no multiple of 32 (its processor rounds to 14); a hub
    id (hf:owner/name[@revision]) or an existing folder / .onnx file is a valid checkpoint
    (loading checks the rest)."""
    assert validate_config(with_(model="depth_anything_v2_small", input_width=518,
                                 input_height=518)) == []
    assert validate_config(with_(model="dpt_large", checkpoint="hf:Intel/dpt-large")) == []
    assert validate_config(with_(model="dpt_large", checkpoint="hf:Intel/dpt-large@main")) == []
    assert validate_config(with_(model="dpt_large", precision="bf16")) == []  # auto: torch
    assert validate_config(with_(model="glpn_nyu", checkpoint=str(tmp_path))) == []
    (tmp_path / "net.onnx").write_bytes(b"")
    assert validate_config(with_(model="onnx", checkpoint=str(tmp_path / "net.onnx"))) == []
    assert validate_config(with_(backend="onnxruntime", use_camera_focal=False)) == []


def test_cuda_devices_are_checked_against_this_machine():
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    dev, why = check_device(f"cuda:{n}")  # one past the last device
    assert dev is None and "cuda" in why
    assert check_device("cpu") == (torch.device("cpu"), None)
    if n == 0:
        assert "not available" in check_device("cuda")[1]
        assert "not available" in " ".join(validate_config(with_(device="cuda:0")))


def test_every_parameter_default_is_within_its_own_range():
    for name, spec in PARAMETERS.items():
        if spec.range:
            lo, hi, _ = spec.range
            assert lo <= spec.default <= hi, name
        if spec.choices:
            assert spec.default in spec.choices, name


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ckpt")
    good = save_checkpoint(create_model("scrx_rgb"), tmp / "scrx.pt")
    corrupt = tmp / "corrupt.pt"
    corrupt.write_bytes(b"\x80\x04not a checkpoint at all" * 10)

    class Evil:  # unpickling this would call print: code, not data
        def __reduce__(self):
            return (print, ("code ran",))

    unsafe = tmp / "unsafe.pt"
    unsafe.write_bytes(pickle.dumps({"model": "scrx_rgb", "state_dict": {}, "x": Evil()}))
    # right name, wrong weights: scrx_rgb's state dict saved as fastdepth
    ck = torch.load(good, weights_only=True)
    ck["model"] = "fastdepth"
    mismatch = tmp / "mismatch.pt"
    torch.save(ck, mismatch)
    return {"good": str(good), "corrupt": str(corrupt), "unsafe": str(unsafe),
            "mismatch": str(mismatch)}


def test_checkpoint_checks(checkpoints, capsys):
    assert validate_config(with_(model="scrx_rgb", checkpoint=checkpoints["good"])) == []
    r = " ".join(validate_config(with_(model="fastdepth", checkpoint=checkpoints["good"])))
    assert "holds model 'scrx_rgb', not 'fastdepth'" in r
    r = " ".join(validate_config(with_(model="scrx_rgb", checkpoint=checkpoints["corrupt"])))
    assert "not a loadable weights file" in r
    r = " ".join(validate_config(with_(model="scrx_rgb", checkpoint=checkpoints["unsafe"])))
    assert "not a loadable weights file" in r
    assert "code ran" not in capsys.readouterr().out  # refused without running it
    r = " ".join(validate_config(with_(model="cnn3d_up", seg_checkpoint=checkpoints["good"])))
    assert "seg_checkpoint" in r and "not 'unet_seg'" in r


def test_build_refuses_weights_that_do_not_fit_the_architecture(checkpoints):
    cfg = with_(model="fastdepth", checkpoint=checkpoints["mismatch"])
    assert validate_config(cfg) == []  # the cheap checks pass ...
    with pytest.raises(ConfigError, match="cannot build 'fastdepth'.*state_dict"):
        build_estimator(cfg)  # ... the strict load does not


def test_build_refuses_an_invalid_configuration_before_building():
    with pytest.raises(ConfigError) as exc:
        build_estimator(with_(precision="fp64", input_width=33))
    assert len(exc.value.reasons) == 2


def test_zero_sizes_and_depths_mean_the_model_defaults():
    kw = estimator_kwargs(with_(model="fastdepth"))
    assert kw["input_size"] is None and kw["min_depth"] is None and kw["max_depth"] is None
    kw = estimator_kwargs(with_(model="fastdepth", input_width=320))
    assert kw["input_size"] == (192, 320)  # height from the spec (192 x 256)
    est = build_estimator(with_(model="scrx_rgb", input_width=128, input_height=64,
                                max_depth=6.0))
    assert est.input_size == (64, 128) and est.max_depth == 6.0
