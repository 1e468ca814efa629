"""The authors' FastDepth (fastdepth_nyu): importer, parity with ONNX Runtime, the focal_crop
view, the weights lookup, and the shared ONNX file through ``model:=onnx``.

The third-party weights live in ``../shared/weights/fastdepth-nyu`` (CI has them); tests that
need them skip with a clear message only when that folder is absent.
"""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import NYU_MINI, REPO_ROOT
from mono_depth_ros.inference.preprocess import Prepared, restore, view_window
from mono_depth_ros.models import create_model, get_spec
from mono_depth_ros.models.fastdepth_nyu import TRAIN_FOCAL_PX
from mono_depth_ros.tools.import_weights import (WeightsImportError, import_fastdepth, read_onnx,
                                                 state_dict_from_records, widths_from_records)

SHARED = REPO_ROOT.parent / "shared" / "weights" / "fastdepth-nyu"
ONNX_FILE = SHARED / "fastdepth_224_float32.onnx"
TFLITE_FILE = SHARED / "fast_depth_224.tflite"


def _need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"third-party weights not found at {path} (expected ../shared/weights)")
    return path


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    """The shared ONNX file imported into a checkpoint of this test run."""
    return import_fastdepth(_need(ONNX_FILE), tmp_path_factory.mktemp("w") / "fastdepth_nyu.pt")


def _nyu_inputs():
    for i in range(10):
        path = NYU_MINI / f"image_{i}.png"
        if not path.is_file():
            pytest.skip(f"NYU-mini not found at {NYU_MINI}")
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        x = cv2.resize(rgb, (224, 224), interpolation=cv2.INTER_AREA)
        yield x.astype(np.float32).transpose(2, 0, 1)[None] / 255.0


def test_import_matches_onnxruntime_on_nyu_mini(imported):
    import onnxruntime as ort
    sess = ort.InferenceSession(str(ONNX_FILE), providers=["CPUExecutionProvider"])
    net = create_model("fastdepth_nyu", checkpoint=imported)
    assert sum(p.numel() for p in net.parameters()) == 1_352_225
    worst = 0.0
    for x in _nyu_inputs():
        ref = sess.run(None, {"rgb": x})[0]
        with torch.no_grad():
            got = net(torch.from_numpy(x)).numpy()
        assert ref.shape == got.shape == (1, 1, 224, 224)
        assert ref.mean() > 0.5  # metres of a room, not an empty map
        worst = max(worst, float(np.abs(ref - got).max()))
    assert worst <= 1e-3, f"max abs difference {worst} m"


def test_checkpoint_records_source_and_hash(imported):
    from mono_depth_ros.models import load_checkpoint
    ck = load_checkpoint(imported)
    assert ck["model"] == "fastdepth_nyu"
    assert ck["source"]["sha256"] == ("e3ca14c2cfdee201665e932f533707f5c028cced08d1ffcfd9b4575f23"
                                      "9ddc1b")
    assert ck["model_kwargs"]["encoder_widths"][-1] == 512


def test_upstream_tflite_gives_the_same_weights(imported, tmp_path):
    pytest.importorskip("tflite")
    from_tflite = import_fastdepth(_need(TFLITE_FILE), tmp_path / "t.pt")
    a = create_model("fastdepth_nyu", checkpoint=imported).state_dict()
    b = create_model("fastdepth_nyu", checkpoint=from_tflite).state_dict()
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-6


def _export(net, path: Path) -> Path:
    torch.onnx.export(net.eval(), torch.zeros(1, 3, 64, 64), str(path), input_names=["rgb"],
                      output_names=["depth"], dynamo=False)
    return path


def test_widths_come_from_the_file_not_a_list(tmp_path):
    # another pruning of the same architecture: the importer must find these widths itself
    enc = (8, 16, 24, 24, 32, 40, 48, 48, 48, 48, 48, 48, 64, 72)
    dec = (40, 40, 24, 16, 8)
    src = create_model("fastdepth_nyu", encoder_widths=enc, decoder_widths=dec)
    torch.manual_seed(0)
    for p in src.parameters():
        p.data.uniform_(0.01, 0.1)
    out = import_fastdepth(_export(src, tmp_path / "small.onnx"), tmp_path / "small.pt")
    net = create_model("fastdepth_nyu", checkpoint=out)
    assert net.encoder_widths == enc and net.decoder_widths == dec
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(net(x), src(x), atol=1e-5)


