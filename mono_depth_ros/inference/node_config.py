"""depth_node's parameters and their validation, without ROS.

:data:`PARAMETERS` is the one table of the node's parameters (default, description, range or
choices, whether it is read only at start, which part of the node it configures). The ROS node
turns each entry into a ``ParameterDescriptor``; ``config/depth.yaml`` lists the same names.

:func:`validate_config` checks a *whole* configuration (every parameter's value) the way the
node needs it before accepting a change: ranges and choices, a registered model, an available
device, a precision the device supports, network input sizes that are positive multiples of the
model's multiple (32 for the package's networks, 14 for DINOv2-based Hugging Face models; 0 = the
model's default), ``0 <= min_depth < max_depth`` after defaults, and checkpoint files that exist,
load with ``torch.load(weights_only=True)`` (data, never code) and hold the selected model (for
Hugging Face models: an existing ``save_pretrained`` folder or a hub id written
``hf:owner/name[@revision]``; for ONNX models: an existing ``.onnx`` file whose fixed input shape
matches ``input_width`` / ``input_height``), and a backend that can run the precision.
:func:`build_estimator` then builds the network, which also checks that the weights fit the
architecture (strict state-dict load).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from ..core.image_codec import MAX_DECODED_PIXELS
from ..core.pipeline import PipelineConfig
from ..core.scale import FALLBACKS as SCALE_FALLBACKS
from ..core.scale import LEVEL_SCANNER_RPY, SOURCES as SCALE_SOURCES
from ..core.scale import ScaleConfig, pose_matrix
from ..models import get_spec, list_models, load_checkpoint
from ..models.hf import is_hub_id, parse_hub_id
from ..models.onnx_model import file_input_hw, input_size_problem
from ..models.registry import checkpoint_fits, loads_checkpoint
from .backends import CHOICES as BACKEND_CHOICES
from .backends import backend_precision_problem, resolve_backend
from ..models.spec import VIEWS
from .estimator import (DEVICE_PATH_CHOICES, PRECISIONS, SEMANTIC_FRONTEND, DepthEstimator,
                        default_checkpoint, precision_problem, select_device)
from ..defaults import DEFAULT_MODEL

#: Parameter groups: ``estimator`` (a change rebuilds the network), ``pipeline`` (stages after
#: inference), ``node`` (read by the node itself).
GROUPS = ("estimator", "pipeline", "node", "scale")
RELIABILITY_CHOICES = ("best_effort", "reliable")


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter.

    Attributes:
        default: default value (its type is the parameter's type).
        description: one line for ``ros2 param describe``.
        group: one of :data:`GROUPS` (``scale``: the metric scale, applied by
            ``ros.scale_source`` between two frames).
        range: ``(from, to, step)`` for numbers (``step`` 0: any value in between).
        choices: allowed string values.
        read_only: only read at start (QoS, subscriptions, timers): changes are refused.
    """

    default: Any
    description: str
    group: str = "node"
    range: Optional[Tuple[float, float, float]] = None
    choices: Optional[Tuple[str, ...]] = None
    read_only: bool = False


