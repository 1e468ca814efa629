"""Hugging Face depth models: registry rows, offline behaviour, pre/post-processing equal to the
models' own ``transformers`` image processors on a real 7-Scenes frame, and tiny random
checkpoints of every family through create_model, predict and ``evaluate`` (all offline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hf_helpers import make_tiny, transformers  # noqa: F401  (skips without transformers)

from mono_depth_ros.inference.estimator import DepthEstimator
from mono_depth_ros.inference.preprocess import prepare, restore
from mono_depth_ros.models import create_model, get_spec, list_models
from mono_depth_ros.models.hf import (FAMILIES, HF_MODELS, HubId, HubWeightsUnavailable, hf_spec,
                                      parse_hub_id, processor_overrides)

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["depth_anything_v2_small", "depth_anything_v2_base", "depth_anything_v2_large",
         *(f"depth_anything_v2_metric_{s}_{z}" for s in ("indoor", "outdoor")
           for z in ("small", "base", "large")),
         "depth_pro", "zoedepth_nyu_kitti", "glpn_nyu", "glpn_kitti", "dpt_large", "dpt_hybrid_midas"]
#: One registered name per architecture family (plus the metric Depth Anything).
FAMILY_NAMES = ["depth_anything_v2_small", "depth_anything_v2_metric_indoor_small", "dpt_large",
                "glpn_nyu", "zoedepth_nyu_kitti", "depth_pro"]
#: Largest |ours - transformers| allowed for the normalised network input. Both resize the same
#: uint8 / float tensors with the same torchvision / F.interpolate calls; what remains is float32
#: rounding of the fused rescale+normalise (measured: <= 2.4e-7).
INPUT_TOL = 1e-5
#: The processors' real settings (as in the hub repos' preprocessor_config.json).
PROCESSORS = {
    "depth_anything": lambda: transformers.DPTImageProcessor(
        size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14,
        resample=3, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]),
    "dpt": lambda: transformers.DPTImageProcessor(
        size={"height": 384, "width": 384}, keep_aspect_ratio=False, resample=3,
        image_mean=[0.5] * 3, image_std=[0.5] * 3),
    "glpn": lambda: transformers.GLPNImageProcessor(size_divisor=32, resample=2),
    "zoedepth": lambda: transformers.ZoeDepthImageProcessor(
        size={"height": 384, "width": 512}, keep_aspect_ratio=True, ensure_multiple_of=32,
        do_pad=True, resample=2, image_mean=[0.5] * 3, image_std=[0.5] * 3),
    "depth_pro": lambda: transformers.DepthProImageProcessor(size={"height": 1536, "width": 1536}),
}
FAMILY_OF = {"depth_anything": "depth_anything_v2_small", "dpt": "dpt_large", "glpn": "glpn_nyu",
             "zoedepth": "zoedepth_nyu_kitti", "depth_pro": "depth_pro"}


@pytest.fixture(scope="module")
def frame(seven_scenes_dir):
    bgr = cv2.imread(str(seven_scenes_dir / "frame-000000.color.jpg"))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {name: make_tiny(name, root / name) for name in FAMILY_NAMES}


def _small(frame):
    return cv2.resize(frame, (160, 120), interpolation=cv2.INTER_AREA)


def _K(w=640, h=480, f=585.0):
    return np.array([[f * w / 640, 0, w / 2], [0, f * w / 640, h / 2], [0, 0, 1.0]])


def test_every_issue_name_is_registered_with_hub_id_kind_range_licence_citation():
    assert set(NAMES) == set(HF_MODELS) and set(NAMES) <= set(list_models())
    for name in NAMES:
        spec = get_spec(name)
        assert spec.extras["hub_id"].startswith("hf:") and spec.extras["hub_id"].count("/") == 1
        assert parse_hub_id(spec.extras["hub_id"]).revision is None
        assert spec.weights_licence and spec.citation and spec.description
        assert 0 < spec.depth_range[0] < spec.depth_range[1]
    relative = {n for n in NAMES if get_spec(n).is_relative}
    assert relative == {"depth_anything_v2_small", "depth_anything_v2_base",
                        "depth_anything_v2_large", "dpt_large", "dpt_hybrid_midas"}
    assert get_spec("depth_pro").output_kind == "canonical_inverse_depth"
    assert get_spec("depth_anything_v2_metric_outdoor_small").depth_range[1] == 80.0
    assert get_spec("depth_anything_v2_small").preprocessing.multiple == 14  # DINOv2 patches


def test_models_command_shows_kind_and_licence(capsys):
    from mono_depth_ros.tools.cli import main
    with pytest.raises(SystemExit) as exc:
        main(["models"])
    assert exc.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert "kind" in lines[0] and "weights licence" in lines[0]
    row = next(line for line in lines if line.startswith("depth_anything_v2_base "))
    assert "relative_inverse" in row and "CC-BY-NC-4.0" in row
    assert "MIT" in next(line for line in lines if line.startswith("zoedepth_nyu_kitti "))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_preprocessing_equals_the_transformers_processor_on_a_real_frame(family, frame):
    proc = PROCESSORS[family]()
    name = FAMILY_OF[family]
    spec = hf_spec(name).replace(**processor_overrides(proc.to_dict(), FAMILIES[family]))
    ours = prepare(frame, spec, spec.input_size, torch.device("cpu")).x
    theirs = proc(images=frame, return_tensors="pt")["pixel_values"]
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    assert float((ours - theirs).abs().max()) <= INPUT_TOL
    if family == "depth_anything":  # 480x640 -> 518 x 686 (686 = 49 * 14)
        assert tuple(ours.shape[-2:]) == (518, 686)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_output_resize_equals_the_processor_post_processing(family, frame):
    from transformers.modeling_outputs import DepthEstimatorOutput
    proc = PROCESSORS[family]()
    name = FAMILY_OF[family]
    spec = hf_spec(name).replace(**processor_overrides(proc.to_dict(), FAMILIES[family]))
    prepared = prepare(frame, spec, spec.input_size, torch.device("cpu"))
    h, w = prepared.x.shape[-2:]
    raw = torch.rand(1, h // 4, w // 4, generator=torch.Generator().manual_seed(0)) + 0.5
    ours = restore(raw[:, None], prepared, frame.shape[:2], spec)[0, 0]
    kwargs = {"source_sizes": [frame.shape[:2]]} if family == "zoedepth" else {}
    if family == "depth_pro":  # its post-processing also turns inverse depth into metres
        out = DepthEstimatorOutput(predicted_depth=raw)
        out.field_of_view = torch.tensor([60.0])
        theirs = proc.post_process_depth_estimation(out, target_sizes=[frame.shape[:2]])[0]
        ratio = 0.5 / np.tan(np.deg2rad(30.0))
        ours = ratio / ours  # canonical inverse depth -> metres with fx / W from the same FOV
        theirs = theirs["predicted_depth"]
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
        return
    theirs = proc.post_process_depth_estimation(DepthEstimatorOutput(predicted_depth=raw),
                                                target_sizes=[frame.shape[:2]], **kwargs)
    torch.testing.assert_close(ours, theirs[0]["predicted_depth"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_tiny_checkpoint_predict_equals_transformers_end_to_end(name, tiny_dirs, frame):
    """create_model + DepthEstimator.predict on a tiny random checkpoint folder gives what
    transformers' own processor -> model -> post-processing gives (same weights)."""
    folder = tiny_dirs[name]
    est = DepthEstimator(name, checkpoint=str(folder), device="cpu", backend="torch",
                         use_camera_focal=False)
    assert est.checkpoint == str(folder) and est.warnings == []
    img = _small(frame)
    pred = est.predict(img, _K(160, 120))
    proc = transformers.AutoImageProcessor.from_pretrained(folder)
    model = getattr(transformers, FAMILIES[est.spec.extras["family"]].model_class).from_pretrained(folder)
    with torch.no_grad():
        inputs = proc(images=img, return_tensors="pt")
        out = model(**inputs)
    kwargs = {"source_sizes": [img.shape[:2]]} if "zoedepth" in name else {}
    theirs = proc.post_process_depth_estimation(out, target_sizes=[img.shape[:2]], **kwargs)
    theirs = theirs[0]["predicted_depth"].numpy()
    if est.spec.is_relative:
        assert pred.depth is None and pred.relative.shape == img.shape[:2]
        np.testing.assert_allclose(pred.relative, theirs, rtol=1e-4, atol=1e-6 * np.abs(theirs).max())
        return
    assert pred.relative is None and pred.depth.shape == img.shape[:2]
    valid = np.isfinite(pred.depth)
    assert valid.any()
    # 1e-3 relative: Depth Pro divides by small inverse depths (float32 rounding grows there)
    np.testing.assert_allclose(pred.depth[valid], theirs[valid], rtol=1e-3, atol=1e-5)


