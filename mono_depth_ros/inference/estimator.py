"""Inference runtime: one prediction API for the node, the CLI and the evaluator (ROS-free).

``DepthEstimator.predict(rgb, K)`` takes an ``H x W x 3`` uint8 RGB image and its ``3 x 3``
intrinsics and returns metric depth (``H x W`` float32, metres, NaN invalid, REP 118) at the
input resolution, plus class ids for segmentation models. Everything model-specific comes from
the model's :class:`~mono_depth_ros.models.spec.ModelSpec`: input size, normalisation, output
kind (converted to metres with the camera's focal length), focal rescaling and whether the
model needs OHES planes from ``unet_seg`` first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..core.paths import imported_weights_dir, shipped_file
from ..models import create_model, get_spec
from ..models.registry import loads_checkpoint
from ..models.spec import ModelSpec, output_to_metric_depth
from .backends import backend_precision_problem, make_runner, resolve_backend
from .device_path import DeviceFrame
from .preprocess import prepare, restore
from ..defaults import DEFAULT_MODEL

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
#: ``device_path`` choices: the whole frame on the device (:mod:`.device_path`) on CUDA only
#: (``auto``), always, or never (host pre/post-processing, the faster one on a CPU).
DEVICE_PATH_CHOICES = ("auto", "on", "off")
#: The segmentation network that feeds models with ``needs_semantic_input``.
SEMANTIC_FRONTEND = "unet_seg"


@dataclass
class Prediction:
    """Result of :meth:`DepthEstimator.predict`.

    Attributes:
        depth: ``H x W`` float32 metres, NaN where invalid or outside [min_depth, max_depth]
            (what the node publishes, REP 118); ``None`` for relative models (no metric scale).
        labels: ``H x W`` uint8 class ids for segmentation models, else ``None``.
        timings: milliseconds of ``preprocess``, ``inference`` and ``postprocess``.
        unmasked: ``H x W`` float32 metres before the range mask (``inf`` where the network gave
            no positive value), for evaluation protocols that clip instead of dropping; ``None``
            when the model has no depth output.
        relative: ``H x W`` float32 affine-invariant inverse depth (unitless, larger = nearer,
            NaN invalid) of relative models (``spec.is_relative``), else ``None``.
        points: organized cloud ``ceil(H/d) x ceil(W/d) x (3|4)`` float32 (x, y, z[, packed
            rgb], optical frame) of ``depth``, built on the device when asked for
            (``cloud_decimation``) and the estimator runs the device path; else ``None``.
    """

    depth: Optional[np.ndarray]
    labels: Optional[np.ndarray] = None
    timings: Dict[str, float] = field(default_factory=dict)
    unmasked: Optional[np.ndarray] = None
    relative: Optional[np.ndarray] = None
    points: Optional[np.ndarray] = None


def mirror_average(out, mirrored):
    """Mean of a network's output for an image and for its mirror image (``mirrored``, mirrored
    back along the width): ``B x C x H x W`` tensors, or dict outputs whose ``depth`` map is
    averaged (the image's other entries kept). Test-time flip averaging (``flip_average``) and
    the trainer's flip-averaged teacher and validation share it."""
    if isinstance(out, dict):
        if out.get("depth") is None:
            return out
        return {**out, "depth": 0.5 * (out["depth"] + mirrored["depth"].flip(-1))}
    return 0.5 * (out + mirrored.flip(-1))


def default_checkpoint(model: str) -> Optional[Path]:
    """Default weights for ``model``: shipped ones (``models/<spec.extras['default_checkpoint']>``)
    if present, or for third-party weights that are imported, never shipped
    (``spec.extras['imported_weights']``), the file in
    :func:`~mono_depth_ros.core.paths.imported_weights_dir`.

    Raises:
        FileNotFoundError: imported weights that were not imported yet (one line saying how).
    """
    extras = get_spec(model).extras
    if extras.get("imported_weights"):
        path = imported_weights_dir() / extras["imported_weights"]
        if not path.is_file():
            raise FileNotFoundError(f"{model}: no imported weights at {path}; import them with "
                                    f"`{extras['import_hint']}` or pass checkpoint:=FILE")
        return path
    return shipped_file(extras.get("default_checkpoint"))


def default_component_checkpoints(model: str) -> Dict[str, str]:
    """Factory arguments naming the shipped weights of a model assembled from separately trained
    parts (``spec.extras['default_component_checkpoints']``, e.g. ``ssegdep_net`` = ``unet_seg``
    + ``cnn3d_up``); empty unless every file is present."""
    parts = get_spec(model).extras.get("default_component_checkpoints") or {}
    paths = {arg: shipped_file(name) for arg, name in parts.items()}
    return {arg: str(p) for arg, p in paths.items()} if paths and all(paths.values()) else {}


def select_device(device: str) -> Tuple[torch.device, List[str]]:
    """Resolve ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` to a torch device of this machine.

    Returns:
        ``(device, warnings)``; ``auto`` without CUDA gives CPU and one warning.

    Raises:
        ValueError: an unknown or unsupported device string, CUDA asked for but not available,
            or a CUDA index this machine does not have.
    """
    warnings: List[str] = []
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda"), warnings
        warnings.append("CUDA not available: running on CPU")
        return torch.device("cpu"), warnings
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from exc
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}: use auto, cpu, cuda or cuda:N")
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ValueError(f"device {device!r} requested but CUDA is not available")
        if dev.index is not None and dev.index >= n:
            raise ValueError(f"device {device!r} does not exist: this machine has {n} CUDA "
                             "device(s)")
    return dev, warnings


