"""Inference backends: who runs a model's forward pass (a small registry, ROS-free).

A backend turns a built model (``nn.Module`` with ``.spec``) into a callable ``run(x) -> output``
with the model's own output convention (tensor or dict of tensors, on ``x``'s device):

* ``torch``: the module itself (PyTorch eager);
* ``onnxruntime``: the module exported to ONNX (per input shape, cached by weight content in
  :func:`~mono_depth_ros.inference.onnx_export.cache_dir`) and run by ONNX Runtime with the
  provider of the device.

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
CHOICES = ("auto", "torch", "onnxruntime")


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
    of each shape, then one :class:`~mono_depth_ros.models.onnx_model.OnnxModel` per shape."""

    def __init__(self, net: nn.Module):
        self.net = net
        self._models: Dict[Tuple[int, ...], nn.Module] = {}
        self.files: List[str] = []

    def __call__(self, x: torch.Tensor):
        key = tuple(x.shape)
        if key not in self._models:
            from ..models.onnx_model import OnnxModel
            from .onnx_export import cached_export
            path = cached_export(self.net, self.net.spec, x.detach().float().cpu())
            self._models[key] = OnnxModel(str(path))
            self.files.append(str(path))
        return self._models[key](x)


@register_backend("onnxruntime")
def onnxruntime_backend(net: nn.Module, device: torch.device) -> Callable:
    """ONNX Runtime: the model if it is an ONNX file already, else its cached export."""
    from ..models.onnx_model import OnnxModel, require_onnxruntime
    require_onnxruntime()
    return net if isinstance(net, OnnxModel) else OrtExported(net)


def resolve_backend(backend: str, model: str, device: torch.device, trained: bool,
                    stateful: bool = False, onnx_file: bool = False) -> Tuple[str, List[str]]:
    """The backend to use for ``backend`` in :data:`CHOICES`, and warnings for the caller.

    Args:
        backend: ``auto``, ``torch`` or ``onnxruntime``.
        model: registered model name.
        device: where the model runs.
        trained: the model runs trained weights (a checkpoint), worth an export.
        stateful: the model keeps recurrent state across frames (PyTorch only).
        onnx_file: the model is an ONNX file already (the ``onnx`` model): always onnxruntime.

    Raises:
        ValueError: unknown backend, or ``onnxruntime`` for a stateful model.
    """
    if backend not in CHOICES:
        raise ValueError(f"backend must be one of {CHOICES}, got {backend!r}")
    if onnx_file:
        return "onnxruntime", ([] if backend != "torch" else
                               ["an ONNX file runs in ONNX Runtime: backend torch ignored"])
    if backend == "onnxruntime" and stateful:
        raise ValueError("stateful models keep their recurrent state in PyTorch: use backend torch")
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
