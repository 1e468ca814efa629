"""Inference backends: who runs a model's forward pass (a small registry, ROS-free).

A backend turns a built model (``nn.Module`` with ``.spec``) into a callable ``run(x) -> output``
with the model's own output convention (tensor or dict of tensors, on ``x``'s device):

* ``torch``: the module itself (PyTorch eager);
* ``onnxruntime``: the module exported to ONNX (per input shape, cached by weight content in
  :func:`~mono_depth_ros.inference.onnx_export.cache_dir`) and run by ONNX Runtime with the
  provider of the device;
* ``cuda_graph`` (CUDA only): the module replayed from a CUDA graph captured per input shape
  (:class:`~mono_depth_ros.inference.device_path.GraphRunner`);
* ``tensorrt`` (CUDA only): the ONNX export run by ONNX Runtime's TensorRT execution provider
  (engines cached beside the export; fp16 kernels allowed when the estimator runs fp16). It needs
  an ``onnxruntime-gpu`` build with TensorRT; without it the backend is refused with that reason.

``auto`` picks ``onnxruntime`` on the CPU for the models listed in :data:`ORT_FASTER_ON_CPU`
(measured with ``mono-depth-ros bench --model all --backends torch onnxruntime``) when they run
trained weights and onnxruntime is installed, and ``torch`` everywhere else.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Tuple

import torch
from torch import nn

BackendFactory = Callable[[nn.Module, torch.device], Callable]
BACKENDS: Dict[str, BackendFactory] = {}
#: Models measured faster in ONNX Runtime than in PyTorch on this project's 2-core CPU.
ORT_FASTER_ON_CPU = frozenset({"fastdepth"})
CHOICES = ("auto", "torch", "onnxruntime", "cuda_graph", "tensorrt")
#: Backends that need a CUDA device.
CUDA_ONLY = ("cuda_graph", "tensorrt")
#: ONNX Runtime providers of the ``tensorrt`` backend, best first.
TENSORRT_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def register_backend(name: str):
    """Decorator registering ``factory(net, device) -> run`` under ``name``."""
    def deco(factory: BackendFactory) -> BackendFactory:
        BACKENDS[name] = factory
        return factory
    return deco


@register_backend("torch")
def torch_backend(net: nn.Module, device: torch.device) -> Callable:
    """PyTorch eager: the module itself."""
    return net


class OrtExported:
    """Runs ``net`` through ONNX Runtime: exported (or taken from the cache) on the first input
    of each shape, then one :class:`~mono_depth_ros.models.onnx_model.OnnxModel` per shape.

    Args:
        providers: ONNX Runtime providers (name or ``(name, options)``) instead of the device's
            defaults.
    """

    def __init__(self, net: nn.Module, providers=None):
        self.net = net
        self.providers = providers
        self._models: Dict[Tuple[int, ...], nn.Module] = {}
        self.files: List[str] = []

    def __call__(self, x: torch.Tensor):
        key = tuple(x.shape)
        if key not in self._models:
            from ..models.onnx_model import OnnxModel
            from .onnx_export import cached_export
            path = cached_export(self.net, self.net.spec, x.detach().float().cpu())
            self._models[key] = OnnxModel(str(path), providers=self.providers)
            self.files.append(str(path))
        return self._models[key](x)


@register_backend("onnxruntime")
def onnxruntime_backend(net: nn.Module, device: torch.device) -> Callable:
    """ONNX Runtime: the model if it is an ONNX file already, else its cached export."""
    from ..models.onnx_model import OnnxModel, require_onnxruntime
    require_onnxruntime()
    return net if isinstance(net, OnnxModel) else OrtExported(net)


@register_backend("cuda_graph")
def cuda_graph_backend(net: nn.Module, device: torch.device) -> Callable:
    """The module replayed from CUDA graphs, one per input shape (re-captured on a change)."""
    from .device_path import GraphRunner
    return GraphRunner(net, device)


def tensorrt_providers(cache: str, fp16: bool = True) -> list:
    """ONNX Runtime provider list of the ``tensorrt`` backend: TensorRT with engine caching in
    ``cache`` (and fp16 kernels when ``fp16``), CUDA for the nodes TensorRT does not take.

    Raises:
        ValueError: this onnxruntime build has no TensorRT provider (the CPU ``onnxruntime``
            wheel; ``onnxruntime-gpu`` with the TensorRT libraries has it).
    """
    from ..models.onnx_model import require_onnxruntime
    available = require_onnxruntime().get_available_providers()
    if TENSORRT_PROVIDERS[0] not in available:
        raise ValueError("backend tensorrt needs ONNX Runtime's TensorrtExecutionProvider; this "
                         f"onnxruntime has {', '.join(available)} (install onnxruntime-gpu and "
                         "TensorRT, or use backend cuda_graph)")
    return [(TENSORRT_PROVIDERS[0], {"trt_engine_cache_enable": True,
                                     "trt_engine_cache_path": cache, "trt_fp16_enable": fp16}),
            TENSORRT_PROVIDERS[1]]


@register_backend("tensorrt")
def tensorrt_backend(net: nn.Module, device: torch.device) -> Callable:
    """The module's ONNX export run by ONNX Runtime's TensorRT provider (fp16 allowed)."""
    from ..models.onnx_model import OnnxModel
    from .onnx_export import cache_dir
    providers = tensorrt_providers(str(cache_dir() / "tensorrt"))
    if isinstance(net, OnnxModel):  # an ONNX file already: its own sessions on TensorRT
        net.provider_override = providers
        return net
    return OrtExported(net, providers=providers)


def resolve_backend(backend: str, model: str, device: torch.device, trained: bool,
                    stateful: bool = False, onnx_file: bool = False) -> Tuple[str, List[str]]:
    """The backend to use for ``backend`` in :data:`CHOICES`, and warnings for the caller.

    Args:
        backend: one of :data:`CHOICES`.
        model: registered model name.
        device: where the model runs.
        trained: the model runs trained weights (a checkpoint), worth an export.
        stateful: the model keeps recurrent state across frames (PyTorch only).
        onnx_file: the model is an ONNX file already (the ``onnx`` model): onnxruntime, or
            tensorrt (ONNX Runtime with the TensorRT provider).

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
    if device.type != "cpu" or model not in ORT_FASTER_ON_CPU or not trained or stateful:
        return "torch", []
    try:
        import onnx  # noqa: F401  (the export needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch", ["onnxruntime/onnx not installed: running PyTorch (slower on CPU)"]
    return "onnxruntime", []


def make_runner(backend: str, net: nn.Module, device: torch.device) -> Callable:
    """The callable running ``net`` with registered ``backend`` (see :data:`BACKENDS`)."""
    try:
        factory = BACKENDS[backend]
    except KeyError:
        raise ValueError(f"unknown backend {backend!r}; valid: "
                         f"{', '.join(sorted(BACKENDS))}") from None
    return factory(net, device)
