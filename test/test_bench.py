"""The side-by-side benchmark: one record per (model, backend, resolution), ratios to torch."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_matrix_records_and_ratios(tmp_path):
    out = tmp_path / "bench.json"
    res = subprocess.run([sys.executable, "-m", "mono_depth_ros.tools.cli", "bench",
                          "--model", "fastdepth", "--backend", "torch,onnxruntime",
                          "--resolutions", "160x120,320x240", "--iters", "2",
                          "--cloud-decimation", "2", "--json-out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
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
    assert "| fastdepth | onnxruntime | 320x240 /2 |" in res.stdout


def test_bench_rejects_an_unknown_backend():
    res = subprocess.run([sys.executable, "-m", "mono_depth_ros.tools.cli", "bench",
                          "--backend", "torch,tensorflow", "--iters", "1"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "tensorflow" in res.stderr
