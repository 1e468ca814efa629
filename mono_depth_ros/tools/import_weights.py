"""``mono-depth-ros import-weights``: third-party FastDepth weights -> a checkpoint (ROS-free).

Reads the authors' FastDepth network (Wofk et al., ICRA 2019) from an ONNX file (with
``onnx.numpy_helper``) or from the upstream full-int8 TFLite file (with the ``tflite``
flatbuffer reader, weights dequantised per channel), **as data**: nothing in the file is
executed. Every convolution of the file is listed in graph order with its role (stem, depthwise,
pointwise; kernel, stride, groups) and shapes; the layer widths of
:class:`~mono_depth_ros.models.fastdepth_nyu.FastDepthNYU` are derived from them, and each
convolution is mapped onto the module's convolution with the same role and shape. Any tensor
of the file left over, any module parameter left without a tensor, or any role or shape that
differs, is an error that names it.

The result is a :func:`~mono_depth_ros.models.save_checkpoint` file (plain data) written to
:func:`~mono_depth_ros.core.paths.imported_weights_dir` (outside git), with the source file's
name and sha256 inside, where ``create_model("fastdepth_nyu")`` and ``model:=fastdepth_nyu``
find it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np


class WeightsImportError(ValueError):
    """The file does not hold the expected network (the message names the tensor or layer)."""


@dataclass
class ConvRecord:
    """One convolution read from a file.

    Attributes:
        name: the file's name for the layer (for error messages).
        weight: ``O x I/groups x k x k`` float32 (PyTorch layout).
        bias: ``O`` float32.
        stride, groups: as in ``nn.Conv2d``.
        tensors: names of the file's tensors this record consumed.
    """

    name: str
    weight: np.ndarray
    bias: np.ndarray
    stride: int
    groups: int
    tensors: Tuple[str, ...]

    @property
    def role(self) -> str:
        """:func:`conv_role` of this layer."""
        o, i, k, _ = self.weight.shape
        return conv_role(o, i, k, self.groups)


def conv_role(out_channels: int, in_per_group: int, kernel: int, groups: int) -> str:
    """``depthwise`` (one input channel per group, as many groups as outputs), ``pointwise``
    (1x1) or ``full``: the role a file's layer and a module's ``nn.Conv2d`` are matched by."""
    if groups > 1 and groups == out_channels and in_per_group == 1:
        return "depthwise"
    return "pointwise" if kernel == 1 else "full"


# ---------------------------------------------------------------------------------- readers
def read_onnx(path: Path) -> Tuple[List[ConvRecord], List[str]]:
    """Convolutions of an ONNX graph in node order, and the names of all weight tensors.

    Raises:
        WeightsImportError: a Conv without constant weights, or with dilation / asymmetric padding
            this architecture does not have.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    records = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        w_name = node.input[1]
        b_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if w_name not in inits or (b_name and b_name not in inits):
            raise WeightsImportError(f"{path.name}: Conv {node.name} has no constant weights")
        if any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise WeightsImportError(f"{path.name}: Conv {node.name} is dilated")
        w = inits[w_name].astype(np.float32)
        b = inits[b_name].astype(np.float32) if b_name else np.zeros(w.shape[0], np.float32)
        strides = attrs.get("strides", [1, 1])
        records.append(ConvRecord(node.name, w, b, int(strides[0]), int(attrs.get("group", 1)),
                                  tuple(n for n in (w_name, b_name) if n)))
    return records, list(inits)


