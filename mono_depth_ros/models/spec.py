"""The per-model contract: what a network expects and what its output means.

Each registered model carries one :class:`ModelSpec` beside its definition. The inference
runtime, the node, the CLI and the evaluator read the spec instead of special-casing models, so
adding a model never touches them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np

#: ImageNet normalisation used by timm/torchvision encoders.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Output kinds understood by :func:`output_to_metric_depth` (see :data:`OUTPUT_CONVERSIONS`).
OUTPUT_KINDS = ("metric_depth", "normalized_depth", "disparity", "inverse_depth",
                "canonical_inverse_depth", "relative_inverse")
#: Output kinds with no metric scale: affine-invariant inverse depth (MiDaS / DPT, Depth Anything
#: relative). They need a scale source; without one the node publishes ``depth/relative``.
RELATIVE_KINDS = ("relative_inverse",)
#: Interpolations of :class:`Preprocessing` (``area``: OpenCV INTER_AREA when shrinking, else
#: INTER_LINEAR, on the CPU; the others: torch / torchvision on the model's device).
INTERPOLATIONS = ("area", "bilinear", "bicubic")
#: Resize rules of :class:`Preprocessing`.
RESIZE_RULES = ("stretch", "keep_aspect", "floor_multiple")
#: Views of :class:`Preprocessing`: the whole image, or a centred window whose focal at the
#: network input matches the training camera's (``train_focal``).
VIEWS = ("full", "focal_crop")


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the network input, and the output goes back to the image size.

    The defaults are this package's own recipe (OpenCV resize to ``input_size`` on the CPU).
    Hugging Face models set the fields to reproduce their ``image_processor`` (DPT, GLPN,
    ZoeDepth, Depth Pro processors of ``transformers``) with tensors on the model's device.

    Attributes:
        resize: ``stretch`` (to ``input_size`` exactly), ``keep_aspect`` (DPT rule: scale both
            sides by the factor closer to 1 of the two that reach ``input_size``, then round each
            side to a multiple of ``multiple``) or ``floor_multiple`` (GLPN: keep the image size,
            rounded down to a multiple of ``multiple``).
        multiple: network input sides must be multiples of this (14 for DINOv2 backbones).
        interpolation: one of :data:`INTERPOLATIONS`.
        antialias: antialiased resize (torchvision's ``antialias``).
        align_corners: ``F.interpolate`` ``align_corners`` (ZoeDepth's processor uses True).
        normalize_first: scale and normalise before resizing (Depth Pro, ZoeDepth); otherwise
            the uint8 image is resized first (rounded back to uint8, as torchvision does).
        reflect_pad: ZoeDepth's reflect padding of ``int(sqrt(side / 2) * 3)`` pixels, removed
            again from the output.
        output_interpolation: ``bilinear`` or ``bicubic`` resize of the output map to the image.
        view: ``full`` (the whole image is resized) or ``focal_crop``: a centred window of
            width ``fx / train_focal`` (so the network sees the training focal; shrunk to fit
            the image, the focal correction covering the rest) and height ``crop_aspect`` x
            width is fed instead, and its prediction is pasted back, each pixel outside taking
            the value of the nearest window pixel (FastDepth's NYU view, Wofk et al. 2019).
        crop_aspect: height / width of the ``focal_crop`` window (the training crop's).
    """

    resize: str = "stretch"
    multiple: int = 32
    interpolation: str = "area"
    antialias: bool = True
    align_corners: bool = False
    normalize_first: bool = False
    reflect_pad: bool = False
    output_interpolation: str = "bilinear"
    view: str = "full"
    crop_aspect: float = 0.75

    def __post_init__(self) -> None:
        if self.view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {self.view!r}")
        if not 0 < float(self.crop_aspect) <= 10:
            raise ValueError(f"crop_aspect must be in (0, 10], got {self.crop_aspect}")
        if self.resize not in RESIZE_RULES:
            raise ValueError(f"resize must be one of {RESIZE_RULES}, got {self.resize!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, "
                             f"got {self.interpolation!r}")
        if self.output_interpolation not in ("bilinear", "bicubic"):
            raise ValueError(f"output_interpolation must be bilinear or bicubic, "
                             f"got {self.output_interpolation!r}")
        if int(self.multiple) < 1:
            raise ValueError(f"multiple must be >= 1, got {self.multiple}")

    @property
    def on_device(self) -> bool:
        """Whether pre/post-processing runs with tensors on the model's device."""
        return self.interpolation != "area"

    @property
    def size_multiple(self) -> int:
        """What a requested network input size must be a multiple of: ``multiple`` when the image
        is stretched to that size; 1 for the other rules, which round any target themselves."""
        return int(self.multiple) if self.resize == "stretch" else 1