P = ParamSpec
#: Every depth_node parameter. Ranges: network sizes 0-4096 px (multiples: the model's),
#: depths 0-1000 m, QoS depths 1-100, decimation 1-16, periods 0-3600 s.
PARAMETERS: Dict[str, ParamSpec] = {
    # --- the network (a change rebuilds it; validated and built before it is accepted)
    "model": P(DEFAULT_MODEL, "registered model name (mono-depth-ros models lists them)",
               "estimator"),
    "checkpoint": P("", "weights file, Hugging Face folder or hub id (hf:owner/name[@revision]), "
                    "or .onnx file; empty = the model's shipped weights or hub id", "estimator"),
    "seg_checkpoint": P("", "unet_seg weights for models that need OHES input", "estimator"),
    "device": P("auto", "auto (CUDA if available, else CPU), cpu, cuda, cuda:N", "estimator"),
    "precision": P("fp32", "fp32, fp16 (CUDA) or bf16 (CPU, or a GPU that supports it)",
                   "estimator", choices=tuple(PRECISIONS)),
    "input_width": P(0, "network input width in px: a multiple of the model's (32 for most; "
                     "0 = model default)", "estimator", range=(0, 4096, 0)),
    "input_height": P(0, "network input height in px: a multiple of the model's (32 for most; "
                      "0 = model default)", "estimator", range=(0, 4096, 0)),
    "min_depth": P(0.0, "minimum valid depth in m (0 = model default)", "estimator",
                   range=(0.0, 1000.0, 0.0)),
    "max_depth": P(0.0, "maximum valid depth in m (0 = model default)", "estimator",
                   range=(0.0, 1000.0, 0.0)),
    "stateful": P(False, "keep recurrent state across frames (siamese_convlstm)", "estimator"),
    "backend": P("auto", "auto (ONNX Runtime on the CPU where measured faster), torch, "
                 "onnxruntime, cuda_graph or tensorrt (CUDA)", "estimator",
                 choices=BACKEND_CHOICES),
    "device_path": P("auto", "pre/post-processing and the cloud on the model's device with one "
                     "copy back: auto (on for CUDA), on or off", "estimator",
                     choices=DEVICE_PATH_CHOICES),
    "use_camera_focal": P(True, "models that predict their field of view (Depth Pro): use the "
                          "camera_info fx instead", "estimator"),
    "view": P("", "how a frame is fed: empty = the model's own, full (whole image resized) or "
              "focal_crop (the centred window whose focal matches training; outside pixels take "
              "the window's border values)", "estimator", choices=("",) + VIEWS),
    "flip_average": P(False, "also run the network on the mirror image and average the two "
                      "depths (twice the inference time)", "estimator"),
    # --- stages after inference
    "colored_min": P(0.0, "depth/colored range start in m (min = max = 0: automatic)",
                     "pipeline", range=(0.0, 1000.0, 0.0)),
    "colored_max": P(0.0, "depth/colored range end in m", "pipeline", range=(0.0, 1000.0, 0.0)),
    "cloud_decimation": P(1, "keep every N-th pixel in the point clouds", "pipeline",
                          range=(1, 16, 1)),
    "cloud_rgb": P(True, "add the packed rgb field to points", "pipeline"),
    "obstacle_exclude_classes": P(["Sky", "Road", "Sidewalk", "Lanemark"],
                                  "class names set to NaN in points/obstacles (segmentation "
                                  "models)", "pipeline"),
    # --- inputs and outputs (read at start)
    "use_compressed": P(False, "subscribe image/compressed instead of image", read_only=True),
    "max_image_pixels": P(MAX_DECODED_PIXELS, "compressed images whose header claims more "
                          "pixels are skipped (decompression bombs)", range=(1, 2**31 - 1, 0)),
    "input_reliability": P("best_effort", "QoS reliability of the subscriptions",
                           choices=RELIABILITY_CHOICES, read_only=True),
    "input_depth": P(1, "QoS history depth of the subscriptions", range=(1, 100, 1),
                     read_only=True),
    "output_reliability": P("reliable", "QoS reliability of the publishers (REP 2003: "
                            "reliable; subscribers choose best effort)",
                            choices=RELIABILITY_CHOICES, read_only=True),
    "output_depth": P(1, "QoS history depth of the publishers", range=(1, 100, 1),
                      read_only=True),
    # --- camera_info pairing and frames
    "camera_info_max_age": P(0.5, "no camera_info with the image's stamp: use the newest one "
                             "within this many seconds of it (0: exact stamps only)",
                             range=(0.0, 60.0, 0.0)),
    "frame_id": P("", "output frame_id; empty = the input image's (set it to fix an empty or "
                  "wrong camera frame)"),
    # --- logging and diagnostics
    "stats_period": P(5.0, "seconds between status lines (0 disables)", range=(0.0, 3600.0, 0.0),
                      read_only=True),
    "warn_throttle": P(5.0, "minimum seconds between two warnings of one kind",
                       range=(0.0, 3600.0, 0.0)),
    "stats_file": P("", "write final counters and latencies as JSON here on shutdown"),
    "diagnostics_period": P(1.0, "seconds between /diagnostics messages (0 disables)",
                            range=(0.0, 60.0, 0.0), read_only=True),
    "diag_input_timeout": P(3.0, "WARN when no input image arrived for this many seconds",
                            range=(0.0, 3600.0, 0.0)),
    "diag_drop_warn": P(0.5, "WARN when more than this fraction of the received frames was "
                        "dropped (the network is slower than the camera)", range=(0.0, 1.0, 0.0)),
    "diag_skip_warn": P(0.1, "WARN when more than this fraction of the received frames was "
                        "skipped for bad input", range=(0.0, 1.0, 0.0)),
    "diag_latency_warn_ms": P(500.0, "WARN when the p95 frame latency exceeds this (0 "
                              "disables)", range=(0.0, 100000.0, 0.0)),
    # --- metric scale (ros/scale_source.py; docs/metric_scale.md). Ranges here, combinations
    # (ground_plane needs camera_height, smoothing < 1, ...) in scale_reasons
    "scale_source": P("none", "none | fixed | sparse_depth | scan | ground_plane", "scale",
                      choices=SCALE_SOURCES),
    "fixed_scale": P(1.0, "fixed: depth = fixed_scale * network depth (> 0)", "scale",
                     range=(0.0, 1e6, 0.0)),
    "camera_height": P(0.0, "ground_plane: optical centre above the floor, m (> 0)", "scale",
                       range=(0.0, 100.0, 0.0)),
    "expected_pitch": P(0.0, "ground_plane: camera pitch in degrees, positive = looking up",
                        "scale", range=(-90.0, 90.0, 0.0)),
    "max_tilt": P(15.0, "ground_plane: largest angle (deg, (0, 90]) of the floor normal from "
                  "the expected up", "scale", range=(0.0, 90.0, 0.0)),
    "ground_region": P(0.4, "ground_plane: fraction (0, 1] of the image rows, from the bottom, "
                       "searched", "scale", range=(0.0, 1.0, 0.0)),
    "ground_min_fraction": P(0.15, "ground_plane: smallest share of the region on the floor",
                             "scale", range=(0.0, 1.0, 0.0)),
    "scale_min_support": P(16, "fewest agreeing references (floor: 4x as many points)", "scale",
                           range=(1, 1000000, 1)),
    "scale_inlier_threshold": P(0.3, "largest relative residual of an agreeing reference (> 0)",
                                "scale", range=(0.0, 10.0, 0.0)),
    "ground_inlier_threshold": P(0.05, "ground_plane: largest point-to-floor distance of a floor "
                                 "point, as a fraction of camera_height (> 0)", "scale",
                                 range=(0.0, 1.0, 0.0)),
    "scale_min_inlier_fraction": P(0.3, "smallest share of the references that must agree",
                                   "scale", range=(0.0, 1.0, 0.0)),
    "scale_min_inverse_spread": P(0.25, "relative models (scale + shift): smallest spread "
                                  "(q90 - q10) / q50 of the agreeing references' inverse depth; "
                                  "narrower = degenerate", "scale", range=(0.0, 10.0, 0.0)),
    "scale_smoothing": P(0.5, "weight of the previous scale in [0, 1) (0 = every frame's own "
                         "fit)", "scale", range=(0.0, 1.0, 0.0)),
    "scale_jump_ratio": P(1.5, "a fit further than this ratio (> 1) from the scale in use is a "
                          "new scale", "scale", range=(1.0, 100.0, 0.0)),
    "scale_jump_confirm_frames": P(3, "agreeing fits in a row needed before a new scale (or the "
                                   "first one) is applied; the previous one is held meanwhile",
                                   "scale", range=(1, 100, 1)),
    "scale_max_age": P(2.0, "seconds (image stamps) the last good scale is kept, then "
                       "scale_fallback", "scale", range=(0.0, 3600.0, 0.0)),
    "scale_fallback": P("skip", "skip (no depth: the safe choice) | unscaled (the network's own "
                        "depth)", "scale", choices=SCALE_FALLBACKS),
    "reference_stamp_tolerance": P(0.05, "s between an image and its paired reference", "scale",
                                   range=(0.0, 10.0, 0.0)),
    "reference_max_wait": P(0.15, "s an image is held for a reference that has not arrived yet "
                            "(a lidar stamped at the sweep start comes later)", "scale",
                            range=(0.0, 1.0, 0.0)),
    "scan_xyz": P([0.0, 0.0, 0.0], "scan, scan_use_tf false: scanner position in the camera "
                  "optical frame, m", "scale"),
    "scan_rpy": P(list(LEVEL_SCANNER_RPY), "scan, scan_use_tf false: scanner roll, pitch, yaw in "
                  "the camera optical frame, rad (default: a level scanner at a level camera)",
                  "scale"),
    "scan_use_tf": P(True, "scan and sparse_points in another frame: the sensor pose from tf2 "
                     "(a failed lookup rejects the reference: no_transform); false: scan_xyz / "
                     "scan_rpy", "scale"),
}
del P