def read_tflite(path: Path) -> Tuple[List[ConvRecord], List[str]]:
    """Convolutions of a TFLite flatbuffer in operator order, weights dequantised per channel
    (``(q - zero_point) * scale``), and the names of all constant tensors.

    TFLite layouts: CONV_2D weights ``O x k x k x I``, DEPTHWISE_CONV_2D ``1 x k x k x O``;
    both become PyTorch's ``O x I/groups x k x k``.

    Raises:
        WeightsImportError: the ``tflite`` reader is missing, or an operator's tensors are not
            constant.
    """
    try:
        import tflite
    except ImportError as exc:  # optional: only for the upstream int8 file
        raise WeightsImportError("reading .tflite needs the flatbuffer reader: pip install "
                           "tflite==2.18.0") from exc
    buf = path.read_bytes()
    m = tflite.Model.GetRootAsModel(buf, 0)
    sub = m.Subgraphs(0)
    opcodes = {}
    for i in range(m.OperatorCodesLength()):
        oc = m.OperatorCodes(i)
        opcodes[i] = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
    names = {getattr(tflite.BuiltinOperator, k): k for k in dir(tflite.BuiltinOperator)
             if not k.startswith("_")}

    def tensor(idx: int) -> Tuple[str, Optional[np.ndarray]]:
        t = sub.Tensors(idx)
        data = m.Buffers(t.Buffer()).DataAsNumpy()
        name = t.Name().decode()
        if isinstance(data, int) or data is None or len(data) == 0:
            return name, None
        dtype = {tflite.TensorType.INT8: np.int8, tflite.TensorType.UINT8: np.uint8,
                 tflite.TensorType.INT32: np.int32,
                 tflite.TensorType.FLOAT32: np.float32}[t.Type()]
        arr = np.frombuffer(data.tobytes(), dtype).reshape(t.ShapeAsNumpy())
        q = t.Quantization()
        if q is not None and q.ScaleLength() and dtype is not np.float32:
            scale = q.ScaleAsNumpy().astype(np.float64)
            zero = q.ZeroPointAsNumpy().astype(np.float64) if q.ZeroPointLength() else 0.0
            axis = q.QuantizedDimension() if scale.size > 1 else None
            shape = [1] * arr.ndim
            if axis is not None:
                shape[axis] = -1
            arr = (arr.astype(np.float64) - np.reshape(zero, shape) if np.size(zero) > 1
                   else arr.astype(np.float64) - float(np.ravel([zero])[0]))
            arr = arr * np.reshape(scale, shape if axis is not None else [1])
        return name, arr.astype(np.float32)

    def is_weight(i: int) -> bool:
        # float or quantised constants are weights; plain int32 ones are structure (resize
        # sizes, paddings), which the architecture fixes itself
        t = sub.Tensors(i)
        q = t.Quantization()
        return (t.Type() == tflite.TensorType.FLOAT32 or (q is not None and q.ScaleLength() > 0)
                ) and tensor(i)[1] is not None

    constants = [sub.Tensors(i).Name().decode() for i in range(sub.TensorsLength()) if is_weight(i)]
    records = []
    for i in range(sub.OperatorsLength()):
        op = sub.Operators(i)
        kind = names.get(opcodes[op.OpcodeIndex()], "")
        if kind not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        ins = op.InputsAsNumpy()
        (w_name, w), (b_name, b) = tensor(int(ins[1])), tensor(int(ins[2]))
        if w is None or b is None:
            raise WeightsImportError(f"{path.name}: {kind} #{i} has no constant weights")
        opts_table = op.BuiltinOptions()
        opts = (tflite.Conv2DOptions() if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions())
        opts.Init(opts_table.Bytes, opts_table.Pos)
        if kind == "CONV_2D":
            weight, groups = w.transpose(0, 3, 1, 2), 1
        else:
            weight = w.transpose(3, 0, 1, 2)  # 1 x k x k x O -> O x 1 x k x k
            groups = weight.shape[0]
        records.append(ConvRecord(f"{kind}#{i}", np.ascontiguousarray(weight), b, int(opts.StrideH()),
                                  groups, (w_name, b_name)))
    return records, constants


#: Readers by file suffix (the file is read as data by each).
READERS = {".onnx": read_onnx, ".tflite": read_tflite}


# ---------------------------------------------------------------------------------- mapping
def _module_convs(model) -> List[Tuple[str, "object"]]:
    import torch.nn as nn
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def _role(conv) -> str:
    return conv_role(conv.out_channels, conv.in_channels // conv.groups, conv.kernel_size[0],
                     conv.groups)


