"""The side-by-side benchmark: one record per (model, backend, resolution), ratios to torch, the
publish stage through real rclpy publishers, and the linear fits of time against megapixels."""

import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ros_helpers import isolated_ros_env

from mono_depth_ros.tools import bench, cli
from mono_depth_ros.tools.bench import STAGES, format_scaling, scaling_fit

ROOT = Path(__file__).resolve().parents[1]
HAS_RCLPY = importlib.util.find_spec("rclpy") is not None


def test_bench_matrix_records_and_ratios(tmp_path):
    out = tmp_path / "bench.json"
    res = subprocess.run([sys.executable, "-m", "mono_depth_ros.tools.cli", "bench",
                          "--model", "fastdepth", "--backend", "torch,onnxruntime",
                          "--resolutions", "160x120,320x240", "--iters", "2",
                          "--cloud-decimation", "2", "--json-out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env=isolated_ros_env(tmp_path / "ros_log"))
    assert res.returncode == 0, res.stderr[-3000:]
    records = json.loads(out.read_text())
    keys = {(r["model"], r["backend"], tuple(r["resolution"])) for r in records}
    assert keys == {("fastdepth", b, s) for b in ("torch", "onnxruntime")
                    for s in ((160, 120), (320, 240))}
    for r in records:
        assert {"model", "backend", "resolution", "fps", "stages_ms"} <= set(r)
        assert r["cloud_decimation"] == 2 and r["fps"] > 0 and r["peak_rss_mb"] > 0
        assert set(r["stages_ms"]) >= {"decode", "preprocess", "inference", "postprocess",
                                       "cloud", "serialize", "total"}
        if r["backend"] == "torch":
            assert r["speedup_vs_torch"] == 1.0
        else:
            torch_total = next(x for x in records if x["backend"] == "torch"
                               and x["resolution"] == r["resolution"])["stages_ms"]["total"]["p50"]
            assert abs(r["speedup_vs_torch"] - torch_total / r["stages_ms"]["total"]["p50"]) < 1e-9
        if HAS_RCLPY:  # the publish stage ran (NaN only without rclpy)
            assert r["stages_ms"]["serialize"]["p50"] > 0
    assert "| fastdepth | onnxruntime | 320x240 /2 |" in res.stdout
    fits = json.loads((tmp_path / "bench.scaling.json").read_text())
    assert {(f["backend"], f["cloud_decimation"]) for f in fits} == {("torch", 2),
                                                                      ("onnxruntime", 2)}
    assert all(f["resolutions"] == [[160, 120], [320, 240]] for f in fits)
    assert "| fastdepth | onnxruntime | 2 | total |" in res.stdout


def test_bench_rejects_an_unknown_backend(tmp_path):
    res = subprocess.run([sys.executable, "-m", "mono_depth_ros.tools.cli", "bench",
                          "--backend", "torch,tensorflow", "--iters", "1"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300,
                         env=isolated_ros_env(tmp_path / "ros_log"))
    assert res.returncode == 2 and "tensorflow" in res.stderr


# --------------------------------------------------------------------------- linear fits
def _record(w, h, ms_per_stage, model="fastdepth", backend="torch", decimation=1):
    """A bench_matrix-like record whose p50 of each stage is ``ms_per_stage[stage](mpx)``."""
    mpx = w * h / 1e6
    stages = {s: {"p50": float(ms_per_stage.get(s, lambda m: 1.0)(mpx)), "p95": 0.0}
              for s in STAGES}
    stages["total"] = {"p50": sum(v["p50"] for v in stages.values()), "p95": 0.0}
    return {"model": model, "backend": backend, "resolution": [w, h],
            "cloud_decimation": decimation, "stages_ms": stages,
            "fps": 1000.0 / stages["total"]["p50"]}


RESOLUTIONS = ((1280, 720), (320, 240), (640, 480))  # not sorted: the fit sorts by pixels


def _fit(fits, stage, **group):
    return next(f for f in fits if f["stage"] == stage
                and all(f[k] == v for k, v in group.items()))


def test_scaling_fit_recovers_an_exactly_linear_slope_and_intercept():
    linear = {"cloud": lambda m: 0.4 + 9.0 * m, "serialize": lambda m: 0.1 + 2.5 * m,
              "inference": lambda m: 15.0}
    fits = scaling_fit([_record(w, h, linear) for w, h in RESOLUTIONS])
    assert {f["stage"] for f in fits} == set(STAGES) | {"total"}
    cloud = _fit(fits, "cloud")
    assert cloud["ms_per_mpx"] == pytest.approx(9.0) and cloud["intercept_ms"] == pytest.approx(0.4)
    assert cloud["r2"] == pytest.approx(1.0, abs=1e-12)
    assert cloud["max_rel_residual"] == pytest.approx(0.0, abs=1e-9)
    assert cloud["resolutions"] == [[320, 240], [640, 480], [1280, 720]]
    # total = 3 constant stages of 1 ms + 15 ms inference + the two linear ones
    total = _fit(fits, "total")
    assert total["ms_per_mpx"] == pytest.approx(11.5)
    assert total["intercept_ms"] == pytest.approx(3.0 + 15.0 + 0.5)
    inference = _fit(fits, "inference")  # constant: slope 0, R² 1 (the flat line is exact)
    assert inference["ms_per_mpx"] == pytest.approx(0.0, abs=1e-9)
    assert inference["r2"] == 1.0
    assert {"model", "backend", "cloud_decimation"} <= set(cloud)
    json.dumps(fits)  # plain JSON types


def test_scaling_fit_flags_a_quadratic_stage():
    quad = {"serialize": lambda m: 0.5 + 10.0 * m * m}
    fits = scaling_fit([_record(w, h, quad) for w, h in RESOLUTIONS])
    ser = _fit(fits, "serialize")
    assert ser["r2"] < 0.999
    assert ser["max_rel_residual"] > 0.05
    assert _fit(fits, "cloud")["r2"] == pytest.approx(1.0)


def test_scaling_fit_groups_by_model_backend_and_decimation():
    records = [_record(w, h, {"cloud": lambda m, d=d: 8.0 * m / d}, decimation=d)
               for d in (1, 4) for w, h in RESOLUTIONS]
    records += [_record(w, h, {"cloud": lambda m: 3.0 * m}, backend="onnxruntime")
                for w, h in RESOLUTIONS[:2]]
    records.append(_record(640, 480, {}, model="midas_small"))  # one resolution: no fit
    fits = scaling_fit(records)
    assert {(f["model"], f["backend"], f["cloud_decimation"]) for f in fits} == {
        ("fastdepth", "torch", 1), ("fastdepth", "torch", 4), ("fastdepth", "onnxruntime", 1)}
    assert _fit(fits, "cloud", cloud_decimation=1, backend="torch")["ms_per_mpx"] == \
        pytest.approx(8.0)
    assert _fit(fits, "cloud", cloud_decimation=4)["ms_per_mpx"] == pytest.approx(2.0)
    two = _fit(fits, "cloud", backend="onnxruntime")  # 2 resolutions: R² 1 by construction
    assert two["ms_per_mpx"] == pytest.approx(3.0) and two["r2"] == pytest.approx(1.0)
    assert len(two["resolutions"]) == 2


def test_scaling_fit_skips_a_stage_measured_as_nan():
    records = [_record(w, h, {"serialize": lambda m: float("nan")}) for w, h in RESOLUTIONS]
    for r in records:  # the total of the bench without rclpy leaves serialize out
        r["stages_ms"]["total"]["p50"] = 20.0 + 5.0 * r["resolution"][0] * r["resolution"][1] / 1e6
    stages = {f["stage"] for f in scaling_fit(records)}
    assert "serialize" not in stages and {"total", "cloud"} <= stages


def test_format_scaling_shows_total_and_the_steepest_stages():
    times = {"cloud": lambda m: 9.0 * m, "serialize": lambda m: 2.5 * m,
             "postprocess": lambda m: 1.0 * m}
    table = format_scaling(scaling_fit([_record(w, h, times, decimation=2)
                                        for w, h in RESOLUTIONS]), top_stages=2)
    lines = table.splitlines()
    assert lines[0] == ("| model | backend | decimation | stage | ms per megapixel | "
                        "intercept ms | R² |")
    assert lines[2].startswith("| fastdepth | torch | 2 | total | 12.50 |")
    assert lines[3].startswith("| fastdepth | torch | 2 | cloud | 9.00 | 0.00 | 1.000 |")
    assert lines[4].startswith("| fastdepth | torch | 2 | serialize | 2.50 |")
    assert "postprocess" not in table and "by construction" not in table
    two = format_scaling(scaling_fit([_record(w, h, times) for w, h in RESOLUTIONS[:2]]))
    assert "R² is 1 by construction" in two


def test_cli_matrix_writes_the_fits_beside_the_records(tmp_path, monkeypatch, capsys):
    """cmd_bench on a stubbed bench_pipeline: the records JSON keeps its layout, the fits go to
    <stem>.scaling.json and their table follows the matrix table."""
    def fake_pipeline(model, device, backend="auto", resolution=(640, 480), cloud_decimation=1,
                      **kwargs):
        slope = 20.0 if backend == "torch" else 10.0
        return _record(*resolution, {"cloud": lambda m: slope * m}, model=model,
                       backend=backend, decimation=cloud_decimation)

    monkeypatch.setattr(bench, "bench_pipeline", fake_pipeline)
    monkeypatch.setattr(cli, "_apply_ros_env", lambda: None)
    out = tmp_path / "run.json"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--model", "fastdepth", "--backend", "torch,onnxruntime",
                  "--resolutions", "320x240,640x480,1280x720", "--cloud-decimation", "3",
                  "--json-out", str(out)])
    assert exit_info.value.code == 0
    records = json.loads(out.read_text())
    assert isinstance(records, list) and len(records) == 6
    assert all({"model", "backend", "resolution", "stages_ms", "speedup_vs_torch"} <= set(r)
               for r in records)
    fits = json.loads((tmp_path / "run.scaling.json").read_text())
    assert cli.scaling_json_path(str(out)) == tmp_path / "run.scaling.json"
    assert _fit(fits, "cloud", backend="torch")["ms_per_mpx"] == pytest.approx(20.0)
    assert _fit(fits, "cloud", backend="onnxruntime")["ms_per_mpx"] == pytest.approx(10.0)
    assert all(f["cloud_decimation"] == 3 for f in fits)
    stdout = capsys.readouterr().out
    assert stdout.index("| model | backend | resolution |") < stdout.index("ms per megapixel |")
    assert "| fastdepth | torch | 3 | cloud | 20.00 |" in stdout


# --------------------------------------------------------------------------- publish stage
@pytest.fixture
def ros_env(tmp_path, monkeypatch):
    """This process's environment made isolated for ROS (restored after the test)."""
    if not HAS_RCLPY:
        pytest.skip("rclpy not installed")
    (tmp_path / "ros_log").mkdir()
    env = isolated_ros_env(tmp_path / "ros_log")
    for k in set(os.environ) - set(env):
        monkeypatch.delenv(k)
    for k, v in env.items():
        if os.environ.get(k) != v:
            monkeypatch.setenv(k, v)


def _spy_publishers(monkeypatch, fail=False):
    """Record every BenchPublisher and its publish calls (optionally raising on publish)."""
    from mono_depth_ros.ros import bench_publish
    made, calls = [], []
    init, publish = bench_publish.BenchPublisher.__init__, bench_publish.BenchPublisher.publish

    def spy_init(self, *a, **k):
        init(self, *a, **k)
        made.append(self)

    def spy_publish(self, depth, cloud):
        calls.append((depth.shape, cloud.height, cloud.width))
        if fail:
            raise RuntimeError("publish failed")
        publish(self, depth, cloud)

    monkeypatch.setattr(bench_publish.BenchPublisher, "__init__", spy_init)
    monkeypatch.setattr(bench_publish.BenchPublisher, "publish", spy_publish)
    return made, calls


def _no_serialize_message(monkeypatch):
    import rclpy.serialization

    def refuse(msg):
        raise AssertionError("the bench must publish, not call serialize_message")
    monkeypatch.setattr(rclpy.serialization, "serialize_message", refuse)


def test_serialize_stage_publishes_and_shuts_its_context_down(ros_env, monkeypatch):
    import rclpy
    _no_serialize_message(monkeypatch)
    made, calls = _spy_publishers(monkeypatch)
    res = bench.bench_pipeline("fastdepth", iters=2, warmup=1, resolution=(64, 48),
                               cloud_decimation=2)
    assert len(made) == 1 and len(calls) == 3  # one publish of depth + cloud per frame
    assert calls[0] == ((48, 64), 24, 32)
    assert math.isfinite(res["stages_ms"]["serialize"]["p50"])
    assert res["stages_ms"]["serialize"]["p50"] > 0
    assert not made[0].context.ok() and made[0].node is None
    assert not rclpy.ok()  # the global context was never initialised


def test_serialize_stage_shuts_its_context_down_on_errors(ros_env, monkeypatch):
    made, calls = _spy_publishers(monkeypatch, fail=True)
    with pytest.raises(RuntimeError, match="publish failed"):
        bench.bench_pipeline("fastdepth", iters=2, warmup=1, resolution=(64, 48))
    assert len(made) == 1 and len(calls) == 1
    assert not made[0].context.ok()


def test_serialize_stage_is_nan_without_rclpy(monkeypatch):
    monkeypatch.setitem(sys.modules, "mono_depth_ros.ros.bench_publish", None)  # import fails
    res = bench.bench_pipeline("fastdepth", iters=2, warmup=0, resolution=(64, 48))
    assert math.isnan(res["stages_ms"]["serialize"]["p50"])
    assert math.isfinite(res["stages_ms"]["total"]["p50"])


def test_bench_publisher_delivers_the_node_outputs(ros_env):
    """What the bench publishes is what the node publishes: 32FC1 depth/image and an organized
    PointCloud2 on points, reliable, from a node named mono_depth_ros_bench."""
    import numpy as np
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import Image, PointCloud2

    from mono_depth_ros.core.geometry import CloudBuilder
    from mono_depth_ros.ros.bench_publish import NODE_NAME, BenchPublisher
    from mono_depth_ros.ros.conversions import qos_profile

    depth = np.full((6, 8), 2.0, np.float32)
    rgb = np.zeros((6, 8, 3), np.uint8)
    cloud = CloudBuilder().build(depth, np.array([[5.0, 0, 4], [0, 5.0, 3], [0, 0, 1]]), rgb)
    ctx = Context()
    rclpy.init(args=[], context=ctx)
    got = {}
    try:
        listener = Node("bench_listener", context=ctx)
        qos = qos_profile("reliable", 5)
        listener.create_subscription(Image, "depth/image", lambda m: got.setdefault("depth", m),
                                     qos)
        listener.create_subscription(PointCloud2, "points",
                                     lambda m: got.setdefault("points", m), qos)
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(listener)
        with BenchPublisher() as pub:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (pub.depth_pub.get_subscription_count() < 1
                                                   or pub.points_pub.get_subscription_count() < 1):
                ex.spin_once(timeout_sec=0.1)
            assert NODE_NAME in listener.get_node_names()
            while time.monotonic() < deadline and len(got) < 2:
                pub.publish(depth, cloud)
                for _ in range(5):
                    ex.spin_once(timeout_sec=0.1)
        assert not pub.context.ok()
        assert got["depth"].encoding == "32FC1"
        assert (got["depth"].height, got["depth"].width) == (6, 8)
        assert np.frombuffer(bytes(got["depth"].data), np.float32).tolist() == [2.0] * 48
        assert (got["points"].height, got["points"].width) == (cloud.height, cloud.width)
        assert bytes(got["points"].data) == bytes(cloud.data)
        ex.shutdown()
        listener.destroy_node()
    finally:
        ctx.try_shutdown()


# --------------------------------------------------------------------------- CLI input errors
def test_cli_input_errors_are_one_line_and_exit_2_bugs_keep_their_traceback(tmp_path, capsys,
                                                                            monkeypatch, data_dir):
    from mono_depth_ros.tools import cli
    monkeypatch.delenv(cli.TRACEBACK_ENV, raising=False)
    with pytest.raises(SystemExit) as stop:
        cli.main(["evaluate", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err.startswith("mono-depth-ros evaluate: error: ") and "missing" in err
    assert "Traceback" not in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as stop:
        cli.main(["evaluate", "--model", "no_such_net", "--data",
                  str(data_dir / "kitti-raw-frame"), "--out", str(tmp_path / "o")])
    assert stop.value.code == 2 and "unknown model 'no_such_net'" in capsys.readouterr().err
    for bad, words in (("640x-1", "must be positive"), ("64Ox480", "must be WxH")):
        with pytest.raises(SystemExit) as stop:
            cli.main(["bench", "--resolutions", f"320x240,{bad}", "--iters", "1"])
        assert stop.value.code == 2 and words in capsys.readouterr().err, bad
    # the traceback on request, and a bug (not an input error) is never turned into a message
    monkeypatch.setenv(cli.TRACEBACK_ENV, "1")
    with pytest.raises(ValueError):
        cli.main(["evaluate", "--data", str(tmp_path / "missing")])
    monkeypatch.delenv(cli.TRACEBACK_ENV)

    def broken(args):
        raise RuntimeError("a bug")
    monkeypatch.setattr(cli, "COMMANDS", [(n, h, a, broken if n == "models" else f)
                                          for n, h, a, f in cli.COMMANDS])
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["models"])