ESTIMATOR_PARAMS = tuple(n for n, s in PARAMETERS.items() if s.group == "estimator")
PIPELINE_PARAMS = tuple(n for n, s in PARAMETERS.items() if s.group == "pipeline")
SCALE_PARAMS = tuple(n for n, s in PARAMETERS.items() if s.group == "scale")
#: Scale parameter -> :class:`~mono_depth_ros.core.scale.ScaleConfig` field (the others are
#: read by ``ros.scale_source``: pairing and the sensor pose).
SCALE_FIELDS = {"scale_source": "source", "fixed_scale": "fixed_scale",
                "camera_height": "camera_height", "expected_pitch": "expected_pitch_deg",
                "max_tilt": "max_tilt_deg", "ground_region": "ground_region",
                "ground_min_fraction": "ground_min_fraction", "scale_min_support": "min_support",
                "scale_inlier_threshold": "inlier_threshold",
                "ground_inlier_threshold": "ground_inlier_threshold",
                "scale_min_inlier_fraction": "min_inlier_fraction",
                "scale_min_inverse_spread": "min_inverse_spread", "scale_smoothing": "smoothing",
                "scale_jump_ratio": "jump_ratio", "scale_jump_confirm_frames": "jump_confirm",
                "scale_max_age": "max_age", "scale_fallback": "fallback"}


