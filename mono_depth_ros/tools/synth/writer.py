"""Sequences on disk: render scenes (streets or rooms, :data:`SCENES`) chunk by chunk (in worker
processes) and write the SYNTHIA-style layout read by :class:`mono_depth_ros.data.synthia.Synthia`."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .render import (CLASS_NAMES, DEPTH_SCALE, GENERATOR_VERSION, RATE_HZ, SKY_DEPTH,
                     STEREO_BASELINE, stereo_pose, street_length)
from .indoor import (INDOOR_CLASS_NAMES, INDOOR_DEPTH_SCALE, INDOOR_GENERATOR_VERSION, IndoorScene,
                     default_photo_dir, photo_files)
from .scene import StreetScene


@dataclass(frozen=True)
class SceneKind:
    """What ``generate(scene=NAME)`` builds: ``make(seed, width, height, sequence_length,
    textures, photos)`` returns a scene with ``K``, ``trajectory(n)``, ``render(pose)``,
    ``render_rgb(pose)``, ``describe()``, ``close()`` and ``width``/``height``; depth PNG units
    (m), class names, default frames per sequence, generator version and extra scene.json keys."""

    make: Callable
    depth_scale: float
    class_names: Tuple[str, ...]
    sequence_length: int
    version: int
    info: dict


def _street(seed, width, height, sequence_length, textures, photos):
    return StreetScene(seed, width, height, street_length(sequence_length), textures=textures)


def _indoor(seed, width, height, sequence_length, textures, photos):
    return IndoorScene(seed, width, height, textures=textures, photos=photos)


#: Scene generators by name (``mono-depth-ros synth --scene``).
SCENES = {
    "street": SceneKind(_street, DEPTH_SCALE, CLASS_NAMES, 100, GENERATOR_VERSION,
                        dict(sky_depth_m=SKY_DEPTH, rate_hz=RATE_HZ)),
    "indoor": SceneKind(_indoor, INDOOR_DEPTH_SCALE, INDOOR_CLASS_NAMES, 10, INDOOR_GENERATOR_VERSION,
                        dict(views="independent random views of one room per sequence")),
}


# ----------------------------------------------------------------------------- sequences
def scene_seed(seed: int, sequence: int) -> int:
    """Seed of street ``sequence`` of a run with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(sequence)]).generate_state(1)[0])


def encode_depth(depth: np.ndarray, scale: float = DEPTH_SCALE) -> np.ndarray:
    """float32 m -> uint16 units of ``scale`` m (default centimetres): ``round(depth / scale)``
    clipped to 1..65535; NaN / inf (nothing drawn) -> 0, the readers' invalid value."""
    d = np.asarray(depth, np.float64)
    finite = np.isfinite(d)
    out = np.clip(np.round(np.where(finite, d, 0.0) / scale), 1, 65535).astype(np.uint16)
    out[~finite] = 0
    return out


_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1]


def _write_png(path: Path, img: np.ndarray) -> None:
    if not cv2.imwrite(str(path), img, _PNG):
        raise OSError(f"cannot write {path}")


def _fmt_matrix(M: np.ndarray) -> str:
    return "\n".join(" ".join(f"{v:.10g}" for v in row) for row in np.asarray(M)) + "\n"


