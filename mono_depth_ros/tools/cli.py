"""``mono-depth-ros``: models, bags, replay, recording, evaluation, benchmark and the demo.

Subcommands::

    models                       list registered models and their contracts
    make-bag SRC OUT             dataset folder -> MCAP bag (RGB, camera_info, GT depth)
    pack SRC OUT                 dataset -> compact training pack (carry it to a GPU machine)
    play BAG                     publish a bag on DDS at its recorded rate
    record OUT TOPIC...          write DDS topics to an MCAP bag
    evaluate                     metrics JSON + PNG panels (recorded bag, or model on a dataset)
    train                        train a model (default: fastdepth on 7-Scenes 0-799 / 800-999)
    synth OUT                    SYNTHIA-style synthetic streets or rooms (pybullet)
    ablation                     the SSegDep-Net ablation on synthetic streets
    bench                        per-stage latency at 640x480 (or a model table)
    export                       a registered model -> ONNX file (spec as metadata, parity check)
    import-weights FILE          third-party FastDepth weights (.onnx / .tflite) -> fastdepth_nyu
    demo                         the end-to-end run on real 7-Scenes frames over DDS
    dds-check                    VGA images / clouds delivered by Fast DDS under several setups
    test                         run the test suite (pytest)

ROS subcommands (play, record, demo, and bench for its publish stage) use the shipped Fast DDS
setup unless the user made a DDS choice of their own (``core.dds_env``: a profile file,
``FASTDDS_BUILTIN_TRANSPORTS`` or another ``RMW_IMPLEMENTATION``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

from ..core.dds_env import ros_env
from ..core.paths import package_share_dir
from ..ros.bag_args import player_parser, recorder_parser  # ROS-free argument definitions
from ..defaults import DEFAULT_MODEL

#: Values of --backend (mono_depth_ros.inference.backends.CHOICES, without importing torch).
BACKEND_CHOICES = ("auto", "torch", "onnxruntime", "cuda_graph", "tensorrt")
#: Values of --precision (mono_depth_ros.inference.estimator.PRECISIONS, without importing torch).
PRECISION_CHOICES = ("fp32", "fp16", "bf16")
DEFAULT_DATA = (package_share_dir() / ".." / "shared" / "data" / "7scenes-redkitchen").resolve()


def _apply_ros_env() -> None:
    # the shipped DDS setup unless the user chose one (core.dds_env)
    os.environ.update(ros_env())


# --------------------------------------------------------------------------- commands
def cmd_models(args) -> int:
    from ..models import get_spec, list_models
    rows = [("name", "kind", "input", "seg", "weights licence", "description")]
    for name in list_models():
        s = get_spec(name)
        if args.json:
            print(json.dumps(s.to_dict(), default=str))
            continue
        rows.append((name, s.output_kind, f"{s.input_size[0]}x{s.input_size[1]}",
                     "yes" if s.returns_segmentation else "no", s.weights_licence, s.description))
    if not args.json:
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[5])
    return 0


def cmd_make_bag(args) -> int:
    from ..data import open_dataset, parse_frames
    from ..data.bag import write_dataset_bag
    ds = open_dataset(args.src, parse_frames(args.frames))
    counts = write_dataset_bag(ds, args.out, frame_id=args.frame_id or ds.frame_id, progress=True)
    for topic, n in counts.items():
        print(f"wrote {n} messages on {topic}")
    print(f"bag: {args.out}")
    return 0


def cmd_pack(args) -> int:
    from ..data import open_dataset, parse_frames
    from ..data.pack import write_pack
    h, w = (int(v) for v in args.size.lower().split("x"))
    info = write_pack(open_dataset(args.src, parse_frames(args.frames)), args.out, (h, w))
    print(f"wrote {info['frames']} frames at {h}x{w} to {info['path']} "
          f"({info['bytes'] / 2**20:.1f} MiB); train on it with --data {info['path']}@START:STOP")
    return 0


def cmd_synth(args) -> int:
    from ..data import parse_frames
    from .synth import generate
    sl = parse_frames(args.photo_frames) or slice(0, None)
    size = {"street": (320, 192), "indoor": (320, 240)}[args.scene]
    res = generate(args.out, args.frames, seed=args.seed, width=args.width or size[0],
                   height=args.height or size[1], stereo=args.stereo,
                   sequence_length=args.sequence_length, workers=args.workers, progress=True,
                   scene=args.scene, photos=args.photos, photo_frames=(sl.start or 0, sl.stop))
    size_note = " (each room draws its own size around it)" if args.scene == "indoor" else ""
    print(f"wrote {res['frames']} frames in {res['sequences']} sequence(s) at "
          f"{res['size'][0]}x{res['size'][1]}{size_note}{' (stereo)' if res['stereo'] else ''} "
          f"to {res['out']}")
    print(f"scene {args.scene}, generator version {res['generator_version']}"
          + (f", {res['photos']} photo(s) for textures" if args.scene == "indoor" else ""))
    print(f"throughput: {res['fps']:.1f} frames/s overall ({res['workers']} worker(s); "
          f"rendering {res['render_fps']:.1f} frames/s per worker, scene building "
          f"{res['build_s']:.2f} s, wall {res['wall_s']:.2f} s)")
    print("frames with class: " + ", ".join(f"{k} {v}" for k, v in res["class_frames"].items()))
    return 0


def cmd_play(args) -> int:
    _apply_ros_env()
    from ..ros.bag_player import run
    return run(args)


def cmd_record(args) -> int:
    _apply_ros_env()
    from ..ros.bag_recorder import run
    return run(args)


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate_bags, evaluate_model, format_frames, format_table
    from ..core.metrics import format_appendix_a
    if args.scale_source:
        from .scale_eval import parse_scale_source
        if args.bag:
            print("--scale-source needs --data (recorded predictions are already scaled by the "
                  "node)", file=sys.stderr)
            return 2
        try:
            parse_scale_source(args.scale_source)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
    if args.bag:
        summary = evaluate_bags(args.bag, args.gt_bag or args.bag, args.out, args.pred_topic,
                                args.gt_topic, args.image_topic, args.min_depth or 1e-3,
                                args.max_depth or 10.0, args.panels, args.crop, args.baseline)
    elif args.data:
        from ..data import open_dataset, parse_frames
        from ..inference.estimator import DepthEstimator
        ds = open_dataset(args.data, parse_frames(args.frames))
        lo, hi = ds.eval_range
        est = DepthEstimator(args.model, checkpoint=args.checkpoint, device=args.device,
                             backend=args.backend, precision=args.precision, view=args.view,
                             flip_average=args.flip_average)
        for w in est.warnings:
            print(f"warning: {w}", file=sys.stderr)
        summary = evaluate_model(est, ds, args.out, args.min_depth or lo, args.max_depth or hi,
                                 args.panels, crop=args.crop, baseline=args.baseline,
                                 scale_source=args.scale_source)
    else:
        print("evaluate needs --bag (recorded predictions) or --data (dataset folder)", file=sys.stderr)
        return 2
    print(format_appendix_a(summary) if args.layout == "appendix-a" else format_table(summary))
    print(f"{format_frames(summary)}  metrics: {Path(args.out) / 'metrics.json'}")
    if "scale_fits" in summary:
        f = summary["scale_fits"]
        print(f"scale source {summary['scale_source']}: fitted {f['fitted']} of {f['frames']} "
              f"frames, median scale {f['median_scale']:.3f}, median support "
              f"{f['median_support']:.0f}, rejected {f['rejected'] or 'none'}")
    for p in summary["panels"]:
        print(f"panel: {p}")
    return 0


def cmd_bench(args) -> int:
    from .bench import (bench_matrix, bench_pipeline, format_matrix, format_model_table,
                        format_scaling, model_table, scaling_fit, write_json)
    from .export import parse_size
    if args.model == "all":
        rows = model_table(args.device, args.iters, args.models, backends=args.backends)
        print(write_json(rows, args.json_out))
        print("\n" + format_model_table(rows, args.device, args.backends))
        return 0
    models, backends = args.model.split(","), args.backend.split(",")
    resolutions = [parse_size(r, "WxH", "640x480") for r in args.resolutions.split(",")]
    unknown = [b for b in backends if b not in BACKEND_CHOICES]
    if unknown:
        print(f"bench: unknown backend(s) {unknown}; valid: {', '.join(BACKEND_CHOICES)}",
              file=sys.stderr)
        return 2
    _apply_ros_env()  # the serialize stage publishes with the node's DDS setup
    if len(models) == len(backends) == len(resolutions) == 1:
        res = bench_pipeline(models[0], args.device, args.precision, args.iters, image=args.image,
                             checkpoint=args.checkpoint, backend=backends[0],
                             resolution=resolutions[0], cloud_decimation=args.cloud_decimation,
                             flip_average=args.flip_average)
        print(write_json(res, args.json_out))
        return 0
    records = bench_matrix(models, backends, resolutions, args.device, precision=args.precision,
                           iters=args.iters, image=args.image, checkpoint=args.checkpoint,
                           cloud_decimation=args.cloud_decimation, flip_average=args.flip_average)
    write_json(records, args.json_out)
    print(format_matrix(records))
    fits = scaling_fit(records)
    if fits:
        print("\n" + format_scaling(fits))
    if args.json_out:
        write_json(fits, str(scaling_json_path(args.json_out)))
    return 0


def scaling_json_path(json_out: str) -> Path:
    """Where ``bench`` writes the linear fits of a matrix run: ``<json-out stem>.scaling.json``
    beside ``json_out`` (``bench.json`` -> ``bench.scaling.json``)."""
    p = Path(json_out)
    return p.with_name(p.stem + ".scaling.json")


def cmd_export(args) -> int:
    from .export import export_command
    return export_command(args)


def cmd_import_weights(args) -> int:
    from .import_weights import import_fastdepth
    out = import_fastdepth(Path(args.source), Path(args.out) if args.out else None)
    print(f"imported {args.source} -> {out} (model fastdepth_nyu)")
    return 0


def _args_import_weights(s) -> None:
    s.add_argument("source", help="the authors' FastDepth network: fastdepth_224_float32.onnx or "
                                  "the upstream full-int8 fast_depth_224.tflite (read as data)")
    s.add_argument("--out", help="checkpoint path (default: the imported-weights folder, "
                                 "$MONO_DEPTH_ROS_WEIGHTS or models/imported/)")


def cmd_dds_check(args) -> int:
    from ..core.dds_env import SETUPS, setup_variables
    from ..ros.dds_check import measure
    try:  # unknown names fail before minutes of measuring
        for name in [*args.setups, *([args.sub_setup] if args.sub_setup else [])]:
            setup_variables(name)
    except KeyError as exc:
        print(f"dds-check: {exc.args[0]}", file=sys.stderr)
        return 2
    rows = []
    print("| publisher setup | subscriber setup | message | QoS | received |", flush=True)
    print("|---|---|---|---|---|", flush=True)
    for setup in args.setups:
        for kind in args.kinds:
            for rel in args.reliability:
                r = measure(setup, args.count, args.rate, kind, rel, args.sub_setup)
                rows.append(r)
                print(f"| {r['setup']} | {r['sub_setup']} | VGA {kind} | {rel} | "
                      f"{r['received']} / {r['sent']} |", flush=True)
    for name in dict.fromkeys([*args.setups, *([args.sub_setup] if args.sub_setup else [])]):
        print(f"{name}: {SETUPS[name][0] if name in SETUPS else setup_variables(name)}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2))
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo
    return run_demo(args)


def cmd_train(args) -> int:
    import dataclasses

    from ..training.trainer import TrainConfig, train
    cfg = TrainConfig()
    if args.config:
        cfg = dataclasses.replace(cfg, **json.loads(Path(args.config).read_text()))
    one = lambda v: v[0] if isinstance(v, list) and len(v) == 1 else v  # noqa: E731
    overrides = {k: v for k, v in dict(
        model=args.model, train=one(args.data), val=one(args.val), out=args.out, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, max_steps=args.max_steps, device=args.device,
        loss=args.loss, mix=args.mix, epoch_steps=args.epoch_steps, zoom_min=args.zoom_min,
        init_checkpoint=args.init_checkpoint, teacher=args.teacher,
        teacher_weight=args.teacher_weight, teacher_loss=args.teacher_loss,
        time_budget_s=None if args.time_budget_min is None else 60.0 * args.time_budget_min,
        ).items() if v is not None}
    for flag in ("focal_norm", "photometric", "val_flip_average"):
        if getattr(args, flag):
            overrides[flag] = True
    if args.model_kwargs:
        overrides["model_kwargs"] = {**cfg.model_kwargs, **args.model_kwargs}
    if args.encoder:
        overrides["model_kwargs"] = {**overrides.get("model_kwargs", cfg.model_kwargs),
                                     "encoder": args.encoder}
    if args.no_pretrained:
        overrides["pretrained"] = False
    cfg = dataclasses.replace(cfg, **overrides)
    best = train(cfg, resume=args.resume)
    print(f"best checkpoint: {best}")
    return 0


def cmd_ablation(args) -> int:
    import dataclasses

    from ..training.ablation import run_ablation
    from ..training.trainer import TrainConfig
    base = dataclasses.replace(TrainConfig(), epochs=args.epochs, batch_size=args.batch_size,
                               lr=args.lr, device=args.device, max_steps=args.max_steps)
    kwargs = {"unet_seg": {"base_channels": args.unet_width}} if args.unet_width != 64 else {}
    res = run_ablation(args.train, args.test, args.out, args.report, base, kwargs,
                       val_spec=args.val, budget_s=60.0 * args.budget_minutes, ship=args.ship,
                       seg_lr=args.seg_lr)
    for (label, m), _ in zip(res["depth"], res["models"]):
        print(f"{label:32s} AbsRel {m['abs_rel']:.3f}  RMSE {m['rmse']:.2f} m  "
              f"s1 {m['delta1']:.3f}  s3 {m['delta3']:.3f}")
    print(f"unet_seg mIoU {res['segmentation']['miou']:.3f}; report: "
          f"{args.report or Path(args.out) / 'ssegdep_ablation.md'}")
    return 0


def cmd_test(pytest_args: List[str]) -> int:
    """Run the test suite with this interpreter; ``pytest_args`` are passed through."""
    root = package_share_dir()
    if not (root / "test").is_dir():
        print(f"mono-depth-ros test: no test/ folder under {root}; the test suite runs from a "
              "source checkout (python3 -m mono_depth_ros test)", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, "-m", "pytest", str(root / "test"), *pytest_args],
                           cwd=root)


# ----------------------------------------------------------------------------- parser
# ------------------------------------------------------------------------- arguments
def _args_models(s: argparse.ArgumentParser) -> None:
    s.add_argument("--json", action="store_true")


def _args_make_bag(s: argparse.ArgumentParser) -> None:
    s.add_argument("src", help="7-Scenes, NYU nyu2_test or KITTI raw-frame folder")
    s.add_argument("out", help="bag folder to write")
    s.add_argument("--frames", help="START:STOP subset, e.g. 800:1000")
    s.add_argument("--frame-id", help="header frame_id (default: the dataset's optical frame)")


def _args_pack(s: argparse.ArgumentParser) -> None:
    s.add_argument("src")
    s.add_argument("out")
    s.add_argument("--size", default="192x256", help="HxW, e.g. 192x256 (fastdepth's input)")
    s.add_argument("--frames", help="START:STOP subset")


def _args_synth(s: argparse.ArgumentParser) -> None:
    s.add_argument("out", help="output folder (seq_NNNN/RGB, Depth, Labels, ...)")
    s.add_argument("--frames", type=int, required=True, help="total number of frames")
    s.add_argument("--scene", choices=["street", "indoor"], default="street",
                   help="streets (SYNTHIA-AL-like) or rooms (random views, varied size and FOV)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--width", type=int, help="default 320")
    s.add_argument("--height", type=int, help="default 192 (street), 240 (indoor)")
    s.add_argument("--stereo", action="store_true", help="also render the right camera (0.54 m)")
    s.add_argument("--sequence-length", type=int,
                   help="frames per street (30 Hz; default 100) or room (default 10)")
    s.add_argument("--workers", type=int, default=1, help="rendering processes")
    s.add_argument("--photos", help="indoor: folder of TRAINING photographs for texture crops "
                   "(default ../shared/data/7scenes-redkitchen)")
    s.add_argument("--photo-frames", default="0:800",
                   help="indoor: frame numbers START:STOP of --photos (the training split)")


def _args_evaluate(s: argparse.ArgumentParser) -> None:
    s.add_argument("--bag", help="bag with recorded predictions")
    s.add_argument("--gt-bag", help="bag with ground truth (default: --bag)")
    s.add_argument("--pred-topic", default="/camera/depth/image")
    s.add_argument("--gt-topic", default="/camera/depth/ground_truth")
    s.add_argument("--image-topic", default="/camera/image_raw")
    s.add_argument("--data", help="dataset folder to run a model over")
    s.add_argument("--frames", help="START:STOP subset of --data")
    s.add_argument("--model", default=DEFAULT_MODEL)
    s.add_argument("--checkpoint", help="weights file, Hugging Face folder or hub id "
                   "(hf:owner/name[@revision]), or .onnx")
    s.add_argument("--device", default="auto")
    s.add_argument("--backend", default="auto", choices=BACKEND_CHOICES)
    s.add_argument("--precision", default="fp32", choices=PRECISION_CHOICES,
                   help="network precision (autocast); fp32 where the device lacks it (a warning)")
    s.add_argument("--flip-average", action="store_true", help="test-time flip averaging (as the "
                   "node parameter flip_average)")
    s.add_argument("--view", choices=["full", "focal_crop"],
                   help="how a frame is fed: the whole image, or the window whose focal matches "
                        "training (default: the model's)")
    s.add_argument("--min-depth", type=float, default=0.0, help="0 = the dataset's convention")
    s.add_argument("--max-depth", type=float, default=0.0)
    s.add_argument("--panels", type=int, default=4)
    s.add_argument("--crop", choices=["eigen", "garg"], help="KITTI evaluation crop")
    s.add_argument("--scale-source", help="metric scale from a reference simulated from the ground "
                   "truth: sparse:N | scan[:B] | ground:HEIGHT[:PITCH] | ground:pose | fixed:S")
    s.add_argument("--layout", choices=["table", "appendix-a"], default="table",
                   help="appendix-a: RMS, MQE, RMSL, RMSLSI, ABSR, ABSQ, σ1-3 (Valdez-Rodríguez)")
    s.add_argument("--baseline", default="constant",
                   help="constant[:METRES] scored beside the model (default value: the model's "
                        "median training depth, else the set's median GT, labelled oracle), or none")
    s.add_argument("--out", default="eval_out")


def _args_bench(s: argparse.ArgumentParser) -> None:
    s.add_argument("--model", default=DEFAULT_MODEL,
                   help="a model name, several comma-separated (one run, side by side), or 'all' "
                        "for the table of every network")
    s.add_argument("--models", nargs="*", help="with --model all: only these")
    s.add_argument("--device", default="cpu")
    s.add_argument("--precision", default="fp32", choices=PRECISION_CHOICES)
    s.add_argument("--iters", type=int, default=50)
    s.add_argument("--image", help="an image file to use instead of noise")
    s.add_argument("--checkpoint")
    s.add_argument("--backend", default="auto",
                   help=f"one of {', '.join(BACKEND_CHOICES)}, or several comma-separated")
    s.add_argument("--resolutions", default="640x480",
                   help="camera image size(s) WxH, comma-separated, e.g. 320x240,640x480,1280x720")
    s.add_argument("--cloud-decimation", type=int, default=1, help="as the node parameter")
    s.add_argument("--flip-average", action="store_true", help="as the node parameter: the "
                   "network also runs on the mirror image and the two depths are averaged")
    s.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"],
                   choices=BACKEND_CHOICES[1:], help="with --model all: one latency column each")
    s.add_argument("--json-out",
                   help="write the JSON here: one record, the list of per-(model, backend, "
                        "resolution) records of a matrix run, or the --model all table; a matrix "
                        "run also writes its per-stage linear fits of p50 ms against megapixels "
                        "(groups with >= 2 resolutions, else []) to <stem>.scaling.json beside it")


def _args_export(s: argparse.ArgumentParser) -> None:
    s.add_argument("--model", required=True, help="a registered model name")
    s.add_argument("--checkpoint", help="weights, Hugging Face folder or hub id "
                   "(hf:owner/name[@revision]) (default: the shipped ones / the model's hub id)")
    s.add_argument("--format", default="onnx", choices=["onnx"])
    s.add_argument("--out", required=True, help="FILE.onnx")
    s.add_argument("--input-size", help="network input HxW (default: the spec's input size)")
    s.add_argument("--device", default="cpu", help="where the parity check runs PyTorch")


def _args_dds_check(s: argparse.ArgumentParser) -> None:
    from ..core.dds_env import SETUPS
    csv = lambda text: [x for x in text.split(",") if x]  # noqa: E731
    s.add_argument("--count", type=int, default=20)
    s.add_argument("--rate", type=float, default=5.0)
    s.add_argument("--setups", type=csv, default=["default", "large_data", "profile"],
                   help=f"comma-separated publisher setups: {', '.join(SETUPS)}, xml:PATH or "
                        "transports:VALUE")
    s.add_argument("--sub-setup", help="subscriber setup (default: the publisher's); udp_only "
                   "stands for a peer on another host")
    s.add_argument("--kinds", type=csv, default=["cloud", "image"], help="cloud,image")
    s.add_argument("--reliability", type=csv, default=["best_effort", "reliable"],
                   help="best_effort,reliable")
    s.add_argument("--json-out", help="also write the rows as JSON")


def _args_demo(s: argparse.ArgumentParser) -> None:
    s.add_argument("--input", default=str(DEFAULT_DATA),
                   help="dataset folder, bag, or 'synthetic' (a generated street sequence)")
    s.add_argument("--frames", help="START:STOP subset of a dataset folder")
    s.add_argument("--out", default="demo_out")
    s.add_argument("--model", help="default: ssegdep_net for --input synthetic (the street "
                   "pair trained on generated frames), else fastdepth")
    s.add_argument("--checkpoint", default="")
    s.add_argument("--device", default="auto")
    s.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    s.add_argument("--cloud-decimation", type=int, default=1)
    s.add_argument("--timeout", type=float, default=600.0, help="overall bound in seconds")


def _args_train(s: argparse.ArgumentParser) -> None:
    s.add_argument("--model")
    s.add_argument("--data", nargs="+", help="training set(s) DIR[@START:STOP]; several are mixed")
    s.add_argument("--val", nargs="+", help="validation set(s) DIR[@START:STOP]; checkpoints are "
                   "selected by their mean AbsRel")
    s.add_argument("--mix", type=float, nargs="+", help="fraction of each batch per --data set "
                   "(default: by size)")
    s.add_argument("--epoch-steps", type=int, help="steps between validations (default: one pass)")
    s.add_argument("--time-budget-min", type=float, help="wall-time budget in minutes (summed "
                   "over --resume runs)")
    s.add_argument("--focal-norm", action="store_true", help="train depth for a canonical camera "
                   "(targets x train_focal / (fx/W) per frame)")
    s.add_argument("--zoom-min", type=float, help="focal augmentation: crop side fraction in "
                   "[ZOOM_MIN, 1], resized back (needs --focal-norm)")
    s.add_argument("--photometric", action="store_true", help="colour jitter, blur, sensor noise, JPEG")
    s.add_argument("--init-checkpoint", help="start from the weights of this checkpoint")
    s.add_argument("--teacher", help="distillation: a frozen metric-depth checkpoint whose "
                   "(flip-averaged) prediction is a second target on every frame; training sets "
                   "may then be colour-only image folders")
    s.add_argument("--teacher-weight", type=float, help="weight of the teacher term (default 1)")
    s.add_argument("--val-flip-average", action="store_true", help="validate the mean of each "
                   "image's and its mirror image's depth (the node's flip_average)")
    s.add_argument("--teacher-loss", help="loss of the teacher term (default: --loss)")
    s.add_argument("--model-kwargs", type=json.loads,
                   help='architecture options as JSON, e.g. \'{"flip_average": true}\'')
    s.add_argument("--out")
    s.add_argument("--config", help="JSON file with TrainConfig fields")
    s.add_argument("--encoder", help="encoder option of the model (e.g. efficientnet_lite0)")
    s.add_argument("--no-pretrained", action="store_true", help="random encoder initialisation")
    s.add_argument("--epochs", type=int)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--lr", type=float)
    s.add_argument("--loss")
    s.add_argument("--max-steps", type=int)
    s.add_argument("--device")
    s.add_argument("--resume", help="last.pt of an interrupted run")


def _args_ablation(s: argparse.ArgumentParser) -> None:
    s.add_argument("--train", required=True, help="training set DIR[@START:STOP] (synth output)")
    s.add_argument("--test", required=True, help="test set DIR[@START:STOP] (another seed)")
    s.add_argument("--val", help="checkpoint-selection set DIR[@START:STOP] (default: --test)")
    s.add_argument("--out", default="runs/ablation")
    s.add_argument("--budget-minutes", type=float, default=0.0,
                   help="total training time shared by the seven networks (0 = --epochs only)")
    s.add_argument("--unet-width", type=int, default=64,
                   help="unet_seg base channels (64 = Ronneberger et al.)")
    s.add_argument("--ship", help="folder for float16 unet_seg_synth.pt / cnn3d_up_synth.pt")
    s.add_argument("--seg-lr", type=float, help="unet_seg peak learning rate (default --lr)")
    s.add_argument("--report", help="markdown report path (e.g. docs/ssegdep_ablation.md)")
    s.add_argument("--epochs", type=int, default=20)
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--max-steps", type=int, default=0)
    s.add_argument("--device", default="auto")


#: Subcommands: name, help, argument builder, handler (``test`` is handled by :func:`main`).
COMMANDS = [
    ("models", "list registered models", _args_models, cmd_models),
    ("make-bag", "dataset folder -> MCAP bag", _args_make_bag, cmd_make_bag),
    ("pack", "dataset -> compact training pack at the training size", _args_pack, cmd_pack),
    ("synth", "render synthetic SYNTHIA-style street sequences", _args_synth, cmd_synth),
    ("play", "publish a bag on DDS", player_parser, cmd_play),
    ("record", "record DDS topics to MCAP", recorder_parser, cmd_record),
    ("evaluate", "depth metrics + PNG panels", _args_evaluate, cmd_evaluate),
    ("bench", "latency benchmark", _args_bench, cmd_bench),
    ("export", "a registered model -> ONNX (spec as metadata, parity vs PyTorch)", _args_export,
     cmd_export),
    ("import-weights", "third-party FastDepth weights (.onnx/.tflite) -> fastdepth_nyu checkpoint",
     _args_import_weights, cmd_import_weights),
    ("dds-check", "VGA clouds and images between two processes under several Fast DDS setups",
     _args_dds_check, cmd_dds_check),
    ("demo", "real 7-Scenes frames through depth_node over DDS", _args_demo, cmd_demo),
    ("train", "train a model on dataset folders", _args_train, cmd_train),
    ("ablation", "SSegDep-Net ablation on synthetic streets (Tables 1-4)", _args_ablation,
     cmd_ablation),
]


def build_parser() -> argparse.ArgumentParser:
    """The ``mono-depth-ros`` argument parser (one subparser per entry of :data:`COMMANDS`)."""
    p = argparse.ArgumentParser(prog="mono-depth-ros", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_text, add_arguments, handler in COMMANDS:
        s = sub.add_parser(name, help=help_text)
        add_arguments(s)
        s.set_defaults(func=handler)
    sub.add_parser("test", help="run the test suite (further arguments go to pytest)")
    return p


#: Set to 1 for the full traceback of an input error instead of its one-line message.
TRACEBACK_ENV = "MONO_DEPTH_ROS_TRACEBACK"


def _input_error(exc: BaseException) -> bool:
    """Whether ``exc`` is what commands raise for bad input (an argument value, a missing or
    unreadable file, an unknown model, a missing optional package), not a bug."""
    if isinstance(exc, (ValueError, OSError, ImportError)):
        return True
    from ..models.registry import UnknownModelError
    return isinstance(exc, UnknownModelError)


def main(argv: Optional[List[str]] = None) -> None:
    """Console entry point ``mono-depth-ros``.

    Exit status: the command's; 2 for bad arguments (argparse) and for input errors
    (:func:`_input_error`), which print one line ``mono-depth-ros CMD: error: ...`` on stderr
    (the traceback with ``MONO_DEPTH_ROS_TRACEBACK=1``).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["test"]:  # everything after "test" belongs to pytest
        raise SystemExit(cmd_test(argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except Exception as exc:  # noqa: BLE001  (sorted below: input errors vs bugs)
        if os.environ.get(TRACEBACK_ENV) == "1" or not _input_error(exc):
            raise
        print(f"mono-depth-ros {args.command}: error: {exc}", file=sys.stderr)
        code = 2
    raise SystemExit(code)


if __name__ == "__main__":
    main()