def test_leftover_or_missing_tensors_fail_loudly(tmp_path):
    src = create_model("fastdepth_nyu", encoder_widths=(8, 16, 24, 24, 32, 40, 48, 48, 48, 48,
                                                        48, 48, 64, 72),
                       decoder_widths=(40, 40, 24, 16, 8))
    records, names = read_onnx(_export(src, tmp_path / "n.onnx"))
    widths = widths_from_records(records)
    net = create_model("fastdepth_nyu", **widths)
    with pytest.raises(WeightsImportError, match="left over.*extra_tensor"):
        state_dict_from_records(net, records, names + ["extra_tensor"])
    with pytest.raises(WeightsImportError, match="convolutions"):
        state_dict_from_records(net, records[:-1], names)
    wrong = list(records)
    wrong[3], wrong[4] = wrong[4], wrong[3]  # a depthwise where a pointwise belongs
    with pytest.raises(WeightsImportError, match="does not fit module"):
        state_dict_from_records(net, wrong, names)


def test_not_a_fastdepth_file_is_refused(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(4, 1, 1))
    with pytest.raises(WeightsImportError):
        import_fastdepth(_export(net, tmp_path / "other.onnx"), tmp_path / "o.pt")
    with pytest.raises(WeightsImportError, match="expected one of"):
        (tmp_path / "w.pth").write_bytes(b"x")
        import_fastdepth(tmp_path / "w.pth", tmp_path / "o.pt")


def test_without_imported_weights_one_line_says_how(tmp_path, monkeypatch):
    from mono_depth_ros.inference.estimator import DepthEstimator
    monkeypatch.setenv("MONO_DEPTH_ROS_WEIGHTS", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        DepthEstimator("fastdepth_nyu", device="cpu", backend="torch")
    text = str(err.value)
    assert "\n" not in text and "import-weights" in text and str(tmp_path) in text


def test_estimator_finds_weights_in_the_import_folder(imported, monkeypatch):
    from mono_depth_ros.inference.estimator import DepthEstimator
    monkeypatch.setenv("MONO_DEPTH_ROS_WEIGHTS", str(imported.parent))
    est = DepthEstimator("fastdepth_nyu", device="cpu", backend="torch")
    assert est.checkpoint == str(imported)


def test_view_window_matches_the_training_focal():
    spec = get_spec("fastdepth_nyu")
    assert abs(spec.train_focal * 224 - TRAIN_FOCAL_PX) < 1e-9
    assert abs(TRAIN_FOCAL_PX - 199.1) < 0.05  # the README of the shared weights
    top, left, h, w = view_window(spec, (480, 640), 518.86)  # NYU: a window inside the frame
    assert (h, w) == (438, 584) and (top, left) == (21, 28)
    assert abs(518.86 / w - spec.train_focal) < 2e-3
    # 7-Scenes (fx 585): the ideal window (658 px) is wider than the frame: the largest 3:4
    # window that fits, and the focal correction does the rest
    assert view_window(spec, (480, 640), 585.0) == (0, 0, 480, 640)
    # a 16:9 camera keeps the training aspect
    top, left, h, w = view_window(spec, (720, 1280), 920.0)
    assert h == 720 and w == 960 and left == 160
    with pytest.raises(ValueError, match="fx"):
        view_window(spec, (480, 640), None)
    assert view_window(get_spec("fastdepth"), (480, 640), None) is None


def test_restore_pastes_the_window_back_with_nearest_border_values():
    spec = get_spec("fastdepth_nyu")
    out = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4) + 1
    prep = Prepared(torch.zeros(1, 3, 4, 4), window=(2, 3, 4, 4))
    full = restore(out, prep, (8, 10), spec)[0, 0]
    assert full.shape == (8, 10)
    assert torch.equal(full[2:6, 3:7], out[0, 0])
    assert torch.equal(full[0, 3:7], out[0, 0, 0]) and torch.equal(full[7, 3:7], out[0, 0, -1])
    assert torch.all(full[2:6, :3] == out[0, 0, :, :1]) and torch.all(full[2:6, 7:] == out[0, 0, :, -1:])
    assert full[0, 0] == out[0, 0, 0, 0] and full[-1, -1] == out[0, 0, -1, -1]


