"""One registry of depth / segmentation networks, in the spirit of timm's.

Usage::

    from mono_depth_ros.models import create_model, list_models
    net = create_model("fastdepth", encoder="efficientnet_lite0", pretrained=True)
    net.spec.input_size  # (192, 256)

A model module registers a factory with :func:`register_model`; the factory takes keyword
arguments (architecture options) and returns an ``nn.Module``. The registry attaches the
model's :class:`~mono_depth_ros.models.spec.ModelSpec` as ``module.spec``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

import torch
from torch import nn

from .spec import ModelSpec

_REGISTRY: Dict[str, "_Entry"] = {}


class UnknownModelError(KeyError):
    """Raised for a model name that is not registered; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class _Entry:
    def __init__(self, factory: Callable[..., nn.Module], spec: ModelSpec,
                 loads_checkpoint: bool = False, architecture: Optional[str] = None):
        self.factory = factory
        self.spec = spec
        self.loads_checkpoint = loads_checkpoint
        self.architecture = architecture or spec.name


def register_model(spec: ModelSpec, loads_checkpoint: bool = False,
                   architecture: Optional[str] = None
                   ) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering ``factory(**kwargs) -> nn.Module`` under ``spec.name``.

    Args:
        spec: the model's contract.
        loads_checkpoint: the factory takes ``checkpoint=`` itself (a Hugging Face folder or hub
            id, an ONNX file) instead of a :func:`save_checkpoint` file.
        architecture: for a variant of another registered model with other default weights
            (timm's pretrained tags in spirit): that model's name, whose checkpoints this one
            loads too. Default: its own name.

    Raises:
        ValueError: the name is already registered.
    """

    def deco(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if spec.name in _REGISTRY:
            raise ValueError(f"model {spec.name!r} registered twice")
        _REGISTRY[spec.name] = _Entry(factory, spec, loads_checkpoint, architecture)
        return factory

    return deco


def list_models() -> List[str]:
    """Sorted names of every registered model."""
    _import_all()
    return sorted(_REGISTRY)


def loads_checkpoint(name: str) -> bool:
    """Whether model ``name`` takes its own kind of checkpoint (Hugging Face folder or hub id,
    ONNX file) rather than a :func:`save_checkpoint` file; such models need external weights.

    Raises:
        UnknownModelError: ``name`` is not registered.
    """
    return _entry(name).loads_checkpoint


def checkpoint_fits(name: str, checkpoint_model: Optional[str]) -> bool:
    """Whether a checkpoint saved for model ``checkpoint_model`` loads into model ``name``: the
    same model, or ``name`` is a variant of that architecture (:func:`register_model`).

    Raises:
        UnknownModelError: ``name`` is not registered.
    """
    return checkpoint_model in (name, _entry(name).architecture)


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered for ``name``.

    Raises:
        UnknownModelError: ``name`` is not registered (lists the valid names).
    """
    return _entry(name).spec


def create_model(
    name: str,
    checkpoint: Optional[Union[str, os.PathLike]] = None,
    **overrides,
) -> nn.Module:
    """Build a registered model, optionally loading a checkpoint.

    Args:
        name: Registered model name (see :func:`list_models`).
        checkpoint: Path to a checkpoint written by :func:`save_checkpoint`. Its stored
            architecture options are used unless ``overrides`` change them, its weights are
            loaded strictly, and spec fields it stores (e.g. ``train_focal``) replace the
            registered ones. Models registered with ``loads_checkpoint`` (Hugging Face, ONNX)
            get it as they take it (a folder, hub id or ``.onnx`` file).
        **overrides: Architecture options for the factory (e.g. ``encoder="mobilenetv2"``,
            ``pretrained=True``).

    Returns:
        The ``nn.Module`` in eval mode, with its ``.spec`` attribute set.

    Raises:
        UnknownModelError: unknown ``name``.
        FileNotFoundError: ``checkpoint`` does not exist.
        ValueError: the checkpoint was saved for another model (a variant also loads its
            architecture's checkpoints), or is refused by
            :func:`load_checkpoint` (not plain data).
    """
    entry = _entry(name)
    spec = entry.spec
    state = None
    kwargs = dict(overrides)
    if entry.loads_checkpoint:
        kwargs["checkpoint"] = None if checkpoint in (None, "") else str(checkpoint)
    elif checkpoint is not None:
        path = Path(checkpoint)
        ckpt = load_checkpoint(path)
        if not checkpoint_fits(name, ckpt.get("model")):
            raise ValueError(f"checkpoint {path} holds model {ckpt.get('model')!r}, not {name!r}")
        kwargs = {**ckpt.get("model_kwargs", {}), **overrides}
        # Weights come from the checkpoint: never fetch encoder weights again.
        kwargs["pretrained"] = False
        state = ckpt["state_dict"]
        stored = ckpt.get("spec") or {}
        spec_changes = {k: _as_spec_value(v) for k, v in stored.items()
                        if k in ("train_focal", "rescale_by_focal", "depth_range", "input_size",
                                 "mean", "std", "stereo_baseline", "train_median_depth")}
        spec = spec.replace(**spec_changes)
    model = entry.factory(**kwargs)
    # A factory may adapt its contract to its options (e.g. another encoder's normalisation).
    spec = spec.replace(**getattr(model, "spec_overrides", {}))
    if state is not None:
        model.load_state_dict(state, strict=True)
    model.spec = spec
    model.model_kwargs = {k: v for k, v in kwargs.items() if k != "pretrained"}
    return model.eval()


def save_checkpoint(model: nn.Module, path: Union[str, os.PathLike], half: bool = False,
                    **extra) -> Path:
    """Write ``model`` as a checkpoint :func:`create_model` can load.

    The file holds the registry name, the architecture options, the spec, the state dict and
    any ``extra`` entries (config, metrics, git revision). ``half`` stores floating-point
    tensors as float16 (half the size, for shipped weights); loading casts them back to the
    model's dtype.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    torch.save({
        "model": model.spec.name,
        "model_kwargs": getattr(model, "model_kwargs", {}),
        "spec": model.spec.to_dict(),
        "state_dict": state,
        **extra,
    }, path)
    return path


def load_checkpoint(path: Union[str, os.PathLike]) -> dict:
    """Read a checkpoint as data: ``torch.load(weights_only=True)`` unpickles only tensors,
    numbers, strings, lists, tuples and dicts, so a crafted file given as a parameter cannot run
    code (PyTorch's safe loading; checkpoints hold nothing else).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a checkpoint of plain data (corrupt, or holds other objects
            such as a pickled class — refused, not run) or not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - UnpicklingError, RuntimeError, EOFError, ...
        raise ValueError(f"checkpoint {path} refused: not a plain-data PyTorch checkpoint "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from exc
    if not isinstance(ckpt, dict):
        raise ValueError(f"checkpoint {path} holds a {type(ckpt).__name__}, not a dict")
    return ckpt


def _as_spec_value(v):
    return tuple(v) if isinstance(v, list) else v


def _entry(name: str) -> _Entry:
    _import_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; valid names: {', '.join(sorted(_REGISTRY))}") from None


def _import_all() -> None:
    # Model modules register themselves on import; import them lazily so that importing the
    # registry stays cheap.
    from . import zoo  # noqa: F401
