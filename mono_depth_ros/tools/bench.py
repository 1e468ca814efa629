"""Latency benchmark of the node's pipeline at 640x480 (``mono-depth-ros bench``).

Stages, each timed per frame (p50 / p95 in ms): ``decode`` (Image message -> RGB array),
``preprocess``, ``inference``, ``postprocess`` (resize + metric conversion + range mask),
``cloud`` (organized XYZRGB build) and ``serialize`` (depth Image + PointCloud2 messages to CDR
bytes, when rclpy is installed). ``fps`` is 1000 / p50 of the per-frame total. Speed targets
are checked here, never in timed tests.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from ..core.image_codec import array_to_image_fields, image_msg_to_rgb
from ..core.geometry import scale_intrinsics
from ..core.pipeline import FramePipeline, PipelineConfig
from ..models import create_model, get_spec, list_models
from ..models.registry import loads_checkpoint
from ..inference.estimator import DepthEstimator

STAGES = ("decode", "preprocess", "inference", "postprocess", "cloud", "serialize")


def _frame(image: Optional[str]) -> np.ndarray:
    if image:
        img = cv2.imread(image, cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(image)
        return cv2.cvtColor(cv2.resize(img, (640, 480)), cv2.COLOR_BGR2RGB)
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)


def _serializer():
    try:
        from rclpy.serialization import serialize_message
        from std_msgs.msg import Header

        from ..ros.conversions import make_cloud, make_image
    except ImportError:
        return None

    def ser(depth, cloud):
        h = Header(frame_id="camera_optical_frame")
        serialize_message(make_image(h, depth, "32FC1"))
        serialize_message(make_cloud(h, cloud))
    return ser


def bench_pipeline(model: str = "fastdepth", device: str = "cpu", precision: str = "fp32",
                   iters: int = 50, warmup: int = 5, image: Optional[str] = None,
                   checkpoint: Optional[str] = None, resolution: Tuple[int, int] = (640, 480),
                   cloud_decimation: int = 1, **estimator_kwargs) -> dict:
    """Time every stage of the node's per-frame work for ``iters`` frames: decode of an rgb8
    Image, :class:`FramePipeline` (preprocess, inference, postprocess, XYZRGB cloud) and CDR
    serialisation of the depth Image and PointCloud2 (when rclpy imports).

    Args:
        resolution: ``(width, height)`` of the camera image (the network input stays the
            model's); K is the 7-Scenes camera scaled to it.
        cloud_decimation: keep every N-th pixel of the cloud, as the node parameter.

    Returns:
        dict with ``model``, ``device``, ``backend``, ``input_size``, ``resolution`` ``[W, H]``,
        ``cloud_decimation``, ``stages_ms`` (per stage ``{"p50", "p95"}`` and ``total``),
        ``fps`` (end to end from the p50 total) and ``peak_rss_mb`` (the process's peak so far).
    """

    class _Msg:  # a sensor_msgs/Image stand-in: decode cost is the same as for rclpy messages
        pass

    w, h = resolution
    rgb = cv2.resize(_frame(image), (w, h), interpolation=cv2.INTER_AREA)
    msg = _Msg()
    for k, v in array_to_image_fields(rgb, "rgb8").items():
        setattr(msg, k, v)
    est = DepthEstimator(model, checkpoint=checkpoint, device=device, precision=precision,
                         **estimator_kwargs)
    K = scale_intrinsics(np.array([[585.0, 0, 320.0], [0, 585.0, 240.0], [0, 0, 1]]),
                         w / 640, h / 480)
    # the node's per-frame code: XYZRGB cloud at the image resolution / decimation
    pipeline = FramePipeline(est, PipelineConfig(cloud_decimation=cloud_decimation))
    ser = _serializer()
    rows: Dict[str, List[float]] = {s: [] for s in STAGES + ("total",)}
    for i in range(warmup + iters):
        t0 = time.perf_counter()
        frame = image_msg_to_rgb(msg)
        t1 = time.perf_counter()
        res = pipeline.process(frame, K, ("depth", "points"))
        t3 = time.perf_counter()
        if ser is not None and res.depth is not None:  # relative models publish no metres
            ser(res.depth, res.points)
        t4 = time.perf_counter()
        if i < warmup:
            continue
        rows["decode"].append(1e3 * (t1 - t0))
        for k in ("preprocess", "inference", "postprocess", "cloud"):
            rows[k].append(res.timings[k])
        rows["serialize"].append(1e3 * (t4 - t3) if ser is not None else float("nan"))
        rows["total"].append(1e3 * (t4 - t0))
    stats = {k: {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95))}
             for k, v in rows.items()}
    return {"model": model, "device": str(est.device), "backend": est.backend,
            "precision": precision,
            "input_size": list(est.input_size), "resolution": [int(w), int(h)],
            "cloud_decimation": int(cloud_decimation),
            "torch_threads": torch.get_num_threads(), "iters": iters, "stages_ms": stats,
            "fps": 1000.0 / stats["total"]["p50"],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def bench_matrix(models: Sequence[str], backends: Sequence[str],
                 resolutions: Sequence[Tuple[int, int]], device: str = "cpu", **kwargs
                 ) -> List[dict]:
    """:func:`bench_pipeline` for every (model, backend, resolution), in one process and one
    run, so the ratios compare like with like on a noisy machine.

    Each record gains ``speedup_vs_torch``: PyTorch eager's p50 total of the same model and
    resolution divided by this record's (present when ``"torch"`` is among ``backends``).
    """
    records = [bench_pipeline(m, device, backend=b, resolution=r, **kwargs)
               for m in models for r in resolutions for b in backends]
    for rec in records:
        base = [x for x in records if x["model"] == rec["model"] and x["backend"] == "torch"
                and x["resolution"] == rec["resolution"]]
        if base:
            rec["speedup_vs_torch"] = base[0]["stages_ms"]["total"]["p50"] / rec["stages_ms"]["total"]["p50"]
    return records


def format_matrix(records: List[dict]) -> str:
    """Markdown table of :func:`bench_matrix` records: per-stage p50 (ms), fps, speed-up."""
    stages = [s for s in STAGES + ("total",)]
    head = ("| model | backend | resolution | " + " | ".join(stages)
            + " | frames/s | vs torch | ms per megapixel |")
    lines = [head, "|" + "---|" * (len(stages) + 6)]
    for r in records:
        st = r["stages_ms"]
        mp = r["resolution"][0] * r["resolution"][1] / 1e6
        lines.append(f"| {r['model']} | {r['backend']} | {r['resolution'][0]}x{r['resolution'][1]}"
                     + (f" /{r['cloud_decimation']}" if r.get("cloud_decimation", 1) > 1 else "")
                     + " | " + " | ".join(f"{st[s]['p50']:.1f}" for s in stages)
                     + f" | {r['fps']:.1f} | {r.get('speedup_vs_torch', float('nan')):.2f}"
                     + f" | {st['total']['p50'] / mp:.1f} |")
    return "\n".join(lines)


def _p50_ms(run, x, iters: int, dev: torch.device) -> float:
    times = []
    for i in range(iters + 2):  # two warm-up calls (the ONNX export happens in the first)
        t = time.perf_counter()
        run(x)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(1e3 * (time.perf_counter() - t))
    return float(np.median(times))


def model_table(device: str = "cpu", iters: int = 10, models: Optional[List[str]] = None,
                backends: Sequence[str] = ("torch",), checkpoints: Optional[Dict[str, str]] = None
                ) -> List[dict]:
    """Parameters, GFLOPs at the spec input size and p50 forward latency per backend of every
    model (``models`` default: every model that builds without external weights; Hugging Face
    and ONNX models need ``checkpoints[name]``).

    GFLOPs are counted with ``torch.utils.flop_counter`` (multiply-adds x 2) for batch 1. Each
    backend's column is ``<device>_<backend>_p50_ms`` (forward only, float32, same input).
    """
    from torch.utils.flop_counter import FlopCounterMode

    from ..inference.backends import make_runner
    dev = torch.device(device)
    checkpoints = checkpoints or {}
    names = models or [n for n in list_models() if not loads_checkpoint(n)]
    out = []
    for name in names:
        spec = get_spec(name)
        net = create_model(name, checkpoint=checkpoints.get(name)).to(dev).eval()
        spec = net.spec
        c = 3 + (spec.num_classes if spec.needs_semantic_input else 0)
        x = torch.rand(1, c, *spec.input_size, device=dev)
        row = {"model": name, "params_M": sum(p.numel() for p in net.parameters()) / 1e6,
               "input": list(spec.input_size)}
        with torch.inference_mode():
            counter = FlopCounterMode(display=False)
            with counter:
                net(x)
            row["gflops"] = counter.get_total_flops() / 1e9
            for backend in backends:
                row[f"{dev.type}_{backend}_p50_ms"] = _p50_ms(make_runner(backend, net, dev), x,
                                                              iters, dev)
        out.append(row)
        del net
    return out


def format_model_table(rows: List[dict], device: str, backends: Sequence[str]) -> str:
    """Markdown table of :func:`model_table` rows, one latency column per backend."""
    dev = device.split(":")[0]
    head = "| model | params (M) | input | GFLOPs | " + " | ".join(
        f"{dev} {b} p50 (ms)" for b in backends) + " |\n|---|---|---|---|" + "---|" * len(backends)
    lines = [head]
    for r in rows:
        lines.append(f"| {r['model']} | {r['params_M']:.2f} | {r['input'][0]}x{r['input'][1]} | "
                     f"{r['gflops']:.2f} | " + " | ".join(
                         f"{r[f'{dev}_{b}_p50_ms']:.1f}" for b in backends) + " |")
    return "\n".join(lines)


def write_json(obj, path: Optional[str]) -> str:
    """Dump ``obj`` as JSON (to ``path`` too when given) and return the text."""
    text = json.dumps(obj, indent=2)
    if path:
        Path(path).write_text(text)
    return text