def widths_from_records(records: List[ConvRecord]) -> Dict[str, List[int]]:
    """FastDepthNYU's ``encoder_widths`` / ``decoder_widths`` read off the file's layers: the
    stem's and each encoder pointwise's output channels, then the decoder pointwise outputs
    (the 5x5 depthwise convolutions mark the decoder).

    Raises:
        WeightsImportError: the layer sequence is not stem, separable blocks, NNConv5 layers, head.
    """
    from ..models.fastdepth_nyu import BLOCK_STRIDES
    if not records or records[0].role != "full":
        raise WeightsImportError("the first convolution is not the 3x3 stem")
    pw = [r for r in records[1:] if r.role == "pointwise"]
    k5 = [r for r in records if r.role == "depthwise" and r.weight.shape[-1] == 5]
    n_enc = len(BLOCK_STRIDES)
    if len(pw) != n_enc + len(k5) + 1:
        raise WeightsImportError(f"expected {n_enc} encoder + {len(k5)} decoder pointwise convolutions "
                           f"and a head, found {len(pw)} pointwise convolutions")
    return {"encoder_widths": [records[0].weight.shape[0]] + [r.weight.shape[0] for r in pw[:n_enc]],
            "decoder_widths": [r.weight.shape[0] for r in pw[n_enc:n_enc + len(k5)]]}


def state_dict_from_records(model, records: List[ConvRecord], tensor_names: List[str]) -> dict:
    """Map every record onto the model's convolution with the same role and shape, in order.

    Returns:
        a state dict covering every parameter of ``model``.

    Raises:
        WeightsImportError: a count, role, shape, stride or groups mismatch (naming both sides), or a
            file tensor that no layer consumed.
    """
    import torch
    convs = _module_convs(model)
    if len(convs) != len(records):
        raise WeightsImportError(f"the file has {len(records)} convolutions, the model {len(convs)}")
    state = {}
    for (name, conv), rec in zip(convs, records):
        want = (_role(conv), tuple(conv.weight.shape), conv.stride[0], conv.groups)
        got = (rec.role, tuple(rec.weight.shape), rec.stride, rec.groups)
        if want != got:
            raise WeightsImportError(f"layer {rec.name} (role, shape, stride, groups) {got} does not fit "
                               f"module {name} {want}")
        state[f"{name}.weight"] = torch.from_numpy(rec.weight.copy())
        state[f"{name}.bias"] = torch.from_numpy(rec.bias.reshape(-1).copy())
    missing = sorted(set(model.state_dict()) - set(state))
    if missing:
        raise WeightsImportError(f"module parameters without a tensor in the file: {missing}")
    used = {t for r in records for t in r.tensors}
    leftover = sorted(set(tensor_names) - used)
    if leftover:
        raise WeightsImportError(f"tensors of the file left over (not a convolution of this network): "
                           f"{leftover[:8]}{' ...' if len(leftover) > 8 else ''}")
    return state


def import_fastdepth(source: Path, out: Optional[Path] = None) -> Path:
    """Convert the FastDepth file ``source`` (``.onnx`` or ``.tflite``) into a checkpoint.

    Args:
        source: the third-party file (read as data).
        out: checkpoint path; default ``imported_weights_dir() / "fastdepth_nyu.pt"``.

    Returns:
        the checkpoint path (float32 weights, the source's name and sha256 under ``source``).

    Raises:
        FileNotFoundError: no such file.
        WeightsImportError: unknown suffix, or the file is not this network (see the mapping).
    """
    from ..core.paths import file_sha256, imported_weights_dir
    from ..models import create_model, save_checkpoint
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"weights file not found: {source}")
    reader = READERS.get(source.suffix.lower())
    if reader is None:
        raise WeightsImportError(f"{source.name}: expected one of {', '.join(READERS)}")
    records, tensors = reader(source)
    widths = widths_from_records(records)
    model = create_model("fastdepth_nyu", **widths)
    model.load_state_dict(state_dict_from_records(model, records, tensors), strict=True)
    out = Path(out) if out else imported_weights_dir() / model.spec.extras["imported_weights"]
    return save_checkpoint(model, out, source={
        "file": source.name, "sha256": file_sha256(source), "reader": reader.__name__})
