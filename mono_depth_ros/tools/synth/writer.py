"""Sequences on disk: render streets chunk by chunk (in worker processes) and write the
SYNTHIA-style layout read by :class:`mono_depth_ros.data.synthia.Synthia`."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from .render import (CLASS_NAMES, DEPTH_SCALE, GENERATOR_VERSION, RATE_HZ, SKY_DEPTH,
                     STEREO_BASELINE, stereo_pose, street_length)
from .scene import StreetScene


# ----------------------------------------------------------------------------- sequences
def scene_seed(seed: int, sequence: int) -> int:
    """Seed of street ``sequence`` of a run with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(sequence)]).generate_state(1)[0])


def encode_depth(depth: np.ndarray) -> np.ndarray:
    """float32 m -> uint16 centimetres (``round(depth / DEPTH_SCALE)``, clipped to 1..65535)."""
    return np.clip(np.round(np.asarray(depth, np.float64) / DEPTH_SCALE), 1, 65535).astype(np.uint16)


_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1]


def _write_png(path: Path, img: np.ndarray) -> None:
    if not cv2.imwrite(str(path), img, _PNG):
        raise OSError(f"cannot write {path}")


def _fmt_matrix(M: np.ndarray) -> str:
    return "\n".join(" ".join(f"{v:.10g}" for v in row) for row in np.asarray(M)) + "\n"


