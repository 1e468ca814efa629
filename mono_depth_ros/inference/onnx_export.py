"""Export any registered model to ONNX with its spec as metadata, and check parity (ROS-free).

``export_onnx`` traces the network at one input shape (TorchScript exporter, opset 17; the
dynamo exporter when tracing fails), stores the :class:`ModelSpec` as JSON under
``mono_depth_ros.spec`` (with ``input_size`` = the exported size and a ``stretch`` resize, since
the file has a fixed shape) and, for models returning a dict, the output names. ``parity`` runs
the file in ONNX Runtime and the network in PyTorch on one input and returns the largest absolute
difference per output. ``cached_export`` keeps exports in a cache folder keyed by everything
that changes the graph (:func:`weights_key`: the weights' content and dtypes, the spec, the input
shape, the precision, the device, the opset, the torch and onnx versions and this recipe's
version), so a changed checkpoint or setting is exported again, never served a stale graph.

Exports are always fp32 graphs traced outside autocast: a graph traced inside a bf16 autocast
region carries bf16 casts that ONNX Runtime refuses (``INVALID_GRAPH ... tensor(bfloat16)``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from ..models.onnx_model import OUTPUTS_KEY, SPEC_KEY, OnnxModel
from ..models.spec import ModelSpec

OPSET = 17
#: Bumped when the export recipe changes, so cached files are rebuilt (2: fp32 outside autocast,
#: precision and device in the key).
EXPORT_VERSION = 2
#: The precision of every exported graph (the ``tensorrt`` backend lowers it in its engines).
EXPORT_PRECISION = "fp32"


def cache_dir() -> Path:
    """Folder of cached exports: ``$MONO_DEPTH_ROS_CACHE/onnx`` or ``~/.cache/mono_depth_ros/onnx``
    (``$XDG_CACHE_HOME`` honoured)."""
    root = os.environ.get("MONO_DEPTH_ROS_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mono_depth_ros"
    return Path(root) / "onnx"


class _TupleOutputs(nn.Module):
    """Returns a dict-returning model's outputs as a tuple in ``names`` order (for tracing)."""

    def __init__(self, net: nn.Module, names: Optional[List[str]]):
        super().__init__()
        self.net, self.names = net, names

    def forward(self, x):
        out = self.net(x)
        return tuple(out[k] for k in self.names) if self.names else out


def exported_spec(spec: ModelSpec, input_hw: Tuple[int, int]) -> ModelSpec:
    """The spec to store with a fixed-shape export: ``input_size`` = the exported size and the
    ``stretch`` resize rule (a keep-aspect model would otherwise ask for other shapes)."""
    return spec.replace(input_size=tuple(input_hw),
                        preprocessing=dataclasses.replace(spec.preprocessing, resize="stretch"))


def export_onnx(net: nn.Module, spec: ModelSpec, path: Union[str, Path], example: torch.Tensor
                ) -> Path:
    """Write ``net`` as an ONNX file at ``path`` for input shape ``example.shape``.

    Args:
        net: model in eval mode (any registered model; on any device).
        spec: its contract (stored as metadata).
        path: output ``.onnx`` file (written atomically).
        example: ``B x C x h x w`` float32 input of the shape to export.

    Returns:
        ``path``.

    Raises:
        RuntimeError: both exporters failed (the message has the first error).
        OSError: ``path``'s folder cannot be created or written.
    """
    # fp32 whatever the caller's autocast: traced casts to bf16/fp16 would end in the graph
    with torch.autocast(example.device.type, enabled=False):
        return _export_onnx(net, spec, Path(path), example.float())