@dataclass(frozen=True)
class ModelSpec:
    """Contract of one registered network.

    Attributes:
        name: Registry name (public interface, e.g. ``"fastdepth"``).
        input_size: Network input ``(height, width)`` in pixels.
        channel_order: ``"RGB"`` or ``"BGR"``; images reach the model in this order.
        mean, std: Per-channel normalisation applied to ``[0, 1]`` pixel values.
        output_kind: One of :data:`OUTPUT_KINDS`:
            ``metric_depth`` (metres), ``normalized_depth`` (``[0, 1]`` mapped linearly onto
            ``depth_range``), ``disparity`` (fraction of image width; needs ``stereo_baseline``),
            ``inverse_depth`` (1/m), ``canonical_inverse_depth`` (Depth Pro: inverse depth of a
            camera with ``fx / W = 1``; metres = ``(fx / W) / output``) or
            ``relative_inverse`` (affine-invariant inverse depth, unitless: no metric
            scale, see :data:`RELATIVE_KINDS`).
        depth_range: ``(min, max)`` metres the model was trained for.
        train_focal: Horizontal focal length divided by image width (``fx / W``) of the
            training camera, or ``None``. With ``rescale_by_focal``, predicted metric depth is
            multiplied by ``(fx / W) / train_focal`` for a different camera (a wider lens sees the
            same object smaller, so the network under-estimates its distance by that ratio).
            Disparity outputs are converted with the camera's own fx already and get no second
            correction (:func:`focal_correction`).
        train_median_depth: Median valid depth (m) of the training set, or ``None``: the value
            of the constant-depth baseline that evaluations show beside the model.
        rescale_by_focal: Whether the runtime applies the focal rescaling above.
        stereo_baseline: Baseline in metres for ``disparity`` outputs.
        returns_segmentation: The model also returns class scores (OHES planes).
        num_classes: Number of segmentation classes when ``returns_segmentation``.
        needs_semantic_input: The model takes RGB plus OHES planes (run behind ``unet_seg``).
        recommended_loss: Loss name used to train it (see ``mono_depth_ros.training.losses``).
        citation: Paper the architecture follows.
        description: One-line human description.
        weights_licence: Licence of the weights the model loads by default (shipped or hub).
        preprocessing: :class:`Preprocessing` recipe (resize rule, interpolation, output resize).
        extras: Model-specific facts (``default_checkpoint``, ``hub_id``, class names, ...).
    """

    name: str
    input_size: Tuple[int, int]
    output_kind: str
    citation: str
    description: str = ""
    channel_order: str = "RGB"
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    depth_range: Tuple[float, float] = (0.1, 10.0)
    train_focal: Optional[float] = None
    rescale_by_focal: bool = False
    train_median_depth: Optional[float] = None
    stereo_baseline: Optional[float] = None
    returns_segmentation: bool = False
    num_classes: int = 0
    needs_semantic_input: bool = False
    recommended_loss: str = "l1"
    weights_licence: str = "none (no trained weights)"
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    extras: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.output_kind not in OUTPUT_KINDS:
            raise ValueError(f"output_kind {self.output_kind!r} not in {OUTPUT_KINDS}")
        if self.output_kind == "disparity" and not self.stereo_baseline:
            raise ValueError(f"{self.name}: disparity output needs stereo_baseline (m)")
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be RGB or BGR, got {self.channel_order!r}")

    def replace(self, **changes) -> "ModelSpec":
        """Return a copy with ``changes`` applied (e.g. a checkpoint's ``train_focal``)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown ModelSpec fields {sorted(unknown)}; valid: {sorted(known)}")
        return dataclasses.replace(self, **changes)

    @property
    def is_relative(self) -> bool:
        """The output has no metric scale (:data:`RELATIVE_KINDS`)."""
        return self.output_kind in RELATIVE_KINDS

    def to_dict(self) -> dict:
        """JSON-friendly dict (stored inside checkpoints and printed by the CLI)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelSpec":
        """Inverse of :meth:`to_dict` (lists become tuples; unknown keys raise ValueError).

        Used for specs stored in ONNX metadata and in the YAML/JSON file beside a third-party
        ONNX model; missing optional fields keep their defaults.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ModelSpec fields {sorted(unknown)}; valid: {sorted(known)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        if isinstance(values.get("preprocessing"), dict):
            values["preprocessing"] = Preprocessing(**values["preprocessing"])
        return cls(**values)


def _is_tensor(x) -> bool:
    # torch stays a lazy import here: the spec is read by light tools (launch, CLI help)
    return type(x).__module__.startswith("torch")


def _positive_inverse(numerator: float, out):
    """``numerator / out`` where ``out > 0``, else ``inf``: numpy float32 or a torch tensor (the
    GPU path converts on the device)."""
    if _is_tensor(out):
        import torch
        return torch.where(out > 0, numerator / out, torch.inf)
    return np.where(out > 0, numerator / out, np.inf).astype(np.float32)


def _metric(out, spec: "ModelSpec", fx_norm: float):
    return out


def _normalized(out, spec: "ModelSpec", fx_norm: float):
    lo, hi = spec.depth_range
    return lo + out * float(hi - lo)


def _inverse(out, spec: "ModelSpec", fx_norm: float):
    return _positive_inverse(1.0, out)


def _disparity(out, spec: "ModelSpec", fx_norm: float):
    # Z = fx * B / (d * W) with the camera's own fx / W: already camera-aware.
    return _positive_inverse(fx_norm * spec.stereo_baseline, out)


def _canonical_inverse(out, spec: "ModelSpec", fx_norm: float):
    # Depth Pro: inverse depth of a camera with fx / W = 1, so Z = (fx / W) / output
    return _positive_inverse(float(fx_norm), out)


def _no_scale(out, spec: "ModelSpec", fx_norm: float):
    # RELATIVE_KINDS: the conversion table itself refuses them
    raise ValueError(f"{spec.name}: {spec.output_kind} has no metric scale")


#: Per output kind: ``(to_depth(output, spec, fx / W) -> metres, camera_aware)``. A kind that is
#: not camera-aware is learnt at the training camera's focal and gets the ``train_focal``
#: correction; a camera-aware one already uses the camera's focal (correcting again would count
#: the lens twice).
OUTPUT_CONVERSIONS = {
    "metric_depth": (_metric, False),
    "normalized_depth": (_normalized, False),
    "inverse_depth": (_inverse, False),
    "disparity": (_disparity, True),
    "canonical_inverse_depth": (_canonical_inverse, True),
    "relative_inverse": (_no_scale, False),  # RELATIVE_KINDS: needs a scale source
}


def focal_correction(spec: "ModelSpec", fx_norm: float) -> float:
    """Factor applied to the depth of a non-camera-aware output kind for a camera with
    ``fx / W = fx_norm``: ``fx_norm / spec.train_focal`` when ``spec.rescale_by_focal`` and a
    training focal is known, else 1 (see :class:`ModelSpec`)."""
    camera_aware = OUTPUT_CONVERSIONS[spec.output_kind][1]
    if camera_aware or not (spec.rescale_by_focal and spec.train_focal):
        return 1.0
    return float(fx_norm / spec.train_focal)


def output_to_metric_depth(output, spec: ModelSpec, fx: float, width: int):
    """Convert a raw network output map into metric depth.

    Args:
        output: ``H x W`` float32 map in the unit named by ``spec.output_kind``: a numpy array,
            or a torch tensor on any device (the GPU path; the result is then a tensor there).
        spec: The model's contract.
        fx: Horizontal focal length in pixels of the camera at resolution ``width`` (for
            ``canonical_inverse_depth``: the camera's, or the one the model predicted).
        width: Image width in pixels matching ``fx``.

    Returns:
        ``H x W`` float32 depth in metres, with the focal correction of
        :func:`focal_correction` (once, whatever the kind). Non-positive disparities / inverse
        depths become ``inf`` (the caller masks them to NaN with the valid range).

    Raises:
        ValueError: ``fx`` or ``width`` not positive, or a relative output kind (no metric scale).
    """
    if not (fx > 0 and width > 0):
        raise ValueError(f"fx and width must be positive, got fx={fx}, width={width}")
    fx_norm = fx / width
    to_depth, _ = OUTPUT_CONVERSIONS[spec.output_kind]
    output = output.float() if _is_tensor(output) else output.astype(
        np.float32, copy=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = to_depth(output, spec, fx_norm)
    factor = focal_correction(spec, fx_norm)
    if factor == 1.0:
        return depth
    return depth * (float(factor) if _is_tensor(depth) else np.float32(factor))