def _render_chunk(out: str, seed: int, k: int, t0: int, t1: int, n: int, width: int, height: int,
                  stereo: bool, baseline: float, sequence_length: int, textures: bool) -> dict:
    """Render frames ``t0 .. t1 - 1`` of sequence ``k`` (``n`` frames) into ``out/seq_kkkk``;
    the chunk with ``t0 == 0`` also writes the sequence files. Returns timing / class stats."""
    seq_dir = Path(out) / f"seq_{k:04d}"
    names = ("RGB", "Depth", "Labels", "Pose") + (("RGB_right",) if stereo else ())
    dirs = {d: seq_dir / d for d in names}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    class_frames = np.zeros(len(CLASS_NAMES), np.int64)
    class_pixels = np.zeros(len(CLASS_NAMES), np.int64)
    render_s = 0.0
    t_start = time.perf_counter()
    scene = StreetScene(scene_seed(seed, k), width, height, street_length(sequence_length),
                        textures=textures)
    build_s = time.perf_counter() - t_start
    try:
        K = scene.K
        if t0 == 0:
            fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
            (seq_dir / "intrinsics.txt").write_text(f"{fx:.10g} {fy:.10g} {cx:.10g} {cy:.10g}\n")
            info = dict(scene.describe(), generator_version=GENERATOR_VERSION, run_seed=int(seed),
                        sequence=k, frames=n, rate_hz=RATE_HZ,
                        depth_scale=DEPTH_SCALE, sky_depth_m=SKY_DEPTH, classes=list(CLASS_NAMES),
                        stereo=bool(stereo))
            if stereo:
                info["baseline_m"] = float(baseline)
                (seq_dir / "baseline.txt").write_text(f"{float(baseline):.10g}\n")
            (seq_dir / "scene.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
        k_text = _fmt_matrix(K)
        pending: list = []
        with ThreadPoolExecutor(max_workers=1) as pool:  # PNG encoding overlaps rendering
            for t, pose in enumerate(scene.trajectory(t1)[t0:], start=t0):
                tr = time.perf_counter()
                rgb, depth, labels, _ = scene.render(pose)
                right = scene.render_rgb(stereo_pose(pose, baseline)) if stereo else None
                render_s += time.perf_counter() - tr
                counts = np.bincount(labels.ravel(), minlength=len(CLASS_NAMES))
                class_pixels += counts
                class_frames += counts > 0
                stem = f"{t:06d}"
                (dirs["RGB"] / f"{stem}.K.txt").write_text(k_text)
                (dirs["Pose"] / f"{stem}.txt").write_text(_fmt_matrix(pose))
                jobs = [(dirs["RGB"] / f"{stem}.png", rgb[..., ::-1].copy()),
                        (dirs["Depth"] / f"{stem}.png", encode_depth(depth)),
                        (dirs["Labels"] / f"{stem}.png", labels)]
                if right is not None:
                    jobs.append((dirs["RGB_right"] / f"{stem}.png", right[..., ::-1].copy()))
                pending.extend(pool.submit(_write_png, path, img) for path, img in jobs)
                while len(pending) > 32:  # bounds memory; raises write errors
                    pending.pop(0).result()
            for fut in pending:
                fut.result()
    finally:
        scene.close()
    return dict(build_s=build_s, render_s=render_s, frames=t1 - t0,
                class_frames=class_frames, class_pixels=class_pixels)


def generate(out: Union[str, Path], frames: int, seed: int = 0, width: int = 320, height: int = 192,
             stereo: bool = False, sequence_length: int = 100, baseline: float = STEREO_BASELINE,
             textures: bool = True, workers: int = 1, progress: bool = False) -> dict:
    """Render ``frames`` frames of synthetic streets into the SYNTHIA-style layout (module
    docstring) under ``out``: ``ceil(frames / sequence_length)`` sequences, one new street each.

    Args:
        out: output folder (created; sequence folders of the same names are overwritten).
        frames: total number of frames (>= 1).
        seed: run seed; same seed and arguments -> byte-identical files (whatever ``workers``).
        width, height: image size (px).
        stereo: also render the right camera (``RGB_right/``, ``baseline.txt``).
        sequence_length: frames per street (30 Hz drive).
        baseline: stereo baseline (m), right camera at +x of the left one.
        textures: procedural textures (see :class:`StreetScene`).
        workers: processes rendering in parallel (sequences, or slices of one sequence, each
            rebuilding its street); 1 renders in this process.
        progress: print one line per finished chunk.

    Returns:
        dict: ``frames``, ``sequences``, ``out``, ``paths`` (sequence folders), ``stereo``,
        ``baseline``, ``size`` ``[W, H]``, ``workers``, ``fps`` (frames / wall-clock second,
        everything included: street building, rendering, PNG writing), ``render_fps``
        (frames per second of rendering time, per worker; the right camera included when
        ``stereo``), ``build_s``, ``render_s`` (summed over workers), ``wall_s``,
        ``class_frames`` (frames in which each class appears, by name) and ``class_pixels``
        (pixel fraction per class).

    Raises:
        ValueError: ``frames < 1``, ``sequence_length < 1`` or ``workers < 1``.
        ImportError: pybullet is not installed.
    """
    frames, sequence_length, workers = int(frames), int(sequence_length), int(workers)
    if frames < 1 or sequence_length < 1 or workers < 1:
        raise ValueError(f"need frames, sequence_length, workers >= 1, got {frames}, "
                         f"{sequence_length}, {workers}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_seq = -(-frames // sequence_length)
    chunks = []
    for k in range(n_seq):
        n = min(sequence_length, frames - k * sequence_length)
        parts = max(1, min(n, -(-workers // n_seq))) if workers > 1 else 1
        edges = np.linspace(0, n, parts + 1).round().astype(int)
        chunks.extend((str(out), int(seed), k, int(a), int(b), n, int(width), int(height), bool(stereo),
                       float(baseline), sequence_length, bool(textures))
                      for a, b in zip(edges[:-1], edges[1:]) if b > a)
    t_wall = time.perf_counter()
    results = []
    if workers == 1:
        for c in chunks:
            results.append(_render_chunk(*c))
            if progress:
                print(f"seq_{c[2]:04d} frames {c[3]}-{c[4] - 1} done "
                      f"({time.perf_counter() - t_wall:.1f} s)", flush=True)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=min(workers, len(chunks)),
                                 mp_context=mp.get_context("spawn")) as pool:
            futs = [pool.submit(_render_chunk, *c) for c in chunks]
            for c, fut in zip(chunks, futs):
                results.append(fut.result())
                if progress:
                    print(f"seq_{c[2]:04d} frames {c[3]}-{c[4] - 1} done "
                          f"({time.perf_counter() - t_wall:.1f} s)", flush=True)
    wall = time.perf_counter() - t_wall
    class_frames = sum(r["class_frames"] for r in results)
    class_pixels = sum(r["class_pixels"] for r in results)
    render_s = sum(r["render_s"] for r in results)
    total_px = max(int(class_pixels.sum()), 1)
    return dict(
        frames=frames, sequences=n_seq, out=str(out),
        paths=[str(out / f"seq_{k:04d}") for k in range(n_seq)], stereo=bool(stereo),
        baseline=float(baseline) if stereo else None, size=[int(width), int(height)],
        workers=workers, fps=frames / wall, render_fps=frames / max(render_s, 1e-9),
        build_s=sum(r["build_s"] for r in results), render_s=render_s, wall_s=wall,
        class_frames={CLASS_NAMES[i]: int(v) for i, v in enumerate(class_frames)},
        class_pixels={CLASS_NAMES[i]: float(v) / total_px for i, v in enumerate(class_pixels)},
    )
