"""Latency benchmark of the node's pipeline at 640x480 (``mono-depth-ros bench``).

Stages, each timed per frame (p50 / p95 in ms): ``decode`` (Image message -> RGB array),
``preprocess``, ``inference``, ``postprocess`` (resize + metric conversion + range mask),
``cloud`` (organized XYZRGB build) and ``serialize``. ``fps`` is 1000 / p50 of the per-frame
total. Speed targets are checked here, never in timed tests.

``serialize`` is the node's publish cost (when rclpy is installed, else NaN): the depth Image
(32FC1) and the PointCloud2 are built with :mod:`mono_depth_ros.ros.conversions` and published
through real rclpy publishers (reliable, keep-last 1, ``depth/image`` and ``points`` of a node
``mono_depth_ros_bench`` in a private ``rclpy.Context``, shut down when the bench ends, also on
errors; :mod:`mono_depth_ros.ros.bench_publish`). ``publish`` converts the message and
serialises it into the middleware, as in the node; nothing subscribes, so nothing is delivered.
The stage keeps its name ``serialize`` (earlier versions timed
``rclpy.serialization.serialize_message``, which grows superlinearly with the cloud's size,
unlike ``publish``). Discovery traffic of that node goes to the usual ``ROS_DOMAIN_ID``: set
``ROS_DOMAIN_ID`` / ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` to keep it off a shared
network. The CLI gives it the node's DDS setup (:mod:`mono_depth_ros.core.dds_env`).

:func:`scaling_fit` fits each stage's p50 linearly against megapixels over the resolutions of a
:func:`bench_matrix` run; :func:`format_scaling` prints those fits.
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
from ..defaults import DEFAULT_MODEL

STAGES = ("decode", "preprocess", "inference", "postprocess", "cloud", "serialize")


def _frame(image: Optional[str]) -> np.ndarray:
    if image:
        img = cv2.imread(image, cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(image)
        return cv2.cvtColor(cv2.resize(img, (640, 480)), cv2.COLOR_BGR2RGB)
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)


def _publisher():
    """A :class:`~mono_depth_ros.ros.bench_publish.BenchPublisher` (private rclpy context), or
    None when rclpy / the message packages do not import."""
    try:
        from ..ros.bench_publish import BenchPublisher
    except ImportError:
        return None
    return BenchPublisher()


def bench_pipeline(model: str = DEFAULT_MODEL, device: str = "cpu", precision: str = "fp32",
                   iters: int = 50, warmup: int = 5, image: Optional[str] = None,
                   checkpoint: Optional[str] = None, resolution: Tuple[int, int] = (640, 480),
                   cloud_decimation: int = 1, **estimator_kwargs) -> dict:
    """Time every stage of the node's per-frame work for ``iters`` frames: decode of an rgb8
    Image, :class:`FramePipeline` (preprocess, inference, postprocess, XYZRGB cloud) and the
    publish of the depth Image and PointCloud2 through rclpy publishers (stage ``serialize``,
    when rclpy imports; see the module docstring).

    Args:
        resolution: ``(width, height)`` of the camera image in pixels (the network input stays
            the model's); K is the 7-Scenes camera scaled to it.
        cloud_decimation: keep every N-th pixel of the cloud, as the node parameter.

    Returns:
        dict with ``model``, ``device``, ``backend``, ``input_size``, ``resolution`` ``[W, H]``,
        ``cloud_decimation``, ``stages_ms`` (per stage ``{"p50", "p95"}`` in ms, and ``total``;
        ``serialize`` NaN without rclpy), ``fps`` (frames/s, end to end from the p50 total)
        and ``peak_rss_mb`` (the process's peak so far, MiB); on CUDA also ``peak_cuda_mb``
        (torch's peak allocated device memory during this run, MiB).
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
    if est.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(est.device)
    rows: Dict[str, List[float]] = {s: [] for s in STAGES + ("total",)}
    pub = _publisher()
    try:
        for i in range(warmup + iters):
            t0 = time.perf_counter()
            frame = image_msg_to_rgb(msg)
            t1 = time.perf_counter()
            res = pipeline.process(frame, K, ("depth", "points"))
            t3 = time.perf_counter()
            if pub is not None and res.depth is not None:  # relative models publish no metres
                pub.publish(res.depth, res.points)
            t4 = time.perf_counter()
            if i < warmup:
                continue
            rows["decode"].append(1e3 * (t1 - t0))
            for k in ("preprocess", "inference", "postprocess", "cloud"):
                rows[k].append(res.timings[k])
            rows["serialize"].append(1e3 * (t4 - t3) if pub is not None else float("nan"))
            rows["total"].append(1e3 * (t4 - t0))
    finally:
        if pub is not None:
            pub.close()
    stats = {k: {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95))}
             for k, v in rows.items()}
    return {"model": model, "device": str(est.device), "backend": est.backend,
            "precision": precision,
            "input_size": list(est.input_size), "resolution": [int(w), int(h)],
            "cloud_decimation": int(cloud_decimation),
            "torch_threads": torch.get_num_threads(), "iters": iters, "stages_ms": stats,
            "fps": 1000.0 / stats["total"]["p50"],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            **({"peak_cuda_mb": torch.cuda.max_memory_allocated(est.device) / 2**20}
               if est.device.type == "cuda" else {})}


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


def _linear_fit(x: np.ndarray, y: np.ndarray) -> Tuple[float, float, float, float]:
    """Least squares ``y = slope * x + intercept``: (slope, intercept, r2, max_rel_residual)."""
    a = np.stack([x, np.ones_like(x)], axis=1)
    (slope, intercept), *_ = np.linalg.lstsq(a, y, rcond=None)
    resid = y - (slope * x + intercept)
    ss_res, ss_tot = float(resid @ resid), float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0  # constant y: the flat line is exact
    measured = y != 0
    rel = np.abs(resid[measured]) / np.abs(y[measured])
    return float(slope), float(intercept), r2, float(rel.max()) if rel.size else float("nan")


def scaling_fit(records: List[dict]) -> List[dict]:
    """Linear scaling with pixels: per (model, backend, cloud_decimation) group of
    :func:`bench_matrix` records with at least 2 resolutions (2 distinct pixel counts), a
    least-squares fit of the per-frame p50 time (ms) against the image size in megapixels
    (``width * height / 1e6``), for ``total`` and for every stage of :data:`STAGES`.

    A stage whose p50 is missing or not finite in any record of the group (``serialize``
    without rclpy) is left out for that group.

    Returns:
        one dict per (group, stage), groups in the order of their first record, ``total``
        first then :data:`STAGES`: ``model``, ``backend``, ``cloud_decimation``, ``stage``,
        ``ms_per_mpx`` (slope, ms per megapixel), ``intercept_ms`` (ms at zero pixels),
        ``r2`` (``1 - SS_res / SS_tot``; 1.0 when the times are all equal), ``max_rel_residual``
        (largest ``|measured - fit| / measured`` over the records, a fraction; records measured
        at 0 ms are skipped) and ``resolutions`` (the group's distinct ``[W, H]``, fewest pixels
        first). With exactly 2 resolutions the line passes through both points, so ``r2`` is
        1.0 and ``max_rel_residual`` 0 by construction: they say nothing about linearity then.
    """
    groups: Dict[tuple, List[dict]] = {}
    for rec in records:
        key = (rec["model"], rec["backend"], int(rec.get("cloud_decimation", 1)))
        groups.setdefault(key, []).append(rec)
    fits = []
    for (model, backend, decimation), recs in groups.items():
        if len({r["resolution"][0] * r["resolution"][1] for r in recs}) < 2:
            continue
        recs = sorted(recs, key=lambda r: r["resolution"][0] * r["resolution"][1])
        mpx = np.array([r["resolution"][0] * r["resolution"][1] / 1e6 for r in recs])
        resolutions = []
        for r in recs:
            if list(r["resolution"]) not in resolutions:
                resolutions.append([int(v) for v in r["resolution"]])
        for stage in ("total",) + STAGES:
            ms = np.array([r["stages_ms"].get(stage, {}).get("p50", float("nan")) for r in recs],
                          dtype=float)
            if not np.all(np.isfinite(ms)):
                continue
            slope, intercept, r2, max_rel = _linear_fit(mpx, ms)
            fits.append({"model": model, "backend": backend, "cloud_decimation": decimation,
                         "stage": stage, "ms_per_mpx": slope, "intercept_ms": intercept,
                         "r2": r2, "max_rel_residual": max_rel, "resolutions": resolutions})
    return fits


def format_scaling(fits: List[dict], top_stages: int = 2) -> str:
    """Markdown table of :func:`scaling_fit` results: per group the ``total`` row, then the
    ``top_stages`` stages with the largest slope (ms per megapixel), with intercept (ms) and R².
    A note follows when a group has only 2 resolutions (R² = 1 by construction)."""
    lines = ["| model | backend | decimation | stage | ms per megapixel | intercept ms | R² |",
             "|---|---|---|---|---|---|---|"]
    groups: Dict[tuple, List[dict]] = {}
    for f in fits:
        groups.setdefault((f["model"], f["backend"], f["cloud_decimation"]), []).append(f)
    two_points = False
    for (model, backend, decimation), rows in groups.items():
        stages = sorted((f for f in rows if f["stage"] != "total"), key=lambda f: -f["ms_per_mpx"])
        for f in [f for f in rows if f["stage"] == "total"] + stages[:top_stages]:
            slope, intercept = (round(f[k], 2) + 0.0 for k in ("ms_per_mpx", "intercept_ms"))
            lines.append(f"| {model} | {backend} | {decimation} | {f['stage']} | "
                         f"{slope:.2f} | {intercept:.2f} | {f['r2']:.3f} |")  # no "-0.00"
        two_points |= len(rows[0]["resolutions"]) == 2
    if two_points:
        lines.append("\nR² is 1 by construction for a group fitted on 2 resolutions.")
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
