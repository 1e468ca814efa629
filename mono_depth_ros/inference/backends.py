"""Inference backends: who runs a model's forward pass (a small registry, ROS-free).

A backend turns a built model (``nn.Module`` with ``.spec``) into a callable ``run(x) -> output``
with the model's own output convention (tensor or dict of tensors, on ``x``'s device):

* ``torch``: the module itself (PyTorch eager);
* ``onnxruntime``: the module exported to ONNX (per input shape, cached by weight content in
  :func:`~mono_depth_ros.inference.onnx_export.cache_dir`) and run by ONNX Runtime with the
  provider of the device. The graph is exported in fp32, outside autocast, so this backend runs
  fp32 only (:func:`backend_precision_problem`);
* ``cuda_graph`` (CUDA only): the module replayed from a CUDA graph captured per input shape
  (:class:`~mono_depth_ros.inference.device_path.GraphRunner`);
* ``tensorrt`` (CUDA only): the ONNX export run by ONNX Runtime's TensorRT execution provider.
  It follows ``precision`` (:func:`tensorrt_provider_options`: fp16 kernels only for fp16, bf16
  only for bf16, fp32 engines otherwise); engines are cached per precision and runtime version
  (:func:`engine_cache_dir`). It needs an ``onnxruntime-gpu`` build with TensorRT; without it
  the backend is refused with that reason.

Export-based runners (:class:`OrtExported`) export and load their graph in
:meth:`OrtExported.prepare_shape`, which the estimator calls when it is built (configure) for
the input shape it knows. Any failure
there or later (export error, unwritable cache folder, ONNX Runtime refusing the graph) makes the
runner fall back to PyTorch for good: ``fallback_reason`` says why, one warning is logged, and no
frame fails.

``auto`` picks ``onnxruntime`` on the CPU for the models listed in :data:`ORT_FASTER_ON_CPU`
(measured with ``mono-depth-ros bench --model all --backends torch onnxruntime``) when they run
trained weights in fp32 and onnxruntime is installed, and ``torch`` everywhere else (bf16 on a
CPU is PyTorch autocast, which ONNX Runtime cannot run).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

BackendFactory = Callable[[nn.Module, torch.device, str], Callable]
BACKENDS: Dict[str, BackendFactory] = {}
#: Models measured faster in ONNX Runtime than in PyTorch on this project's 2-core CPU.
ORT_FASTER_ON_CPU = frozenset({"fastdepth", "fastdepth_nyu", "fastdepth_nyu_distilled"})
CHOICES = ("auto", "torch", "onnxruntime", "cuda_graph", "tensorrt")
#: Backends that need a CUDA device.
CUDA_ONLY = ("cuda_graph", "tensorrt")
#: ONNX Runtime providers of the ``tensorrt`` backend, best first.
TENSORRT_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
#: Precisions each backend can run (``precision`` of the estimator); missing: all of them.
#: ONNX Runtime's CPU and CUDA providers run the fp32 graph as it is.
BACKEND_PRECISIONS: Dict[str, Tuple[str, ...]] = {"onnxruntime": ("fp32",)}
#: TensorRT provider option that allows the kernels of each reduced precision.
TRT_PRECISION_FLAGS = {"fp16": "trt_fp16_enable", "bf16": "trt_bf16_enable"}

log = logging.getLogger(__name__)


def register_backend(name: str):
    """Decorator registering ``factory(net, device, precision) -> run`` under ``name``."""
    def deco(factory: BackendFactory) -> BackendFactory:
        BACKENDS[name] = factory
        return factory
    return deco


@register_backend("torch")
def torch_backend(net: nn.Module, device: torch.device, precision: str = "fp32") -> Callable:
    """PyTorch eager: the module itself (the estimator's autocast applies ``precision``)."""
    return net


class OrtExported:
    """Runs ``net`` through ONNX Runtime, one exported graph per input shape, with PyTorch as
    the fallback.

    :meth:`prepare_shape` exports the graph for a shape (or takes it from the cache), loads it
    and runs it once, outside autocast; ``__call__`` prepares shapes it has not seen (models
    whose input shape follows the image). Any failure makes the runner run ``net`` itself from
    then on.

    Args:
        providers: ONNX Runtime providers (name or ``(name, options)``) instead of the device's
            defaults, or a callable returning them (called inside :meth:`prepare_shape`, so that
            a failure to set up, e.g. an engine cache folder that cannot be created, falls back).
        name: the backend's name, for messages.

    Attributes:
        files: the ONNX files in use. ``fallback_reason``: why the runner fell back to PyTorch
            (None while ONNX Runtime runs).
    """

    def __init__(self, net: nn.Module, providers=None, name: str = "onnxruntime"):
        self.net = net
        self.providers = providers
        self.name = name
        self._models: Dict[Tuple[int, ...], nn.Module] = {}
        self.files: List[str] = []
        self.fallback_reason: Optional[str] = None

    def _fall_back(self, what: str, exc: BaseException) -> None:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        hint = (" (exports are cached under $MONO_DEPTH_ROS_CACHE: point it at a writable "
                "folder)" if isinstance(exc, OSError) else "")
        self.fallback_reason = (f"backend {self.name} failed to {what} "
                                f"({type(exc).__name__}: {first}){hint}: running PyTorch instead")
        self._models.clear()

    def prepare_shape(self, x: torch.Tensor) -> bool:
        """Export (or take from the cache), load and run once the graph for ``x``'s shape.

        Args:
            x: an input of the shape to prepare (``B x C x h x w``, on the model's device).

        Returns:
            True when ONNX Runtime runs that shape; False after a fallback to PyTorch (the
            caller reports ``fallback_reason``: the estimator among its warnings).
        """
        if self.fallback_reason is not None:
            return False
        key = tuple(x.shape)
        if key in self._models:
            return True
        from ..models.onnx_model import OnnxModel
        from .onnx_export import cached_export
        try:
            providers = self.providers() if callable(self.providers) else self.providers
            # fp32 and outside autocast: a graph traced inside autocast carries casts to bf16 /
            # fp16 that ONNX Runtime refuses (cached_export disables autocast too)
            with torch.autocast(x.device.type, enabled=False), torch.inference_mode():
                path = cached_export(self.net, self.net.spec, x.detach().float())
                model = OnnxModel(str(path), providers=providers)
                model(x.detach().float())  # ONNX Runtime refuses a bad graph here at the latest
        except Exception as exc:  # noqa: BLE001 - any failure: PyTorch, one warning, a reason
            self._fall_back(f"prepare its ONNX graph for input {list(key)}", exc)
            return False
        self._models[key] = model
        self.files.append(str(path))
        return True

    def __call__(self, x: torch.Tensor):
        key = tuple(x.shape)
        if self.fallback_reason is None:
            if key in self._models or self.prepare_shape(x):
                try:
                    return self._models[key](x)
                except Exception as exc:  # noqa: BLE001 - this frame and the next run PyTorch
                    self._fall_back("run", exc)
            log.warning(self.fallback_reason)  # once: the runner stays on PyTorch
        return self.net(x)


@register_backend("onnxruntime")
def onnxruntime_backend(net: nn.Module, device: torch.device, precision: str = "fp32"
                        ) -> Callable:
    """ONNX Runtime: the model if it is an ONNX file already, else its cached export (fp32)."""
    from ..models.onnx_model import OnnxModel, require_onnxruntime
    require_onnxruntime()
    return net if isinstance(net, OnnxModel) else OrtExported(net)


@register_backend("cuda_graph")
def cuda_graph_backend(net: nn.Module, device: torch.device, precision: str = "fp32"
                       ) -> Callable:
    """The module replayed from CUDA graphs, one per input shape (re-captured on a change)."""
    from .device_path import GraphRunner
    return GraphRunner(net, device)


def backend_precision_problem(backend: str, precision: str) -> Optional[str]:
    """Why ``backend`` cannot run ``precision`` (:data:`BACKEND_PRECISIONS`), or None."""
    allowed = BACKEND_PRECISIONS.get(backend)
    if allowed is None or precision in allowed:
        return None
    return (f"backend {backend} runs {'/'.join(allowed)} ONNX graphs, not precision {precision} "
            "(use backend torch, cuda_graph or tensorrt for it)")


def tensorrt_provider_options(cache: Optional[str], precision: str = "fp32") -> dict:
    """TensorRT provider options for ``precision``: reduced-precision kernels only for the
    precision asked for (``trt_fp16_enable`` for fp16, ``trt_bf16_enable`` for bf16, neither for
    fp32), engine caching in ``cache`` (None: no cache).

    Raises:
        ValueError: unknown precision.
    """
    if precision not in ("fp32", *TRT_PRECISION_FLAGS):
        raise ValueError(f"precision must be fp32, {', '.join(TRT_PRECISION_FLAGS)}, got "
                         f"{precision!r}")
    opts = {flag: precision == p for p, flag in TRT_PRECISION_FLAGS.items()}
    opts["trt_engine_cache_enable"] = cache is not None
    if cache is not None:
        opts["trt_engine_cache_path"] = cache
    return opts


def require_tensorrt():
    """onnxruntime, checked to have the TensorRT provider.

    Raises:
        ValueError: this onnxruntime build has no TensorRT provider (the CPU ``onnxruntime``
            wheel; ``onnxruntime-gpu`` with the TensorRT libraries has it).
    """
    from ..models.onnx_model import require_onnxruntime
    ort = require_onnxruntime()
    available = ort.get_available_providers()
    if TENSORRT_PROVIDERS[0] not in available:
        raise ValueError("backend tensorrt needs ONNX Runtime's TensorrtExecutionProvider; this "
                         f"onnxruntime has {', '.join(available)} (install onnxruntime-gpu and "
                         "TensorRT, or use backend cuda_graph)")
    return ort


def tensorrt_providers(cache: Optional[str], precision: str = "fp32") -> list:
    """ONNX Runtime provider list of the ``tensorrt`` backend: TensorRT with
    :func:`tensorrt_provider_options`, CUDA for the nodes TensorRT does not take.

    Raises:
        ValueError: no TensorRT provider (:func:`require_tensorrt`), or unknown precision.
    """
    require_tensorrt()
    return [(TENSORRT_PROVIDERS[0], tensorrt_provider_options(cache, precision)),
            TENSORRT_PROVIDERS[1]]


def engine_cache_dir(precision: str) -> Path:
    """TensorRT engine folder: ``<cache_dir>/tensorrt/<precision>-ort<version>[-trt<version>]``.
    An engine depends on the precision flags and the runtime versions, which ONNX Runtime's own
    engine names leave out, so each combination gets its own folder."""
    from ..models.onnx_model import require_onnxruntime
    from .onnx_export import cache_dir
    tag = f"{precision}-ort{require_onnxruntime().__version__}"
    try:
        import tensorrt
        tag += f"-trt{tensorrt.__version__}"
    except ImportError:  # the libraries without their Python module: ORT's version decides
        pass
    return cache_dir() / "tensorrt" / tag


@register_backend("tensorrt")
def tensorrt_backend(net: nn.Module, device: torch.device, precision: str = "fp32") -> Callable:
    """The module's ONNX export run by ONNX Runtime's TensorRT provider with ``precision``.

    Raises:
        ValueError: no TensorRT provider in this onnxruntime (refused when built).
    """
    from ..models.onnx_model import OnnxModel
    require_tensorrt()

    def providers() -> list:
        folder = engine_cache_dir(precision)
        folder.mkdir(parents=True, exist_ok=True)
        return tensorrt_providers(str(folder), precision)

    if isinstance(net, OnnxModel):  # an ONNX file already: its own sessions on TensorRT
        net.provider_override = providers()
        return net
    return OrtExported(net, providers=providers, name="tensorrt")


def resolve_backend(backend: str, model: str, device: torch.device, trained: bool,
                    stateful: bool = False, onnx_file: bool = False,
                    precision: str = "fp32") -> Tuple[str, List[str]]:
    """The backend to use for ``backend`` in :data:`CHOICES`, and warnings for the caller.

    Args:
        backend: one of :data:`CHOICES`.
        model: registered model name.
        device: where the model runs.
        trained: the model runs trained weights (a checkpoint), worth an export.
        stateful: the model keeps recurrent state across frames (PyTorch only).
        onnx_file: the model is an ONNX file already (the ``onnx`` model): onnxruntime, or
            tensorrt (ONNX Runtime with the TensorRT provider).
        precision: the precision that will run; ``auto`` keeps PyTorch for anything but fp32.

    Raises:
        ValueError: unknown backend, ``onnxruntime``/``tensorrt``/``cuda_graph`` for a stateful
            model, or a CUDA-only backend on another device.
    """
    if backend not in CHOICES:
        raise ValueError(f"backend must be one of {CHOICES}, got {backend!r}")
    if backend in CUDA_ONLY and device.type != "cuda":
        raise ValueError(f"backend {backend} needs a CUDA device, got {device}")
    if onnx_file:
        if backend == "tensorrt":
            return backend, []
        return "onnxruntime", ([] if backend not in ("torch", "cuda_graph") else
                               [f"an ONNX file runs in ONNX Runtime: backend {backend} ignored"])
    if backend in ("onnxruntime", "tensorrt", "cuda_graph") and stateful:
        raise ValueError("stateful models keep their recurrent state in PyTorch eager: use "
                         "backend torch")
    if backend != "auto":
        return backend, []
    if (device.type != "cpu" or model not in ORT_FASTER_ON_CPU or not trained or stateful
            or backend_precision_problem("onnxruntime", precision)):
        return "torch", []
    try:
        import onnx  # noqa: F401  (the export needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch", ["onnxruntime/onnx not installed: running PyTorch (slower on CPU)"]
    return "onnxruntime", []


def make_runner(backend: str, net: nn.Module, device: torch.device, precision: str = "fp32"
                ) -> Callable:
    """The callable running ``net`` with registered ``backend`` (see :data:`BACKENDS`) in
    ``precision`` (the backends that build their own kernels, ``tensorrt``, follow it)."""
    try:
        factory = BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown backend {backend!r}; valid: "
                         f"{', '.join(sorted(BACKENDS))}") from None
    return factory(net, device, precision)