class ConfigError(ValueError):
    """A configuration the node cannot run; ``reasons`` lists every problem found."""

    def __init__(self, reasons: Sequence[str]):
        self.reasons = list(reasons)
        super().__init__("; ".join(self.reasons))


def defaults() -> Dict[str, Any]:
    """``{name: default}`` of every parameter (lists copied)."""
    return {n: list(s.default) if isinstance(s.default, list) else s.default
            for n, s in PARAMETERS.items()}


def _check_value(name: str, value: Any) -> Optional[str]:
    spec = PARAMETERS[name]
    if isinstance(spec.default, bool) != isinstance(value, bool) or (
            isinstance(spec.default, (int, float)) and not isinstance(value, (int, float))) or (
            isinstance(spec.default, str) and not isinstance(value, str)):
        return f"{name} must be a {type(spec.default).__name__}, got {value!r}"
    if spec.choices is not None and value not in spec.choices:
        return f"{name} must be one of {', '.join(spec.choices)}, got {value!r}"
    if spec.range is not None:
        lo, hi, step = spec.range
        if not lo <= value <= hi:
            return f"{name} must be within [{lo}, {hi}], got {value}"
        if step and (value - lo) % step:
            return f"{name} must be {lo} or a multiple of {step}, got {value}"
    return None