def _export_onnx(net: nn.Module, spec: ModelSpec, path: Path, example: torch.Tensor) -> Path:
    import onnx
    path.parent.mkdir(parents=True, exist_ok=True)
    net = net.eval()
    with torch.inference_mode():
        out = net(example)
    # dict outputs: the tensors (recurrent state lists and the like stay in PyTorch)
    names = (sorted(k for k, v in out.items() if torch.is_tensor(v))
             if isinstance(out, dict) else None)
    wrapper = _TupleOutputs(net, names).eval()
    out_names = names or ["depth"]
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        first_error = None
        for dynamo in (False, True):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(wrapper, (example,), tmp, input_names=["input"],
                                      output_names=out_names,
                                      opset_version=OPSET if not dynamo else 18,
                                      dynamo=dynamo, external_data=False, verbose=False,
                                      # ONNX Runtime folds constants when it loads the file;
                                      # folding here too doubles the export time of big nets
                                      **({} if dynamo else {"do_constant_folding": False}))
                break
            except Exception as exc:  # noqa: BLE001 - try the other exporter, then report
                first_error = first_error or exc
        else:
            raise RuntimeError(f"ONNX export of {spec.name} failed: {first_error}") from first_error
        model = onnx.load(tmp)
        stored = exported_spec(spec, example.shape[-2:]).to_dict()
        meta = {SPEC_KEY: json.dumps(stored, default=str)}
        if names:
            meta[OUTPUTS_KEY] = json.dumps(names)
        for key, value in meta.items():
            model.metadata_props.add(key=key, value=value)
        onnx.save(model, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def parity(net: nn.Module, onnx_path: Union[str, Path], example: torch.Tensor,
           reference=None) -> Dict[str, float]:
    """Largest absolute difference between PyTorch and ONNX Runtime outputs, per output name.

    Args:
        reference: ``net(example)`` when the caller has it already (not run again).
    """
    with torch.inference_mode():
        ref = net(example) if reference is None else reference
        got = OnnxModel(str(onnx_path))(example.cpu())
    ref = {k: v for k, v in ref.items() if torch.is_tensor(v)} if isinstance(ref, dict) \
        else {"depth": ref}
    got = got if isinstance(got, dict) else {"depth": got}
    return {k: float((ref[k].float().cpu() - got[k].float().reshape(ref[k].shape)).abs().max())
            for k in ref}


def weights_key(net: nn.Module, spec: ModelSpec, shape: Tuple[int, ...],
                precision: str = EXPORT_PRECISION, device: str = "cpu") -> str:
    """The cache key of an export: a hash of everything that changes the graph.

    Covers the weights' names, dtypes and content (a changed checkpoint changes the key), the
    spec (the model), the input ``shape``, the graph's ``precision``, the ``device`` type it was
    traced on, the opset, the torch and onnx versions and :data:`EXPORT_VERSION`.
    """
    try:
        import onnx
        onnx_version = onnx.__version__
    except ImportError:  # the export needs it; the key is still defined without it
        onnx_version = "none"
    h = hashlib.blake2b(digest_size=12)
    for name, t in net.state_dict().items():
        h.update(f"{name}|{t.dtype}".encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes() if t.dtype != torch.bfloat16
                 else t.detach().float().cpu().numpy().tobytes())
    h.update(json.dumps(spec.to_dict(), sort_keys=True, default=str).encode())
    h.update(f"{tuple(shape)}|{precision}|{device}|opset{OPSET}|torch{torch.__version__}|"
             f"onnx{onnx_version}|{EXPORT_VERSION}".encode())
    return h.hexdigest()


def cached_export(net: nn.Module, spec: ModelSpec, example: torch.Tensor,
                  folder: Optional[Path] = None) -> Path:
    """The fp32 ONNX export of ``net`` at ``example``'s shape from the cache (``folder`` or
    :func:`cache_dir`), exported on a miss (outside autocast, see :func:`export_onnx`).

    Raises:
        RuntimeError, OSError: the export failed or the cache folder cannot be written (or, with
            no home folder, found).
    """
    key = weights_key(net, spec, tuple(example.shape), EXPORT_PRECISION, example.device.type)
    h, w = example.shape[-2:]
    path = (folder or cache_dir()) / f"{spec.name}-{h}x{w}-{EXPORT_PRECISION}-{key}.onnx"
    if not path.is_file():
        export_onnx(net, spec, path, example)
    return path
