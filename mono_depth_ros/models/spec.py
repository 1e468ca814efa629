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
OUTPUT_KINDS = ("metric_depth", "normalized_depth", "disparity", "inverse_depth")


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
            ``depth_range``), ``disparity`` (fraction of image width; needs ``stereo_baseline``)
            or ``inverse_depth`` (1/m).
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

    def to_dict(self) -> dict:
        """JSON-friendly dict (stored inside checkpoints and printed by the CLI)."""
        return dataclasses.asdict(self)


def _metric(out: np.ndarray, spec: "ModelSpec", fx_norm: float) -> np.ndarray:
    return out


def _normalized(out: np.ndarray, spec: "ModelSpec", fx_norm: float) -> np.ndarray:
    lo, hi = spec.depth_range
    return lo + out * np.float32(hi - lo)


def _inverse(out: np.ndarray, spec: "ModelSpec", fx_norm: float) -> np.ndarray:
    return np.where(out > 0, 1.0 / out, np.inf).astype(np.float32)


def _disparity(out: np.ndarray, spec: "ModelSpec", fx_norm: float) -> np.ndarray:
    # Z = fx * B / (d * W) with the camera's own fx / W: already camera-aware.
    return np.where(out > 0, fx_norm * spec.stereo_baseline / out, np.inf).astype(np.float32)


#: Per output kind: ``(to_depth(output, spec, fx / W) -> metres, camera_aware)``. A kind that is
#: not camera-aware is learnt at the training camera's focal and gets the ``train_focal``
#: correction; a camera-aware one already uses the camera's focal (correcting again would count
#: the lens twice).
OUTPUT_CONVERSIONS = {
    "metric_depth": (_metric, False),
    "normalized_depth": (_normalized, False),
    "inverse_depth": (_inverse, False),
    "disparity": (_disparity, True),
}


def focal_correction(spec: "ModelSpec", fx_norm: float) -> float:
    """Factor applied to the depth of a non-camera-aware output kind for a camera with
    ``fx / W = fx_norm``: ``fx_norm / spec.train_focal`` when ``spec.rescale_by_focal`` and a
    training focal is known, else 1 (see :class:`ModelSpec`)."""
    camera_aware = OUTPUT_CONVERSIONS[spec.output_kind][1]
    if camera_aware or not (spec.rescale_by_focal and spec.train_focal):
        return 1.0
    return float(fx_norm / spec.train_focal)


def output_to_metric_depth(
    output: np.ndarray, spec: ModelSpec, fx: float, width: int
) -> np.ndarray:
    """Convert a raw network output map into metric depth.

    Args:
        output: ``H x W`` float32 map in the unit named by ``spec.output_kind``.
        spec: The model's contract.
        fx: Horizontal focal length in pixels of the camera at resolution ``width``.
        width: Image width in pixels matching ``fx``.

    Returns:
        ``H x W`` float32 depth in metres, with the focal correction of
        :func:`focal_correction` (once, whatever the kind). Non-positive disparities / inverse
        depths become ``inf`` (the caller masks them to NaN with the valid range).

    Raises:
        ValueError: ``fx`` or ``width`` not positive.
    """
    if not (fx > 0 and width > 0):
        raise ValueError(f"fx and width must be positive, got fx={fx}, width={width}")
    fx_norm = fx / width
    to_depth, _ = OUTPUT_CONVERSIONS[spec.output_kind]
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = to_depth(output.astype(np.float32, copy=False), spec, fx_norm)
    factor = focal_correction(spec, fx_norm)
    return depth * np.float32(factor) if factor != 1.0 else depth
