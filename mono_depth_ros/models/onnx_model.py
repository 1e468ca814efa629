"""The ``onnx`` model: any depth ONNX file run through ONNX Runtime behind the registry's interface.

``create_model("onnx", checkpoint="net.onnx")`` reads the file's contract from its metadata
(``mono-depth-ros export`` stores the :class:`ModelSpec` under :data:`SPEC_KEY`) or, for a
third-party file (e.g. a Depth Anything V2 ONNX export made for another ROS node), from a small
YAML or JSON file beside it (``net.yaml``, ``net.yml``, ``net.json`` or ``net.onnx.yaml`` ...)
holding ModelSpec fields, for example::

    input_size: [518, 518]
    output_kind: relative_inverse
    mean: [0.485, 0.456, 0.406]
    std: [0.229, 0.224, 0.225]
    preprocessing: {resize: stretch, multiple: 14, interpolation: bicubic,
                    output_interpolation: bicubic}
    weights_licence: Apache-2.0
    citation: Yang et al., Depth Anything V2, NeurIPS 2024

The execution provider follows the device of the input tensor: CPU, or on a GPU TensorRT and
CUDA where this onnxruntime build has them (CPU otherwise). The file is data, never code.

Most exports have a fixed input shape (``mono-depth-ros export`` writes one): a network input
size that differs from it is refused with the file's size (:func:`input_size_problem`), when
the node validates its parameters and when the model is built, instead of failing every frame.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .registry import register_model
from .spec import ModelSpec

#: ONNX metadata key holding the spec as JSON (written by ``mono-depth-ros export``).
SPEC_KEY = "mono_depth_ros.spec"
#: ONNX metadata key holding the output names as a JSON list, when the model returns a dict.
OUTPUTS_KEY = "mono_depth_ros.dict_outputs"
SIDECAR_SUFFIXES = (".yaml", ".yml", ".json")
#: Execution providers to try per torch device type, best first.
PROVIDERS = {"cuda": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
             "cpu": ("CPUExecutionProvider",)}
ORT_PIN = "onnxruntime==1.31.1"


def require_onnxruntime():
    """Import onnxruntime or raise ImportError with the install line."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(f"ONNX models need onnxruntime: pip install {ORT_PIN}") from exc
    return onnxruntime


def providers_for(device_type: str) -> List[str]:
    """Available onnxruntime execution providers for a torch device type, best first."""
    available = set(require_onnxruntime().get_available_providers())
    chosen = [p for p in PROVIDERS.get(device_type, PROVIDERS["cpu"]) if p in available]
    return chosen or ["CPUExecutionProvider"]