def precision_problem(precision: str, device: torch.device) -> Optional[str]:
    """Why ``precision`` cannot run on ``device`` (fp16 on a CPU, bf16 on a GPU without it), or
    None. The estimator falls back to fp32 with this as a warning; the node refuses it.

    Raises:
        ValueError: unknown precision name.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        return f"precision fp16 needs a CUDA device; {device} has no fp16 kernels"
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return f"precision bf16 is not supported by GPU {device}"
    return None


def select_precision(precision: str, device: torch.device) -> Tuple[torch.dtype, List[str]]:
    """Resolve ``fp32`` / ``fp16`` / ``bf16`` for ``device``, falling back to fp32 with a warning
    where the device lacks support (:func:`precision_problem`).

    Raises:
        ValueError: unknown precision name.
    """
    problem = precision_problem(precision, device)
    if problem:
        return torch.float32, [f"{problem}: using fp32"]
    return PRECISIONS[precision], []


class DepthEstimator:
    """Runs a registered model on camera images and returns metric depth.

    Args:
        model: Registered model name (see ``list_models()``).
        checkpoint: Weights file; ``None`` uses the shipped default for the model if any.
        device: ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda[:N]``.
        precision: ``fp32``, ``fp16`` or ``bf16`` (autocast; fp32 fallback where unsupported).
        input_size: ``(height, width)`` fed to the network; ``None`` keeps the spec's.
        min_depth, max_depth: valid output range in metres; ``None`` keeps the spec's.
        seg_checkpoint: weights for the ``unet_seg`` front end of semantic-input models.
        stateful: keep recurrent state across frames for models that have it.
        model_kwargs: architecture options passed to ``create_model``.
        backend: one of :data:`~mono_depth_ros.inference.backends.CHOICES`: ``auto`` (ONNX
            Runtime on the CPU where measured faster), ``torch``, ``onnxruntime``, or on CUDA
            ``cuda_graph`` / ``tensorrt``.
        use_camera_focal: models that predict their focal length (Depth Pro) use the camera's
            ``fx`` from ``K`` instead (a robot knows its camera); False uses the prediction.
        device_path: ``auto`` (on for CUDA), ``on`` or ``off``: pre-/post-processing and the
            cloud on the model's device with one device-to-host copy
            (:class:`~mono_depth_ros.inference.device_path.DeviceFrame`).
        view: ``full`` or ``focal_crop`` (:class:`~mono_depth_ros.models.spec.Preprocessing`);
            ``None`` keeps the model's.
        flip_average: test-time flip averaging: run the network on the image and on its mirror
            image and average the two depth maps (the mirror's mirrored back). Twice the
            inference time; it cancels left/right biases of the network.

    Export-based backends (``onnxruntime``, ``tensorrt``) export and load their graph here, when
    the estimator is built, for the input shape the model always gets (every model whose resize
    rule is ``stretch``; keep-aspect models prepare each new shape on its first frame). A failure
    there (export error, unwritable cache folder, ONNX Runtime refusing the graph) runs PyTorch
    instead with one warning and the reason in :attr:`backend_fallback`, never a failing frame.

    Attributes:
        spec: the model's contract; ``warnings``: messages for the caller to log once;
        ``precision``: the precision that runs (``fp32`` after a fallback, e.g. fp16 on a CPU or
        bf16 with the fp32-only ``onnxruntime`` backend);
        ``backend``: the backend in use (``torch`` after a fallback); ``builds_clouds``:
        ``predict`` can build the cloud on the device.

    Raises:
        UnknownModelError, FileNotFoundError, ValueError: from model creation / device choice.
    """

    def __init__(self, model: str = DEFAULT_MODEL, checkpoint: Optional[str] = None,
                 device: str = "auto", precision: str = "fp32",
                 input_size: Optional[Tuple[int, int]] = None,
                 min_depth: Optional[float] = None, max_depth: Optional[float] = None,
                 seg_checkpoint: Optional[str] = None, stateful: bool = False,
                 model_kwargs: Optional[dict] = None, backend: str = "auto",
                 use_camera_focal: bool = True, device_path: str = "auto",
                 view: Optional[str] = None, flip_average: bool = False):
        self.device, self.warnings = select_device(device)
        self.dtype, more = select_precision(precision, self.device)
        self.precision = next(k for k, v in PRECISIONS.items() if v == self.dtype)
        self.warnings += more
        self.use_camera_focal = bool(use_camera_focal)
        self.flip_average = bool(flip_average)
        model_kwargs = dict(model_kwargs or {})
        if checkpoint in (None, "") and loads_checkpoint(model):
            checkpoint = None  # the model finds its own weights (hub id) or asks for a file
        elif checkpoint in (None, ""):
            checkpoint = default_checkpoint(model)
            parts = {} if checkpoint else default_component_checkpoints(model)
            model_kwargs = {**parts, **model_kwargs}
            if checkpoint is None and not parts:
                self.warnings.append(
                    f"no trained weights for {model!r}: output depth is NOT meaningful "
                    "(pass checkpoint:=FILE)")
        self.checkpoint = str(checkpoint) if checkpoint else (
            " + ".join(v for k, v in model_kwargs.items() if k.endswith("checkpoint")) or None)
        self.net = create_model(model, checkpoint=checkpoint, **model_kwargs)
        self.spec: ModelSpec = self.net.spec
        if view:  # how the frame is fed (Preprocessing.view); validated by Preprocessing
            self.spec = self.spec.replace(preprocessing=dataclasses.replace(
                self.spec.preprocessing, view=view))
            self.net.spec = self.spec
        if self.checkpoint is None and self.spec.extras.get("hub_id"):
            self.checkpoint = self.spec.extras["hub_id"]
        if hasattr(self.net, "stateful"):
            self.net.stateful = bool(stateful)
        self.net.to(self.device).eval()
        self.frontend = None
        if self.spec.needs_semantic_input:
            seg_ckpt = seg_checkpoint or default_checkpoint(SEMANTIC_FRONTEND)
            self.frontend = create_model(SEMANTIC_FRONTEND, checkpoint=seg_ckpt).to(self.device)
        self.input_size = tuple(input_size) if input_size else tuple(self.spec.input_size)
        multiple = self.spec.preprocessing.size_multiple
        if any(s <= 0 or s % multiple for s in self.input_size):
            raise ValueError(f"input_size must be positive multiples of {multiple}, "
                             f"got {self.input_size}")
        size_check = getattr(self.net, "input_size_problem", None)  # a file's fixed shape
        problem = size_check(self.input_size) if size_check is not None else None
        if problem:
            raise ValueError(problem)
        self._backend, more = resolve_backend(backend, model, self.device,
                                              trained=self.checkpoint is not None,
                                              stateful=bool(getattr(self.net, "stateful", False)),
                                              onnx_file=hasattr(self.net, "file_spec"),
                                              precision=self.precision)
        self.warnings += more
        problem = backend_precision_problem(self._backend, self.precision)
        if problem:
            self.warnings.append(f"{problem}: using fp32")
            self.dtype, self.precision = torch.float32, "fp32"
        self._run = make_runner(self._backend, self.net, self.device, self.precision)
        self._prepare_backend()
        lo, hi = self.spec.depth_range
        self.min_depth = float(lo if min_depth is None else min_depth)
        self.max_depth = float(hi if max_depth is None else max_depth)
        if not 0 <= self.min_depth < self.max_depth:
            raise ValueError(f"need 0 <= min_depth < max_depth, got {self.min_depth}, {self.max_depth}")
        if device_path not in DEVICE_PATH_CHOICES:
            raise ValueError(f"device_path must be one of {DEVICE_PATH_CHOICES}, got {device_path!r}")
        on = device_path == "on" or (device_path == "auto" and self.device.type == "cuda")
        self._device_frame = DeviceFrame(self.device, self.min_depth, self.max_depth) if on else None

    def _network_input(self, x: torch.Tensor, prepare_for
                       ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(input, segmentation)``: ``x`` (``1 x 3 x h x w``) with the front end's class
        scores (``1 x classes x h' x w'``, also returned) appended for models that need them;
        ``prepare_for(spec, size)`` prepares the image for the front end."""
        if self.frontend is None:
            return x, None
        fs = self.frontend.spec
        seg = self.frontend(prepare_for(fs, fs.input_size).x)["segmentation"]
        seg_in = F.interpolate(seg.float(), size=x.shape[-2:], mode="bilinear",
                               align_corners=False)
        return torch.cat([x, seg_in.to(x.dtype)], dim=1), seg

    @torch.inference_mode()
    def _prepare_backend(self) -> None:
        """Export and load the graph of an export-based backend now (configure), outside
        autocast, for the one input shape of a ``stretch`` model; fall back to PyTorch with one
        warning when that fails (:attr:`backend_fallback`). A model whose input shape follows
        the image prepares each shape on its first frame (same fallback)."""
        prepare_shape = getattr(self._run, "prepare_shape", None)
        if prepare_shape is None or self.spec.preprocessing.resize != "stretch":
            return
        blank = np.zeros((*self.input_size, 3), dtype=np.uint8)
        fx = float(self.input_size[1])  # any focal: a view window is resized to the input size
        x = prepare(blank, self.spec, self.input_size, self.device, fx).x
        x = self._network_input(x, lambda s, size: prepare(blank, s, size, self.device, fx))[0]
        prepare_shape(x)
        if self.backend_fallback:
            self.warnings.append(self.backend_fallback)

    @property
    def backend(self) -> str:
        """The backend in use: the one asked for (after ``auto``), or ``torch`` after a
        fallback (:attr:`backend_fallback`)."""
        return "torch" if self.backend_fallback else self._backend

    @property
    def backend_fallback(self) -> Optional[str]:
        """Why the export-based backend fell back to PyTorch (export error, unwritable cache,
        graph refused), or None while it runs as asked. For the node's ``/diagnostics``."""
        return getattr(self._run, "fallback_reason", None)

    @property
    def builds_clouds(self) -> bool:
        """``predict(..., cloud_decimation=N)`` returns the cloud built on the device."""
        return self._device_frame is not None

    @property
    def name(self) -> str:
        return self.spec.name

    def segmentation_info(self, key: str):
        """``spec.extras[key]`` (``"palette"``: RGB per class id, ``"classes"``: class names) of
        whichever network produces this estimator's labels (the model or its front end), or None."""
        for net in (self.net, self.frontend):
            if net is not None and net.spec.extras.get(key) is not None:
                return net.spec.extras[key]
        return None

    @property
    def palette(self) -> Optional[list]:
        """RGB colour per class id for this model's labels, or None."""
        return self.segmentation_info("palette")

    def reset_state(self) -> None:
        """Forget recurrent state (call on a camera jump or a new sequence)."""
        if hasattr(self.net, "reset_state"):
            self.net.reset_state()

    def _autocast(self):
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        # no weight-cast cache: a captured CUDA graph must not hold tensors of a cache that
        # autocast frees when the context exits
        return torch.autocast(self.device.type, dtype=self.dtype,
                              cache_enabled=self._backend != "cuda_graph")

    @torch.inference_mode()
    def predict(self, rgb: np.ndarray, K: np.ndarray, cloud_decimation: Optional[int] = None,
                cloud_rgb: bool = True) -> Prediction:
        """Predict metric depth (or relative inverse depth, for relative models) for one image.

        Args:
            rgb: ``H x W x 3`` uint8 RGB image.
            K: ``3 x 3`` intrinsics of that image (fx used for output-kind conversion and focal
                rescaling).
            cloud_decimation: with the device path (:attr:`builds_clouds`), also build the
                organized cloud keeping every N-th pixel (``Prediction.points``); ignored
                otherwise.
            cloud_rgb: the device cloud gets the packed ``rgb`` field.

        Returns:
            :class:`Prediction` at the input resolution.

        Raises:
            ValueError: ``rgb`` is not ``H x W x 3`` uint8 or ``K`` has a non-positive focal.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected H x W x 3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
        H, W = rgb.shape[:2]
        dev = self._device_frame
        t0 = time.perf_counter()
        img = dev.upload(rgb) if dev else rgb

        fx = float(K[0, 0])

        def _prepare(spec, size):
            return (dev.prepare(img, spec, size, fx) if dev
                    else prepare(rgb, spec, size, self.device, fx))

        prepared = _prepare(self.spec, self.input_size)
        x = prepared.x
        t1 = time.perf_counter()
        seg, focal_ratio = None, None
        with self._autocast():
            x, seg = self._network_input(x, _prepare)
            out = self._run(x)
            if self.flip_average:
                out = mirror_average(out, self._run(x.flip(-1)))
        if isinstance(out, dict):
            seg = out.get("segmentation", seg)
            focal_ratio = out.get("focal_ratio")
            out = out.get("depth")
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        depth = relative = unmasked = points = None
        if out is None:
            depth = np.full((H, W), np.nan, dtype=np.float32)
        elif self.spec.is_relative:
            relative = restore(out, prepared, (H, W), self.spec)[0, 0].cpu().numpy()
            relative[~np.isfinite(relative)] = np.nan
        else:
            if focal_ratio is not None and not self.use_camera_focal:
                fx = float(focal_ratio.reshape(-1)[0]) * W  # the model's own field of view
            if dev:
                depth, unmasked, points = dev.finish(
                    out, prepared, self.spec, K, (H, W), fx, img if cloud_rgb else None,
                    cloud_decimation)
            else:
                raw = restore(out, prepared, (H, W), self.spec)[0, 0].cpu().numpy()
                unmasked = output_to_metric_depth(raw, self.spec, fx=fx,
                                                  width=prepared.seen_width(W))
                with np.errstate(invalid="ignore"):
                    keep = (unmasked >= self.min_depth) & (unmasked <= self.max_depth)
                depth = np.where(keep, unmasked, np.float32(np.nan))
        labels = None
        if seg is not None:
            ids = seg.float().argmax(dim=1, keepdim=True).to(torch.uint8)
            labels = F.interpolate(ids, size=(H, W), mode="nearest")[0, 0].cpu().numpy()
        t3 = time.perf_counter()
        return Prediction(depth=depth, labels=labels, unmasked=unmasked, relative=relative,
                          points=points, timings={
            "preprocess": 1e3 * (t1 - t0), "inference": 1e3 * (t2 - t1),
            "postprocess": 1e3 * (t3 - t2)})