def test_focal_crop_prediction_covers_the_image_in_metres(imported, monkeypatch):
    from mono_depth_ros.inference.estimator import DepthEstimator
    monkeypatch.setenv("MONO_DEPTH_ROS_WEIGHTS", str(imported.parent))
    rgb = cv2.cvtColor(cv2.imread(str(NYU_MINI / "image_0.png")), cv2.COLOR_BGR2RGB)
    K = np.array([[518.86, 0, 325.58], [0, 519.47, 253.74], [0, 0, 1]])
    crop = DepthEstimator("fastdepth_nyu", device="cpu", backend="torch").predict(rgb, K)
    full = DepthEstimator("fastdepth_nyu", device="cpu", backend="torch",
                          view="full").predict(rgb, K)
    for pred in (crop, full):
        assert pred.depth.shape == (480, 640) and np.isfinite(pred.depth).all()
        assert 0.5 < np.median(pred.depth) < 10
    # the crop's outside takes its border's values: column 0 equals the window's first column
    assert np.allclose(crop.depth[100:300, 0], crop.depth[100:300, 28])
    assert not np.allclose(full.depth[100:300, 0], full.depth[100:300, 28])
    # a wider lens (same pixels, smaller fx) sees the same room nearer: depth scales with fx
    wide = DepthEstimator("fastdepth_nyu", device="cpu", backend="torch", view="full").predict(
        rgb, K * np.array([[0.5], [0.5], [1]]))
    assert np.allclose(wide.unmasked, 0.5 * full.unmasked, rtol=1e-5)


def test_shared_onnx_runs_as_model_onnx_with_the_project_spec(imported, monkeypatch):
    from mono_depth_ros.inference.estimator import DepthEstimator
    _need(ONNX_FILE)
    monkeypatch.setenv("MONO_DEPTH_ROS_WEIGHTS", str(imported.parent))
    rgb = cv2.cvtColor(cv2.imread(str(NYU_MINI / "image_3.png")), cv2.COLOR_BGR2RGB)
    K = np.array([[518.86, 0, 325.58], [0, 519.47, 253.74], [0, 0, 1]])
    ours = DepthEstimator("fastdepth_nyu", device="cpu", backend="torch").predict(rgb, K)
    onnx = DepthEstimator("onnx", checkpoint=str(ONNX_FILE), device="cpu")
    assert onnx.spec.preprocessing.view == "focal_crop"
    assert abs(onnx.spec.train_focal - get_spec("fastdepth_nyu").train_focal) < 1e-12
    assert np.nanmax(np.abs(onnx.predict(rgb, K).depth - ours.depth)) < 1e-3


def test_project_spec_is_tied_to_its_file(tmp_path):
    from mono_depth_ros.models.onnx_model import OnnxModel
    other = tmp_path / "fastdepth_224_float32.onnx"  # the name of the shared file, other bytes
    _export(create_model("fastdepth_nyu", encoder_widths=(8, 16, 24, 24, 32, 40, 48, 48, 48, 48,
                                                          48, 48, 64, 72),
                         decoder_widths=(40, 40, 24, 16, 8)), other)
    with pytest.raises(ValueError, match="sha256"):
        OnnxModel(str(other))


