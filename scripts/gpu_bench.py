"""The GPU benchmark of issue 15 as one prepared run (for a session that is lent a GPU machine).

Runs ``tools.bench.bench_matrix`` (the code behind ``mono-depth-ros bench``) on CUDA for
``fastdepth`` (shipped weights) and Depth Anything V2 Metric Indoor Small (random weights in
the real architecture: timing only, nothing is downloaded; metric, so its frames end in a cloud
like fastdepth's), backends ``torch`` (eager) and ``cuda_graph``,
fp32 and fp16, at 320x240, 640x480 and 1280x720, plus ``device_path`` on/off at 640x480; writes
one JSON per model (environment, records of every precision, linear fits, fp16/bf16 depth
difference against fp32) to ``--out``.

The device machine has its own PyTorch but not every package of ours; before the run, here::

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \\
        --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \\
        -d .whl simplejpeg==1.9.0

and on the machine (``run`` with ``carry: [".whl"]``, ``timeout_s`` 480)::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \\
    PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 python3 scripts/gpu_bench.py --out $OUT

``--device cpu --iters 2`` runs the same script here as a smoke test (no cuda_graph, fp32).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mono_depth_ros.tools.bench import bench_matrix, format_matrix, format_scaling, scaling_fit  # noqa: E402

RESOLUTIONS = [(320, 240), (640, 480), (1280, 720)]


def da_v2_small_random(folder: Path) -> Path:
    """A save_pretrained folder with Depth Anything V2 Metric Indoor Small's architecture (DINOv2-S backbone,
    DPT head of the hub config) and random weights, with its processor (518, multiple of 14)."""
    import transformers
    backbone = transformers.Dinov2Config(
        hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536,
        patch_size=14, image_size=518, out_indices=[3, 6, 9, 12], reshape_hidden_states=False)
    cfg = transformers.DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=384, neck_hidden_sizes=[48, 96, 192, 384],
        fusion_hidden_size=64, head_hidden_size=32, depth_estimation_type="metric",
        max_depth=20)
    torch.manual_seed(0)
    transformers.DepthAnythingForDepthEstimation(cfg).save_pretrained(folder)
    transformers.DPTImageProcessor(
        size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14,
        resample=3, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]
    ).save_pretrained(folder)
    return folder


def precision_parity(name: str, ckpt, device: str, image) -> dict:
    """Median and 99th-percentile relative depth difference of fp16 / bf16 against fp32 (same
    frame, ``cuda_graph`` backend, device path on), where both are valid."""
    import numpy as np

    from mono_depth_ros.inference.estimator import DepthEstimator
    from mono_depth_ros.tools.bench import _frame
    rgb = _frame(image)
    K = np.array([[585.0, 0, 320.0], [0, 585.0, 240.0], [0, 0, 1]])
    ref = DepthEstimator(name, checkpoint=ckpt, device=device, backend="cuda_graph")
    d32 = ref.predict(rgb, K).depth.copy()
    out = {}
    for precision in ("fp16", "bf16"):
        est = DepthEstimator(name, checkpoint=ckpt, device=device, precision=precision,
                             backend="cuda_graph")
        d = est.predict(rgb, K).depth
        ok = np.isfinite(d) & np.isfinite(d32)
        rel = np.abs(d[ok] - d32[ok]) / d32[ok]
        out[precision] = {"median_rel": float(np.median(rel)), "p99_rel": float(np.percentile(rel, 99)),
                          "valid_fraction_changed": float((np.isfinite(d) != np.isfinite(d32)).mean())}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--image", default=None, help="an image file (default: noise)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cuda = args.device.startswith("cuda")
    env = {"python": platform.python_version(), "torch": torch.__version__,
           "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
           "gpu": torch.cuda.get_device_name(0) if cuda else None,
           "cpu_threads": torch.get_num_threads(), "started": time.strftime("%F %T")}
    try:
        import onnxruntime
        env["onnxruntime"] = onnxruntime.__version__
        env["ort_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        env["onnxruntime"] = None
    print(json.dumps(env), flush=True)
    backends = ["torch", "cuda_graph"] if cuda else ["torch"]
    precisions = ["fp32", "fp16"] if cuda else ["fp32"]
    with tempfile.TemporaryDirectory() as tmp:
        models = {"fastdepth": None,
                  "depth_anything_v2_metric_indoor_small": str(da_v2_small_random(Path(tmp) / "da2s"))}
        for name, ckpt in models.items():
            result = {"env": env, "records": [], "scaling": [], "precision_parity": None}
            if cuda:
                try:
                    result["precision_parity"] = precision_parity(name, ckpt, args.device,
                                                                  args.image)
                    print(f"{name} vs fp32: {json.dumps(result['precision_parity'])}", flush=True)
                except Exception as exc:
                    print(f"{name} parity: {type(exc).__name__}: {exc}", flush=True)
            for precision in precisions:
                t0 = time.time()
                try:
                    recs = bench_matrix([name], backends, RESOLUTIONS, args.device,
                                        precision=precision, iters=args.iters, image=args.image,
                                        checkpoint=ckpt)
                    fits = scaling_fit(recs)
                    # the device path's share: the same frames with host pre/post-processing
                    recs += [dict(r, device_path="off") for r in bench_matrix(
                        [name], backends[:1], [(640, 480)], args.device, precision=precision,
                        iters=args.iters, image=args.image, checkpoint=ckpt, device_path="off")]
                except Exception as exc:  # keep the other runs' results
                    print(f"{name} {precision}: {type(exc).__name__}: {exc}", flush=True)
                    continue
                result["records"] += recs
                result["scaling"] += [dict(f, precision=precision) for f in fits]
                # one file per model (the device tool returns at most 8 files)
                (out / f"gpu_{name}.json").write_text(json.dumps(result, indent=1))
                print(f"\n## {name} {precision} ({time.time() - t0:.0f} s)\n"
                      + format_matrix(recs) + "\n\n" + format_scaling(fits), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