def check_device(device: str) -> Tuple[Optional[torch.device], Optional[str]]:
    """Resolve ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``) on this machine
    (:func:`~mono_depth_ros.inference.estimator.select_device`).

    Returns:
        ``(device, None)``, or ``(None, reason)`` when it is malformed or not available.
    """
    try:
        return select_device(device)[0], None
    except ValueError as exc:
        return None, str(exc)


def check_precision(precision: str, device: torch.device) -> Optional[str]:
    """Why ``precision`` cannot run on ``device``, or None: the node refuses what the estimator
    would silently run in fp32 (:func:`~mono_depth_ros.inference.estimator.precision_problem`)."""
    try:
        problem = precision_problem(precision, device)
    except ValueError as exc:
        return str(exc)
    return f"{problem} (use fp32)" if problem else None


def check_checkpoint(path: str, model: str, what: str = "checkpoint") -> Optional[str]:
    """Why the weights file ``path`` cannot be used for ``model``, or None.

    The file must exist, load with ``torch.load(weights_only=True)`` (plain tensors and
    containers: a pickle that would run code is refused) and be a checkpoint written by
    ``save_checkpoint`` for ``model``.
    """
    p = Path(path)
    if not p.is_file():
        return f"{what} {path!r} does not exist"
    try:
        ckpt = load_checkpoint(p)
    except ValueError as exc:  # not plain data (refused, never run), corrupt, or not a dict
        return f"{what} {path!r} is not a loadable weights file ({exc})"
    if "state_dict" not in ckpt:
        return f"{what} {path!r} is not a mono_depth_ros checkpoint (no state_dict)"
    if not checkpoint_fits(model, ckpt.get("model")):
        return f"{what} {path!r} holds model {ckpt.get('model')!r}, not {model!r}"
    return None


def check_external_checkpoint(path: str, model: str) -> Optional[str]:
    """Why ``path`` cannot be the weights of ``model``, a model that loads its own kind of
    checkpoint (a Hugging Face folder or hub id, an ``.onnx`` file), or None. Only what can be
    told without loading: an existing ``.onnx`` file for ``onnx``; an existing folder, or a
    well-formed ``hf:owner/name[@revision]`` hub id, for the Hugging Face models (loading then
    says more). A path that does not exist is never taken for a hub id."""
    p = Path(path).expanduser()
    if model == "onnx":
        return None if p.is_file() else f"checkpoint {path!r} (an .onnx file) does not exist"
    if is_hub_id(path):
        try:
            parse_hub_id(path)
        except ValueError as exc:
            return f"checkpoint: {exc}"
        return None
    if p.is_dir():
        return None
    what = "is not a folder" if p.exists() else "does not exist"
    return (f"checkpoint {path!r} {what}: give a save_pretrained folder, or a hub id written "
            "hf:owner/name[@revision]")


def _onnx_size_reasons(v: Mapping[str, Any]) -> List[str]:
    """An ``onnx`` model's input size set (non-zero) that its file's fixed shape refuses."""
    size = (v["input_height"], v["input_width"])
    if v["model"] != "onnx" or not any(size) or not Path(v["checkpoint"]).expanduser().is_file():
        return []
    try:
        problem = input_size_problem(Path(v["checkpoint"]).expanduser(), size)
    except ValueError as exc:
        return [f"checkpoint: {exc}"]
    return [problem] if problem else []