def _render_chunk(out: str, seed: int, k: int, t0: int, t1: int, n: int, width: int, height: int,
                  stereo: bool, baseline: float, sequence_length: int, textures: bool,
                  scene_name: str = "street", photos: Sequence[str] = ()) -> dict:
    """Render frames ``t0 .. t1 - 1`` of sequence ``k`` (``n`` frames) of a ``scene_name``
    scene into ``out/seq_kkkk``; the chunk with ``t0 == 0`` also writes the sequence files.
    Returns timing / class stats."""
    kind = SCENES[scene_name]
    class_names = kind.class_names
    seq_dir = Path(out) / f"seq_{k:04d}"
    names = ("RGB", "Depth", "Labels", "Pose") + (("RGB_right",) if stereo else ())
    dirs = {d: seq_dir / d for d in names}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    class_frames = np.zeros(len(class_names), np.int64)
    class_pixels = np.zeros(len(class_names), np.int64)
    render_s = 0.0
    t_start = time.perf_counter()
    scene = kind.make(scene_seed(seed, k), width, height, sequence_length, textures,
                      [Path(p) for p in photos])
    build_s = time.perf_counter() - t_start
    try:
        K = scene.K
        if t0 == 0:
            fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
            (seq_dir / "intrinsics.txt").write_text(f"{fx:.10g} {fy:.10g} {cx:.10g} {cy:.10g}\n")
            info = dict(scene.describe(), generator=scene_name, generator_version=kind.version,
                        run_seed=int(seed), sequence=k, frames=n, depth_scale=kind.depth_scale,
                        classes=list(class_names), stereo=bool(stereo), **kind.info)
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
                counts = np.bincount(labels.ravel(), minlength=len(class_names))
                class_pixels += counts
                class_frames += counts > 0
                stem = f"{t:06d}"
                (dirs["RGB"] / f"{stem}.K.txt").write_text(k_text)
                (dirs["Pose"] / f"{stem}.txt").write_text(_fmt_matrix(pose))
                jobs = [(dirs["RGB"] / f"{stem}.png", rgb[..., ::-1].copy()),
                        (dirs["Depth"] / f"{stem}.png", encode_depth(depth, kind.depth_scale)),
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


def resolve_photos(photos: Union[None, str, Path, Sequence] = None,
                   frames: Tuple[int, int] = (0, 800)) -> list:
    """Photo files for indoor textures: ``None`` = 7-Scenes frames ``frames`` of
    :func:`~.indoor.default_photo_dir` (``[]`` when absent), a folder = its frames in
    ``frames``, or an explicit list of files."""
    if photos is None:
        return [str(p) for p in photo_files(default_photo_dir(), frames)]
    if isinstance(photos, (str, Path)):
        if not Path(photos).is_dir():
            raise ValueError(f"photo folder not found: {photos}")
        return [str(p) for p in photo_files(Path(photos), frames)]
    return [str(p) for p in photos]


def generate(out: Union[str, Path], frames: int, seed: int = 0, width: int = 320, height: int = 192,
             stereo: bool = False, sequence_length: Optional[int] = None,
             baseline: float = STEREO_BASELINE, textures: bool = True, workers: int = 1,
             progress: bool = False, scene: str = "street", photos=None,
             photo_frames: Tuple[int, int] = (0, 800)) -> dict:
    """Render ``frames`` frames of synthetic scenes into the SYNTHIA-style layout (package
    docstring) under ``out``: ``ceil(frames / sequence_length)`` sequences, one new street or
    room each.

    Args:
        out: output folder (created; sequence folders of the same names are overwritten).
        frames: total number of frames (>= 1).
        seed: run seed; same seed and arguments -> byte-identical files (whatever ``workers``).
        width, height: image size (px).
        stereo: also render the right camera (``RGB_right/``, ``baseline.txt``).
        sequence_length: frames per street (30 Hz drive) or room (random views); default per
            scene (:data:`SCENES`: street 100, indoor 10).
        baseline: stereo baseline (m), right camera at +x of the left one.
        textures: procedural (and, indoors, photo) textures.
        workers: processes rendering in parallel (sequences, or slices of one sequence, each
            rebuilding its street); 1 renders in this process.
        progress: print one line per finished chunk.
        scene: ``"street"`` (:class:`StreetScene`) or ``"indoor"`` (:class:`IndoorScene`).
        photos: indoor photo textures (:func:`resolve_photos`; training-split images only).
        photo_frames: frame numbers ``[start, stop)`` taken from a photo folder.

    Returns:
        dict: ``frames``, ``sequences``, ``out``, ``paths`` (sequence folders), ``stereo``,
        ``baseline``, ``size`` ``[W, H]``, ``workers``, ``fps`` (frames / wall-clock second,
        everything included: street building, rendering, PNG writing), ``render_fps``
        (frames per second of rendering time, per worker; the right camera included when
        ``stereo``), ``build_s``, ``render_s`` (summed over workers), ``wall_s``,
        ``class_frames`` (frames in which each class appears, by name), ``class_pixels``
        (pixel fraction per class), ``scene``, ``generator_version`` and ``photos`` (count).
        Indoor rooms draw their own image size around ``width x height``.

    Raises:
        ValueError: ``frames < 1``, ``sequence_length < 1``, ``workers < 1``, an unknown
            ``scene`` or a missing photo folder.
        ImportError: pybullet is not installed.
    """
    if scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r}; valid: {', '.join(sorted(SCENES))}")
    kind = SCENES[scene]
    photo_list = resolve_photos(photos, photo_frames) if scene == "indoor" else []
    if sequence_length is None:
        sequence_length = kind.sequence_length
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
                       float(baseline), sequence_length, bool(textures), scene, tuple(photo_list))
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
        class_frames={kind.class_names[i]: int(v) for i, v in enumerate(class_frames)},
        class_pixels={kind.class_names[i]: float(v) / total_px for i, v in enumerate(class_pixels)},
        scene=scene, generator_version=kind.version, photos=len(photo_list),
    )