def test_depth_pro_uses_the_camera_focal_unless_told_otherwise(tiny_dirs, frame):
    img = _small(frame)
    folder = str(tiny_dirs["depth_pro"])
    kw = dict(checkpoint=folder, device="cpu", backend="torch", min_depth=1e-6, max_depth=1e6)
    predicted = DepthEstimator("depth_pro", use_camera_focal=False, **kw)
    camera = DepthEstimator("depth_pro", **kw)
    with torch.no_grad():
        ratio = float(camera.net(prepare(img, camera.spec, camera.spec.input_size,
                                         torch.device("cpu")).x)["focal_ratio"][0])
    K = _K(160, 120, f=500.0)
    a, b = predicted.predict(img, K).depth, camera.predict(img, K).depth
    both = np.isfinite(a) & np.isfinite(b)
    # metres = (fx / W) / output: the camera's fx / W = 500 / 640 replaces the predicted ratio
    np.testing.assert_allclose(b[both] / a[both], (500.0 / 640.0) / ratio, rtol=1e-4)


def test_wrong_kind_and_incomplete_folders_are_refused(tiny_dirs, tmp_path):
    with pytest.raises(ValueError, match="metric_depth"):  # a metric checkpoint, relative name
        create_model("depth_anything_v2_small",
                     checkpoint=str(tiny_dirs["depth_anything_v2_metric_indoor_small"]))
    empty = tmp_path / "only_config"
    empty.mkdir()
    (empty / "config.json").write_text((tiny_dirs["dpt_large"] / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        create_model("dpt_large", checkpoint=str(empty))  # never random weights
    with pytest.raises(FileNotFoundError, match="not found"):
        create_model("dpt_large", checkpoint=str(tmp_path / "missing"))


def _blocked_run(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)


def test_hub_ids_need_the_explicit_form_and_pin_the_revision(tmp_path, monkeypatch):
    assert parse_hub_id("hf:Intel/dpt-large") == HubId("Intel/dpt-large")
    assert parse_hub_id("hf:Intel/dpt-large@v1.0") == HubId("Intel/dpt-large", "v1.0")
    assert parse_hub_id("hf:a/b@refs/pr/1").revision == "refs/pr/1"
    assert parse_hub_id("Intel/dpt-large") is None  # a path
    for bad in ("hf:Intel", "hf:/dpt", "hf:a/b/c", "hf:a/b@", "hf:a b/c"):
        with pytest.raises(ValueError, match="malformed hub id"):
            parse_hub_id(bad)
    # a mistyped relative path with one '/' is a missing folder, never someone's repository
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found.*hf:owner/name"):
        create_model("dpt_large", checkpoint="Intel/dpt-large")
    # the revision reaches from_pretrained (here refused, as offline without a cache)
    calls = []

    def fake(cls, repo, **kwargs):
        calls.append((repo, kwargs.get("revision")))
        raise OSError("offline")

    monkeypatch.setattr(transformers.DPTForDepthEstimation, "from_pretrained", classmethod(fake))
    with pytest.raises(HubWeightsUnavailable, match="--revision 0123abc"):
        create_model("dpt_large", checkpoint="hf:Intel/dpt-large@0123abc")
    with pytest.raises(HubWeightsUnavailable):
        create_model("dpt_large")  # the registry's id: the default branch
    assert calls == [("Intel/dpt-large", "0123abc"), ("Intel/dpt-large", None)]


def test_scalar_image_mean_and_std_are_broadcast_to_three_channels(tmp_path, frame):
    """transformers accepts scalars (its Depth Pro conversion writes image_mean=0.5)."""
    assert processor_overrides({"image_mean": 0.5, "image_std": 0.25}, FAMILIES["dpt"]) == {
        "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}
    zero = processor_overrides({"image_mean": 0, "image_std": [1.0]}, FAMILIES["glpn"])
    assert zero == {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}
    with pytest.raises(ValueError, match="image_std"):
        processor_overrides({"image_mean": 0.5, "image_std": [1.0, 2.0]}, FAMILIES["dpt"])
    folder = make_tiny("depth_pro", tmp_path / "scalar")
    cfg_path = folder / "preprocessor_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg.update(image_mean=0.5, image_std=0.5)
    cfg_path.write_text(json.dumps(cfg))
    est = DepthEstimator("depth_pro", checkpoint=str(folder), device="cpu", backend="torch")
    assert est.spec.mean == (0.5, 0.5, 0.5) and est.spec.std == (0.5, 0.5, 0.5)
    depth = est.predict(_small(frame), _K(160, 120)).depth
    assert depth.shape == (120, 160) and np.isfinite(depth).any()


def test_offline_without_weights_names_the_hub_id_and_the_fetch_command(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    code = ("from mono_depth_ros.models import create_model\n"
            "try:\n    create_model('dpt_large')\n"
            "except OSError as exc:\n    print(type(exc).__name__, exc)\n")
    res = _blocked_run(code, env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith(HubWeightsUnavailable.__name__)
    assert "Intel/dpt-large" in res.stdout and "hf download Intel/dpt-large --local-dir" in res.stdout
    assert "snapshot_download('Intel/dpt-large'" in res.stdout


def test_package_and_node_import_without_transformers():
    """transformers is optional: blocked, the registry still lists every model, the node module
    imports, and asking for an HF model gives the install line."""
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'transformers':\n"
            "            raise ImportError('transformers blocked')\n"
            "sys.meta_path.insert(0, Block())\n"
            "from mono_depth_ros.models import create_model, list_models\n"
            "import mono_depth_ros.inference.estimator, mono_depth_ros.tools.cli\n"
            "try:\n    import mono_depth_ros.ros.depth_node\nexcept ImportError as e:\n"
            "    assert 'rclpy' in str(e) or 'sensor_msgs' in str(e), e\n"
            "assert 'depth_pro' in list_models() and 'fastdepth' in list_models()\n"
            "try:\n    create_model('depth_pro')\n"
            "except ImportError as exc:\n    print(type(exc).__name__, exc)\n")
    res = _blocked_run(code, dict(os.environ))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "TransformersMissing" in res.stdout and "pip install transformers==" in res.stdout


def test_evaluate_command_runs_hf_checkpoint_folders(tiny_dirs, seven_scenes_dir, tmp_path, capsys):
    """``evaluate --model NAME --checkpoint DIR`` for a relative and a metric model, offline."""
    from mono_depth_ros.tools.cli import main
    for name in ("depth_anything_v2_small", "depth_pro"):
        out = tmp_path / name
        with pytest.raises(SystemExit) as exc:
            main(["evaluate", "--model", name, "--checkpoint", str(tiny_dirs[name]), "--data",
                  str(seven_scenes_dir), "--frames", "0:2", "--device", "cpu", "--panels", "0",
                  "--backend", "torch", "--out", str(out)])
        assert exc.value.code == 0
        report = json.loads((out / "metrics.json").read_text())
        assert report["frames"] == 2 and report["model"] == name
        assert report["checkpoint"] == str(tiny_dirs[name])
        assert ("alignment" in report) == (name == "depth_anything_v2_small")
        assert np.isfinite(report["mean"]["abs_rel"])
    assert "scored 2" in capsys.readouterr().out