def test_import_weights_command(tmp_path):
    out = tmp_path / "fd.pt"
    done = subprocess.run([sys.executable, "-m", "mono_depth_ros.tools.cli", "import-weights",
                           str(_need(ONNX_FILE)), "--out", str(out)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.is_file() and "fastdepth_nyu" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "mono_depth_ros.tools.cli", "import-weights",
                          str(tmp_path / "missing.onnx")], capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and "not found" in bad.stderr and "Traceback" not in bad.stderr


def test_node_refuses_fastdepth_nyu_without_weights_and_runs_with_them(imported, tmp_path,
                                                                        monkeypatch):
    from mono_depth_ros.inference.node_config import build_estimator, validate_config
    monkeypatch.setenv("MONO_DEPTH_ROS_WEIGHTS", str(tmp_path))
    reasons = validate_config({"model": "fastdepth_nyu", "device": "cpu"})
    assert len(reasons) == 1 and "import-weights" in reasons[0]
    assert validate_config({"model": "fastdepth_nyu", "checkpoint": str(imported),
                            "device": "cpu"}) == []
    assert validate_config({"model": "fastdepth", "view": "sideways"})  # not a view
    monkeypatch.setenv("MONO_DEPTH_ROS_WEIGHTS", str(imported.parent))
    assert validate_config({"model": "fastdepth_nyu", "device": "cpu"}) == []
    est = build_estimator({"model": "fastdepth_nyu", "device": "cpu", "view": "full"})
    assert est.spec.preprocessing.view == "full"


def test_distilled_variant_loads_fastdepth_nyu_checkpoints(imported):
    from mono_depth_ros.models.registry import checkpoint_fits
    assert checkpoint_fits("fastdepth_nyu_distilled", "fastdepth_nyu")
    assert not checkpoint_fits("fastdepth", "fastdepth_nyu")
    assert not checkpoint_fits("fastdepth_nyu", "fastdepth_nyu_distilled")
    net = create_model("fastdepth_nyu_distilled", checkpoint=imported)
    assert net.spec.name == "fastdepth_nyu_distilled"
    assert net.spec.preprocessing.view == "focal_crop"
    with pytest.raises(ValueError, match="holds model"):
        create_model("fastdepth", checkpoint=imported)


def test_shipped_default_is_the_distilled_network():
    from mono_depth_ros.defaults import DEFAULT_MODEL
    from mono_depth_ros.inference.estimator import DepthEstimator, default_checkpoint
    assert DEFAULT_MODEL == "fastdepth_nyu_distilled"
    path = default_checkpoint(DEFAULT_MODEL)
    assert path is not None and path.parent.name == "models" and path.is_file()
    est = DepthEstimator(device="cpu")
    assert est.checkpoint == str(path) and not any("NOT meaningful" in w for w in est.warnings)
    assert est.spec.train_focal == pytest.approx(TRAIN_FOCAL_PX / 224)
    assert 1.0 < est.spec.train_median_depth < 3.0  # the constant evaluations show beside it


def test_flip_average_is_the_mean_of_image_and_mirror(imported, monkeypatch):
    from mono_depth_ros.inference.estimator import DepthEstimator
    monkeypatch.setenv("MONO_DEPTH_ROS_WEIGHTS", str(imported.parent))
    rgb = cv2.cvtColor(cv2.imread(str(NYU_MINI / "image_2.png")), cv2.COLOR_BGR2RGB)
    K = np.array([[518.86, 0, 320.0], [0, 519.47, 240.0], [0, 0, 1]])  # centred: a mirror too
    kw = dict(device="cpu", backend="torch", view="full")
    plain = DepthEstimator("fastdepth_nyu", **kw)
    flip = DepthEstimator("fastdepth_nyu", flip_average=True, **kw).predict(rgb, K)
    a = plain.predict(rgb, K).unmasked
    b = plain.predict(np.ascontiguousarray(rgb[:, ::-1]), K).unmasked[:, ::-1]
    want = 0.5 * (a + b)  # (resizing, then mirroring, differs from the reverse by rounding)
    assert np.median(np.abs(flip.unmasked - want) / want) < 2e-3
    assert not np.allclose(flip.unmasked, a, rtol=1e-3)


def test_shared_onnx_scores_as_the_imported_model_on_nyu_mini(imported, tmp_path, monkeypatch):
    from mono_depth_ros.data import open_dataset
    from mono_depth_ros.inference.estimator import DepthEstimator
    from mono_depth_ros.tools.evaluate import evaluate_model
    _need(ONNX_FILE)
    if not NYU_MINI.is_dir():
        pytest.skip(f"NYU-mini not found at {NYU_MINI}")
    monkeypatch.setenv("MONO_DEPTH_ROS_WEIGHTS", str(imported.parent))
    ds = open_dataset(NYU_MINI)
    scores = {}
    for name, kw in (("ours", {"model": "fastdepth_nyu", "backend": "torch"}),
                     ("onnx", {"model": "onnx", "checkpoint": str(ONNX_FILE)})):
        est = DepthEstimator(device="cpu", **kw)
        s = evaluate_model(est, ds, tmp_path / name, *ds.eval_range, 0, baseline="none")
        scores[name] = s["mean"]["abs_rel"]
    assert abs(scores["ours"] - scores["onnx"]) <= 0.005
    assert 0.15 < scores["ours"] < 0.3  # the shared README's 0.212 (centre crop)


def test_device_path_feeds_the_same_window(imported, monkeypatch):
    from mono_depth_ros.inference.estimator import DepthEstimator
    monkeypatch.setenv("MONO_DEPTH_ROS_WEIGHTS", str(imported.parent))
    rgb = cv2.cvtColor(cv2.imread(str(NYU_MINI / "image_5.png")), cv2.COLOR_BGR2RGB)
    K = np.array([[518.86, 0, 325.58], [0, 519.47, 253.74], [0, 0, 1]])
    host = DepthEstimator("fastdepth_nyu", device="cpu", backend="torch",
                          device_path="off").predict(rgb, K)
    dev = DepthEstimator("fastdepth_nyu", device="cpu", backend="torch", device_path="on"
                         ).predict(rgb, K, cloud_decimation=4)
    rel = np.abs(dev.depth - host.depth) / host.depth
    assert np.median(rel) < 0.01 and np.isfinite(dev.depth).all()
    assert dev.points.shape == (120, 160, 4)


def test_setup_imports_the_shared_weights_once(tmp_path, monkeypatch):
    import importlib.util
    _need(ONNX_FILE)
    spec = importlib.util.spec_from_file_location("boot", REPO_ROOT / "scripts" / "bootstrap.py")
    boot = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(boot)
    if not boot.venv_python().exists():
        pytest.skip("no project venv (.venv) to run the importer with")
    monkeypatch.setenv("MONO_DEPTH_ROS_WEIGHTS", str(tmp_path))
    boot.import_shared_weights()
    target = tmp_path / "fastdepth_nyu.pt"
    assert target.is_file()
    stamp = target.stat().st_mtime_ns
    boot.import_shared_weights()  # already there: left alone
    assert target.stat().st_mtime_ns == stamp


def test_the_network_is_fed_the_window_on_host_and_device():
    import dataclasses
    from mono_depth_ros.inference.device_path import DeviceFrame
    from mono_depth_ros.inference.preprocess import prepare
    spec = get_spec("fastdepth_nyu")
    full = spec.replace(preprocessing=dataclasses.replace(spec.preprocessing, view="full"))
    rgb = np.random.default_rng(3).integers(0, 255, (480, 640, 3), np.uint8)
    top, left, h, w = view_window(spec, (480, 640), 518.86)
    want = prepare(np.ascontiguousarray(rgb[top:top + h, left:left + w]), full, (224, 224),
                   torch.device("cpu")).x
    got = prepare(rgb, spec, (224, 224), torch.device("cpu"), 518.86)
    assert got.window == (top, left, h, w) and torch.equal(got.x, want)
    dev = DeviceFrame(torch.device("cpu"), 0.1, 10.0)
    on_dev = dev.prepare(dev.upload(rgb), spec, (224, 224), 518.86)
    assert on_dev.window == got.window
    assert float((on_dev.x - want).abs().max()) < 1.0 / 255 + 1e-6  # uint8 rounding on the host