def _backend_reasons(v: Mapping[str, Any], device: torch.device) -> List[str]:
    """The backend that would run (``auto`` resolved) refused for this device, model or
    precision (e.g. ``onnxruntime``, which runs fp32 graphs, with bf16)."""
    try:
        backend, _ = resolve_backend(v["backend"], v["model"], device, trained=True,
                                     stateful=v["stateful"], onnx_file=v["model"] == "onnx",
                                     precision=v["precision"])
    except ValueError as exc:
        return [str(exc)]
    problem = backend_precision_problem(backend, v["precision"])
    return [problem] if problem else []


def _size_reasons(v: Mapping[str, Any]) -> List[str]:
    """Network sizes that are not multiples of the model's multiple (32 for the package's
    networks; Hugging Face models round any target size themselves)."""
    if v["model"] not in list_models():
        return []
    multiple = get_spec(v["model"]).preprocessing.size_multiple
    return [f"{side} must be 0 or a multiple of {multiple} for {v['model']}, got {v[side]}"
            for side in ("input_width", "input_height")
            if isinstance(v[side], int) and not isinstance(v[side], bool) and v[side] % multiple]


def validate_config(values: Mapping[str, Any]) -> List[str]:
    """Every reason why the configuration ``values`` cannot run (empty list: it can).

    Args:
        values: ``{parameter: value}`` for every name of :data:`PARAMETERS` (missing names take
            their defaults; names not in the table are ignored, so other features can add
            parameters of their own).

    Returns:
        Human-readable reasons, each naming the parameter.
    """
    v = {**defaults(), **values}
    reasons = [r for r in (_check_value(n, v[n]) for n in PARAMETERS) if r]
    reasons += _size_reasons(v)
    if reasons:  # the checks below assume well-typed, in-range values
        return reasons
    reasons += scale_reasons(v)
    models = list_models()
    if v["model"] not in models:
        return [f"unknown model {v['model']!r}; valid: {', '.join(models)}"]
    spec = get_spec(v["model"])
    dev, why = check_device(v["device"])
    if why:
        reasons.append(why)
    else:
        why = check_precision(v["precision"], dev)
        if why:
            reasons.append(why)
        else:
            reasons += _backend_reasons(v, dev)
    lo = v["min_depth"] or spec.depth_range[0]
    hi = v["max_depth"] or spec.depth_range[1]
    if not 0 <= lo < hi:
        reasons.append(f"need 0 <= min_depth < max_depth, got min_depth {lo} and max_depth {hi} "
                       f"(0 = the model's {spec.depth_range[0]} / {spec.depth_range[1]})")
    cmin, cmax = v["colored_min"], v["colored_max"]
    if (cmin, cmax) != (0.0, 0.0) and not cmin < cmax:
        reasons.append(f"need colored_min < colored_max (or both 0: automatic), got {cmin}, {cmax}")
    if loads_checkpoint(v["model"]):
        if v["checkpoint"]:
            why = check_external_checkpoint(v["checkpoint"], v["model"])
            reasons += [why] if why else _onnx_size_reasons(v)
        elif v["model"] == "onnx":
            reasons.append("model onnx needs checkpoint:=FILE.onnx")
    elif v["checkpoint"]:
        reasons += [r for r in [check_checkpoint(v["checkpoint"], v["model"])] if r]
    else:
        try:  # imported third-party weights: present, or one line saying how to import them
            default_checkpoint(v["model"])
        except FileNotFoundError as exc:
            reasons.append(str(exc))
    if v["seg_checkpoint"]:
        reasons += [r for r in [check_checkpoint(v["seg_checkpoint"], SEMANTIC_FRONTEND,
                                                 "seg_checkpoint")] if r]
    return reasons