def file_input_hw(path) -> Tuple[Optional[int], Optional[int]]:
    """The fixed ``(height, width)`` of an ONNX file's ``B x C x H x W`` image input, ``None`` for
    a side the file leaves dynamic (a named or missing dimension).

    Reads the graph with ``onnx`` (weights kept on disk), else with an ONNX Runtime session.

    Raises:
        ValueError: the file cannot be read as an ONNX model, or its first input is not 4-D.
    """
    try:
        import onnx
    except ImportError:
        onnx = None
    try:
        if onnx is not None:
            graph = onnx.load(str(path), load_external_data=False).graph
            weights = {t.name for t in graph.initializer}
            first = next(i for i in graph.input if i.name not in weights)
            dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                    for d in first.type.tensor_type.shape.dim]
        else:
            sess = require_onnxruntime().InferenceSession(str(path),
                                                          providers=["CPUExecutionProvider"])
            dims = [d if isinstance(d, int) and d > 0 else None
                    for d in sess.get_inputs()[0].shape]
    except (StopIteration, OSError) as exc:
        raise ValueError(f"{path} has no readable input ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # noqa: BLE001 - protobuf / ORT parse errors have many types
        raise ValueError(f"{path} is not a readable ONNX file ({type(exc).__name__}: "
                         f"{str(exc).strip()[:200]})") from exc
    if len(dims) != 4:
        raise ValueError(f"{path}: input has {len(dims)} dimensions, expected B x C x H x W")
    return dims[2], dims[3]


def input_size_problem(path, input_hw: Tuple[int, int]) -> Optional[str]:
    """Why an ONNX file cannot run at network input ``(height, width)``, or None: a side the
    file fixes to another size (a side of 0 is not checked: it means the file's own).

    Raises:
        ValueError: the file cannot be read (:func:`file_input_hw`).
    """
    fixed = file_input_hw(path)
    wrong = [f"{side} {want} != {have}" for side, want, have in
             zip(("input_height", "input_width"), input_hw, fixed)
             if want and have is not None and want != have]
    if not wrong:
        return None
    shape = "x".join("?" if d is None else str(d) for d in fixed)
    return (f"{', '.join(wrong)}: ONNX file {Path(path).name} has a fixed {shape} (HxW) input; "
            "set input_width/input_height to 0 (the file's size) or export the model at that "
            "size")


#: Key of a spec file that ties it to one ONNX file (hex sha256); not a ModelSpec field.
SHA256_KEY = "sha256"


def project_specs_dir() -> Path:
    """``config/onnx/``: spec files the project keeps for known third-party ONNX files that
    live where no file can be written beside them (e.g. ``../shared/weights``)."""
    from ..core.paths import package_share_dir
    return package_share_dir() / "config" / "onnx"


def sidecar_path(path: Path) -> Optional[Path]:
    """The YAML/JSON spec file of ``path``: beside it (``net.yaml`` or ``net.onnx.yaml`` ...),
    else ``config/onnx/<net>.yaml`` of the project (:func:`project_specs_dir`); or None."""
    for folder in (path.parent, project_specs_dir()):
        for base in (folder / path.stem, folder / path.name):
            for suffix in SIDECAR_SUFFIXES:
                cand = Path(str(base) + suffix)
                if cand.is_file():
                    return cand
    return None


def read_sidecar(path: Path, onnx_file: Optional[Path] = None) -> dict:
    """ModelSpec fields from a YAML or JSON file (``yaml.safe_load``: data, never code).

    A spec file with a ``sha256`` key belongs to that one ONNX file only.

    Raises:
        ValueError: not a mapping, or ``onnx_file``'s sha256 differs from the one the spec
            file names (the spec was written for another file).
    """
    text = path.read_text()
    if path.suffix == ".json":
        data = json.loads(text)
    else:
        import yaml
        data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of ModelSpec fields")
    want = data.pop(SHA256_KEY, None)
    if want and onnx_file is not None:
        from ..core.paths import file_sha256
        got = file_sha256(onnx_file)
        if got != str(want).lower():
            raise ValueError(f"{path} is the spec of another file (sha256 {want}), not of "
                             f"{onnx_file} (sha256 {got})")
    return data


class OnnxModel(nn.Module):
    """An ONNX file run by ONNX Runtime, callable like the package's torch models.

    ``forward(x)``: ``B x C x h x w`` float32 tensor (any device; the shape the file was made
    for) -> the file's outputs as torch tensors on ``x``'s device: one ``B x 1 x h' x w'`` map
    (``B x h' x w'`` outputs get the channel axis), or a dict when the file stores its output
    names under :data:`OUTPUTS_KEY`.

    Args:
        path: ``.onnx`` file.
        threads: intra-op threads of the CPU provider (default: torch's thread count, so both
            backends use the same cores).
        providers: ONNX Runtime providers (names or ``(name, options)`` pairs) for non-CPU
            inputs instead of :func:`providers_for` (the ``tensorrt`` backend's list).

    Attributes:
        file_spec: the spec dict from the metadata or the side file.

    Raises:
        FileNotFoundError: no such file. ValueError: no spec in the metadata and no side file.
    """

    def __init__(self, path: str, threads: Optional[int] = None, providers=None):
        super().__init__()
        self.provider_override = providers
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX file not found: {self.path}")
        self.threads = threads or torch.get_num_threads()
        self._sessions: Dict[str, object] = {}
        sess = self._session("cpu")
        meta = sess.get_modelmeta().custom_metadata_map
        side = sidecar_path(self.path)
        if side is not None:
            self.file_spec = read_sidecar(side, self.path)
        elif SPEC_KEY in meta:
            self.file_spec = json.loads(meta[SPEC_KEY])
        else:
            raise ValueError(
                f"{self.path} has no {SPEC_KEY!r} metadata (not written by mono-depth-ros "
                "export) and "
                f"no spec file beside it: write {self.path.with_suffix('.yaml')} with at least "
                "input_size and output_kind (see mono_depth_ros/models/onnx_model.py)")
        self.input_name = sess.get_inputs()[0].name
        self.dict_outputs = json.loads(meta[OUTPUTS_KEY]) if OUTPUTS_KEY in meta else None

    def _session(self, device_type: str):
        if device_type not in self._sessions:
            ort = require_onnxruntime()
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            # No busy-waiting between runs: on a small CPU the spinning threads steal the cores
            # the rest of the pipeline (and other processes) need; measured faster here with it off.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._sessions[device_type] = ort.InferenceSession(
                str(self.path), opts,
                providers=(self.provider_override if self.provider_override and device_type != "cpu"
                           else providers_for(device_type)))
        return self._sessions[device_type]

    def input_size_problem(self, input_hw: Tuple[int, int]) -> Optional[str]:
        """Why this file cannot run at network input ``input_hw`` (:func:`input_size_problem`
        of the module), or None."""
        return input_size_problem(self.path, input_hw)

    def prepare_shape(self, x: torch.Tensor) -> bool:
        """Create the session for ``x``'s device and run it once (the TensorRT provider builds
        its engine there): called when the estimator is built, not on the first frame.

        Returns:
            True. Raises what ONNX Runtime raises (a file has no PyTorch to fall back to).
        """
        self(x)
        return True

    @property
    def providers(self) -> List[str]:
        """Providers of the sessions created so far."""
        return [p for s in self._sessions.values() for p in s.get_providers()]

    def forward(self, x: torch.Tensor):
        sess = self._session(x.device.type)
        outs = sess.run(None, {self.input_name: x.detach().float().cpu().numpy()})
        tensors = [torch.from_numpy(np.ascontiguousarray(o)).to(x.device) for o in outs]
        if self.dict_outputs:
            return dict(zip(self.dict_outputs, tensors))
        out = tensors[0]
        return out.unsqueeze(1) if out.dim() == 3 else out


