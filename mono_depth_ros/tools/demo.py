"""The end-to-end demo: real camera frames through depth_node over DDS, recorded and scored.

Steps (each a separate OS process talking over Fast DDS with the shipped setup unless the user
chose one, as on a robot):

1. the input bag: ``make-bag`` of the dataset folder (cached in ``OUT/input_bag``), or ``--input``
   when it is already a bag;
2. ``depth_node`` in namespace ``/camera`` (``image`` remapped to ``image_raw``);
3. ``bag_recorder`` on ``/camera/depth/image``, ``/camera/depth/camera_info``, ``/camera/points``;
4. ``bag_player`` replays RGB + camera_info at the recorded rate once the node subscribes;
5. the recorder and node are stopped by PID (SIGINT, then SIGKILL after a bound);
6. the recorded depth is scored against the bag's ground truth (matched by stamp);
7. the middle recorded cloud is rendered from above and in perspective (``cloud_birdseye.png``,
   ``cloud_perspective.png``), beside the ground truth's cloud of the same frame.

Every wait is bounded; ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and, unless set, a random
``ROS_DOMAIN_ID`` keep the run from meeting other ROS graphs.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

from ..core.dds_env import DDS_VARIABLES, ros_env
from ..defaults import DEFAULT_MODEL

IMAGE = "/camera/image_raw"
INFO = "/camera/camera_info"
GT = "/camera/depth/ground_truth"
RECORDED = {"/camera/depth/image": "sensor_msgs/msg/Image",
            "/camera/depth/camera_info": "sensor_msgs/msg/CameraInfo",
            "/camera/points": "sensor_msgs/msg/PointCloud2"}


def is_bag(path: Path) -> bool:
    """A rosbag2 folder (``metadata.yaml``) or a bare ``.mcap`` file."""
    return (path / "metadata.yaml").is_file() or path.suffix == ".mcap"


def demo_env(out: Path) -> dict:
    """ROS environment for the demo's processes (profile, localhost discovery, log dir)."""
    env = ros_env()
    env.setdefault("ROS_DOMAIN_ID", str(random.randint(100, 200)))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("ROS_LOG_DIR", str(out / "ros_log"))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> int:
    """SIGINT ``proc`` by PID, then SIGKILL if it has not exited after ``timeout`` s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    return proc.returncode


def _prepare_input(args, out: Path) -> tuple:
    from ..data import open_dataset, parse_frames
    from ..data.bag import write_dataset_bag
    if args.model is None:  # a street model for street frames, the indoor one otherwise
        args.model = "ssegdep_net" if args.input == "synthetic" else DEFAULT_MODEL
    if args.input == "synthetic":
        # a generated street sequence: the demo then runs on any machine, data folder or not
        from .synth import generate
        src = out / "synthetic"
        if not (src / "seq_0000" / "RGB").is_dir():
            print(f"[demo] generating 150 synthetic street frames in {src}", flush=True)
            generate(src, frames=150, seed=0, sequence_length=150)
        args.input = str(src)
    src = Path(args.input).resolve()
    if is_bag(src):
        return src, (1e-3, 10.0)
    if not src.is_dir():
        raise SystemExit(f"demo input not found: {src} (pass --input DATASET_OR_BAG)")
    ds = open_dataset(src, parse_frames(args.frames))
    bag = out / "input_bag"
    stamp = out / "input_bag.source.json"
    key = {"src": str(src), "frames": args.frames, "n": len(ds)}
    if not (bag.is_dir() and stamp.is_file() and json.loads(stamp.read_text()) == key):
        print(f"[demo] writing {len(ds)} frames of {src} to {bag}", flush=True)
        write_dataset_bag(ds, bag, frame_id=ds.frame_id, progress=True)
        stamp.write_text(json.dumps(key))
    else:
        print(f"[demo] reusing input bag {bag}", flush=True)
    return bag, ds.eval_range


def _middle_cloud(bag: Path, topic: str) -> tuple:
    """``(message, index, count)``: the middle message of ``topic`` in ``bag`` (deserialised;
    ``None`` when the topic has none), its 0-based index and the number of messages."""
    from ..data.bag import bag_topics, deserialize, iter_raw
    n = bag_topics(bag).get(topic, ("", 0))[1]
    for i, (_, msgtype, _, data) in enumerate(iter_raw(bag, [topic])):
        if i == n // 2:
            return deserialize(data, msgtype), i, n
    return None, 0, n


def write_cloud_views(rec_bag: Path, in_bag: Path, out: Path) -> List[Path]:
    """Render the middle recorded cloud as ``cloud_birdseye.png`` (top down, coloured by height)
    and ``cloud_perspective.png`` (image colours) in ``out``; beside each, the same frame's
    ground-truth depth back-projected the same way when the input bag has it, in the same
    metres, colour range and view. Returns the files written."""
    import cv2
    import numpy as np
    from ..core.geometry import CloudBuilder, intrinsics_from_camera_info
    from ..core.image_codec import depth_msg_to_metres, image_msg_to_rgb
    from ..core.visualize import (birdseye_extent, cloud_arrays, height_range, perspective_view,
                                  render_birdseye, render_perspective)
    from ..data.bag import read_topics_by_stamp, stamp_ns

    msg, index, count = _middle_cloud(rec_bag, "/camera/points")
    if msg is None:
        return []
    xyz, rgb = cloud_arrays(msg.data, msg.height, msg.width, msg.point_step, msg.row_step,
                            {f.name: f.offset for f in msg.fields})
    st = stamp_ns(msg)
    clouds = [("prediction (depth_node)", xyz, rgb)]
    ref = read_topics_by_stamp(in_bag, [GT, INFO, IMAGE], stamps=[st])
    if st in ref[GT] and st in ref[INFO]:
        info, gt = ref[INFO][st], depth_msg_to_metres(ref[GT][st])
        K = intrinsics_from_camera_info(info.k, info.width, info.height)
        d = max(1, int(round(gt.shape[1] / msg.width)))
        gt_xyz = CloudBuilder(d, with_rgb=False).build(gt, K).points.copy()
        gt_rgb = None
        if st in ref[IMAGE]:
            gt_rgb = image_msg_to_rgb(ref[IMAGE][st])[::d, ::d]
        if gt_rgb is None or gt_rgb.shape[:2] != gt_xyz.shape[:2]:
            gt_rgb = rgb if rgb is not None and rgb.shape[:2] == gt_xyz.shape[:2] else None
        clouds.append(("ground truth (the dataset's depth)", gt_xyz, gt_rgb))
    # one extent (holding every cloud), colour range and view (the ground truth's when there is
    # one) for all panels, so that the panels compare point by point
    every = np.concatenate([c.reshape(-1, 3) for _, c, _ in clouds])
    extent = birdseye_extent(every)
    ref_xyz = clouds[-1][1]
    lims = height_range(ref_xyz)
    eye, target = perspective_view(ref_xyz, size=(800, 600))
    ref_y = ref_xyz[..., 1][np.isfinite(ref_xyz).all(axis=-1)]
    grid_y = float(np.percentile(ref_y, 99)) if ref_y.size else 0.0
    t = f"cloud {index + 1} of {count} recorded"
    bird = [render_birdseye(c, color_by="height", extent=extent, max_side=640,
                            height_lims=lims, title=f"{name}, {t}, from above")
            for name, c, _ in clouds]
    persp = [render_perspective(c, col, "image" if col is not None else "height", eye=eye,
                                target=target, size=(800, 600), height_lims=lims, grid_y=grid_y,
                                title=f"{name}, {t}")
             for name, c, col in clouds]
    files = []
    for fname, tiles in (("cloud_birdseye.png", bird), ("cloud_perspective.png", persp)):
        h = max(im.shape[0] for im in tiles)
        tiles = [np.pad(im, ((0, h - im.shape[0]), (0, 0), (0, 0))) for im in tiles]
        path = out / fname
        cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(tiles, axis=1), cv2.COLOR_RGB2BGR))
        files.append(path)
    return files


def run_demo(args) -> int:
    """Run the demo as described in the module docstring; prints counts, metrics and paths."""
    from ..data.bag import bag_topics
    from .evaluate import evaluate_bags, format_table

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.timeout
    in_bag, (lo, hi) = _prepare_input(args, out)
    topics = bag_topics(in_bag)
    frames_in = topics.get(IMAGE, ("", 0))[1]
    env = demo_env(out)
    py = sys.executable
    rec_bag, node_stats = out / "output_bag", out / "node_stats.json"
    node_log, rec_log = open(out / "depth_node.log", "w"), open(out / "recorder.log", "w")
    node_cmd = [py, "-m", "mono_depth_ros.ros.depth_node", "--ros-args", "-r", "__ns:=/camera",
                "-r", "image:=image_raw", "-p", f"model:={args.model}",
                "-p", f"device:={args.device}", "-p", f"cloud_decimation:={args.cloud_decimation}",
                "-p", f"stats_file:={node_stats}", "-p", "stats_period:=5.0",
                # outputs are reliable (the default) and keep 5, so the recording holds every
                # frame the node processed; the input stays best effort, as from a camera driver
                "-p", "output_depth:=5"]
    if args.checkpoint:
        node_cmd += ["-p", f"checkpoint:={args.checkpoint}"]
    dds = " ".join(f"{k}={env[k]}" for k in (*DDS_VARIABLES, "RMW_IMPLEMENTATION") if env.get(k))
    print(f"[demo] ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']} {dds or 'Fast DDS defaults'}", flush=True)
    node = subprocess.Popen(node_cmd, env=env, stdout=node_log, stderr=subprocess.STDOUT)
    rec = subprocess.Popen([py, "-m", "mono_depth_ros.ros.bag_recorder", str(rec_bag),
                            *[f"{t}:{m}" for t, m in RECORDED.items()],
                            "--qos-reliability", "reliable",
                            "--summary", str(out / "record_counts.json")],
                           env=env, stdout=rec_log, stderr=subprocess.STDOUT)
    procs: List[subprocess.Popen] = [node, rec]
    try:
        print(f"[demo] depth_node pid {node.pid}, recorder pid {rec.pid}; replaying {frames_in} "
              f"frames at x{args.rate}", flush=True)
        play = subprocess.run(
            [py, "-m", "mono_depth_ros.ros.bag_player", str(in_bag), "--topics", IMAGE, INFO,
             "--wait-for", IMAGE, INFO, "--wait-timeout", "120", "--start-delay", "3",
             "--rate", str(args.rate)],
            env=env, capture_output=True, text=True,
            timeout=max(deadline - time.monotonic(), 1.0))
        print(play.stdout.strip(), flush=True)
        if play.returncode != 0:
            print(f"[demo] player failed ({play.returncode}): {play.stderr.strip()[-2000:]}")
            return 1
        time.sleep(3.0)  # let the node finish its last frame and the recorder drain
    except subprocess.TimeoutExpired:
        print(f"[demo] timed out after {args.timeout}s", flush=True)
        return 1
    finally:
        stop_process(rec)
        stop_process(node)
        node_log.close()
        rec_log.close()
        for p in procs:
            if p.poll() is None:
                p.kill()
    stats = json.loads(node_stats.read_text()) if node_stats.is_file() else {}
    counts = json.loads((out / "record_counts.json").read_text()) \
        if (out / "record_counts.json").is_file() else {}
    summary = evaluate_bags(rec_bag, in_bag, out / "eval", "/camera/depth/image", GT, IMAGE,
                            lo, hi, panels=4)
    views = write_cloud_views(rec_bag, in_bag, out)
    c = stats.get("counts", {})
    print("\n=== mono_depth_ros demo ===")
    print(f"frames in (published): {frames_in}")
    print(f"node: received {c.get('received', '?')}, processed {c.get('processed', '?')}, "
          f"dropped {c.get('dropped', '?')}, skipped {c.get('skipped', '?')}")
    for k, v in stats.get("latency_ms", {}).items():
        print(f"  {k:12s} p50 {v['p50']:7.1f} ms  p95 {v['p95']:7.1f} ms")
    for t, n in counts.items():
        print(f"recorded {n} messages on {t}")
    print(f"depth frames scored against ground truth: {summary['matched']} "
          f"(range {lo:g}-{hi:g} m)")
    print(format_table(summary))
    print(f"output bag: {rec_bag}\nmetrics: {out / 'eval' / 'metrics.json'}")
    for p in summary["panels"]:
        print(f"panel: {p}")
    for p in views:
        print(f"cloud view: {p}")
    ok = summary["matched"] > 0 and all(counts.get(t, 0) > 0 for t in RECORDED)
    return 0 if ok else 1


def main(argv: Optional[List[str]] = None) -> None:  # pragma: no cover - use the CLI
    from .cli import main as cli_main
    cli_main(["demo", *(argv or sys.argv[1:])])