def estimator_kwargs(values: Mapping[str, Any]) -> Dict[str, Any]:
    """:class:`DepthEstimator` arguments from a configuration (0 / empty = model default)."""
    v = {**defaults(), **values}
    w, h = v["input_width"], v["input_height"]
    size = None
    if w or h:
        dh, dw = get_spec(v["model"]).input_size
        if v["model"] == "onnx":  # the other side: the file's own, not the registry's
            fh, fw = file_input_hw(Path(v["checkpoint"]).expanduser())
            dh, dw = fh or dh, fw or dw
        size = (h or dh, w or dw)
    return dict(model=v["model"], checkpoint=v["checkpoint"] or None,
                seg_checkpoint=v["seg_checkpoint"] or None, device=v["device"],
                precision=v["precision"], input_size=size,
                min_depth=v["min_depth"] or None, max_depth=v["max_depth"] or None,
                stateful=v["stateful"], backend=v["backend"],
                use_camera_focal=v["use_camera_focal"], device_path=v["device_path"],
                view=v["view"] or None, flip_average=v["flip_average"])


def build_estimator(values: Mapping[str, Any]) -> DepthEstimator:
    """Validate ``values`` and build the network they describe.

    Raises:
        ConfigError: :func:`validate_config` found problems, or building failed (e.g. the
            checkpoint's weights do not fit the architecture); the message says why.
    """
    reasons = validate_config(values)
    if reasons:
        raise ConfigError(reasons)
    try:
        return DepthEstimator(**estimator_kwargs(values))
    except Exception as exc:  # noqa: BLE001 - reported as the reason of the refusal
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ConfigError([f"cannot build {values.get('model', 'the model')!r}: "
                           f"{type(exc).__name__}: {first[:300]}"]) from exc


def scale_config(values: Mapping[str, Any]) -> ScaleConfig:
    """:class:`~mono_depth_ros.core.scale.ScaleConfig` from a configuration (the ``scale``
    group; missing names take their defaults).

    Raises:
        ValueError: a value or combination that cannot run (the message names the parameter).
    """
    v = {**defaults(), **values}
    return ScaleConfig(**{field: v[name] for name, field in SCALE_FIELDS.items()})


def tf2_available() -> bool:
    """Whether ``tf2_ros`` can be imported here (looked up, not imported: no ROS import in
    this module)."""
    import importlib.util
    return importlib.util.find_spec("tf2_ros") is not None


def scale_reasons(values: Mapping[str, Any]) -> List[str]:
    """Why the scale parameters of ``values`` cannot run (empty: they can): the combination
    checks of :class:`~mono_depth_ros.core.scale.ScaleConfig` (``ground_plane`` without
    ``camera_height``, ``scale_smoothing`` 1 or more, ...), three values each in ``scan_xyz``
    / ``scan_rpy``, and ``scan`` with ``scan_use_tf`` where ``tf2_ros`` is not installed."""
    v = {**defaults(), **values}
    reasons = []
    try:
        scale_config(v)
    except (ValueError, TypeError) as exc:
        reasons.append(str(exc))
    try:
        pose_matrix(v["scan_xyz"], v["scan_rpy"])
    except (ValueError, TypeError) as exc:
        reasons.append(f"scan_xyz / scan_rpy: {exc}")
    if v["scale_source"] == "scan" and v["scan_use_tf"] and not tf2_available():
        reasons.append("scale_source scan with scan_use_tf needs tf2_ros, which is not installed "
                       "here: set scan_use_tf:=false and the scanner pose in scan_xyz / scan_rpy")
    return reasons


def pipeline_config(values: Mapping[str, Any]) -> PipelineConfig:
    """:class:`PipelineConfig` from a configuration."""
    v = {**defaults(), **values}
    return PipelineConfig(cloud_decimation=int(v["cloud_decimation"]),
                          cloud_rgb=bool(v["cloud_rgb"]),
                          colored_range=(float(v["colored_min"]), float(v["colored_max"])),
                          obstacle_exclude_classes=tuple(v["obstacle_exclude_classes"]))


def release_device_memory(device: Optional[torch.device] = None) -> None:
    """Collect freed tensors and give cached CUDA memory back to the driver (after dropping
    every reference to a network)."""
    gc.collect()
    if (device is None or device.type == "cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