def spec_from_file(model: OnnxModel) -> ModelSpec:
    """The ModelSpec of an ONNX file (``name`` ``onnx``; the source name kept in extras)."""
    data = dict(model.file_spec)
    source = data.pop("name", model.path.stem)
    data.setdefault("citation", f"third-party ONNX file {model.path.name}")
    data.setdefault("weights_licence", "unknown (third-party file: check its source)")
    data.setdefault("description", f"ONNX file {model.path.name}")
    data["extras"] = {**(data.get("extras") or {}), "source_model": source}
    # a file has one fixed input shape: no multiple-of-32 rule unless the file's spec says so
    data.setdefault("preprocessing", {"multiple": 1})
    return ModelSpec.from_dict({"name": "onnx", **data})


@register_model(ModelSpec(
    name="onnx", input_size=(192, 256), output_kind="metric_depth",
    citation="the file's own (metadata or YAML/JSON beside it)",
    description="any depth ONNX file through ONNX Runtime (checkpoint:=FILE.onnx)",
    weights_licence="the file's own"), loads_checkpoint=True)
def onnx(checkpoint: Optional[str] = None, threads: Optional[int] = None) -> OnnxModel:
    """Factory of :class:`OnnxModel` (registered as ``onnx``; needs ``checkpoint``)."""
    if not checkpoint:
        raise ValueError("model 'onnx' needs checkpoint:=FILE.onnx (mono-depth-ros export "
                         "writes one)")
    model = OnnxModel(checkpoint, threads=threads)
    spec = spec_from_file(model)
    model.spec_overrides = {k: v for k, v in spec.__dict__.items() if k != "name"}
    return model
