"""The per-frame pipeline of the depth node, without ROS: image array + K -> every output.

Right after inference an optional :class:`~mono_depth_ros.core.scale.MetricScaler` puts the
depth in metres from a sparse reference, the ground plane or a fixed factor; every later output
(colour map, clouds) uses the scaled depth.

``depth_node`` converts messages to arrays, calls :meth:`FramePipeline.process` and turns the
:class:`FrameResult` into messages; ``bench`` times the same code. Outputs follow
image_pipeline's depth_image_proc conventions: depth in metres with NaN for invalid pixels
(REP 118), organized clouds in the camera optical frame (REP 103).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Collection, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .geometry import CloudBuilder, OrganizedCloud, obstacle_depth
from .scale import MetricScaler, Reference, ScaleState, scaler_input
from .visualize import colorize_depth, colorize_labels

#: Outputs :meth:`FramePipeline.process` can compute (the node's topic for each in brackets):
#: ``depth`` (depth/image), ``colored`` (depth/colored), ``points`` (points), ``labels``
#: (segmentation/labels), ``seg_colored`` (segmentation/colored), ``obstacles``
#: (points/obstacles), ``relative`` (depth/relative). ``labels``, ``seg_colored`` and
#: ``obstacles`` exist only for segmentation models; relative models (affine-invariant inverse
#: depth, no metric scale) give only ``relative``.
OUTPUTS = ("depth", "colored", "points", "labels", "seg_colored", "obstacles", "relative")


@dataclass
class PipelineConfig:
    """Settings of the stages after inference.

    Attributes:
        cloud_decimation: keep every N-th pixel of the clouds in both directions (>= 1).
        cloud_rgb: add the packed ``rgb`` field to the clouds.
        colored_range: ``(min, max)`` metres of the depth colour map; ``(0, 0)`` = automatic.
        obstacle_exclude_classes: class names set to NaN in the obstacle cloud.
    """

    cloud_decimation: int = 1
    cloud_rgb: bool = True
    colored_range: Tuple[float, float] = (0.0, 0.0)
    obstacle_exclude_classes: Sequence[str] = ("Sky", "Road", "Sidewalk", "Lanemark")

    def __post_init__(self):
        if int(self.cloud_decimation) < 1:
            raise ValueError(f"cloud_decimation must be >= 1, got {self.cloud_decimation}")


@dataclass
class FrameResult:
    """Everything one frame produced; an output not asked for is ``None``.

    Attributes:
        depth: ``H x W`` float32 metres, NaN invalid (always computed; after the metric scale
            when the pipeline has a scaler). None when ``skip`` is set, and for relative models
            (no metric scale) without a usable scale.
        colored: ``H x W x 3`` uint8 BGR colour-mapped depth.
        points: organized cloud of ``depth`` (x, y, z[, rgb] float32, optical frame).
        labels: ``H x W`` uint8 class ids (segmentation models).
        seg_colored: ``H x W x 3`` uint8 BGR palette image of ``labels``.
        obstacles: organized cloud with the excluded classes set to NaN.
        timings: milliseconds per stage: ``preprocess``, ``inference``, ``postprocess`` (from the
            estimator), ``colorize`` and ``cloud``.
        warnings: problems worth a (throttled) warning, as ``(reason, text)`` pairs.
        scale: the :class:`~mono_depth_ros.core.scale.ScaleState` applied (with a scaler).
        skip: ``(reason, text)`` when the frame has no output (no usable scale and the scale
            fallback is ``skip``); every output is then None.
        relative: ``H x W`` float32 affine-invariant inverse depth (unitless, NaN invalid) of
            relative models.

    The two clouds use buffers owned by the pipeline: serialise them before the next frame.
    """

    depth: Optional[np.ndarray]
    colored: Optional[np.ndarray] = None
    points: Optional[OrganizedCloud] = None
    labels: Optional[np.ndarray] = None
    seg_colored: Optional[np.ndarray] = None
    obstacles: Optional[OrganizedCloud] = None
    timings: Dict[str, float] = field(default_factory=dict)
    warnings: List[Tuple[str, str]] = field(default_factory=list)
    scale: Optional[ScaleState] = None
    skip: Optional[Tuple[str, str]] = None
    relative: Optional[np.ndarray] = None


class FramePipeline:
    """Depth network + colour map + clouds + segmentation outputs for one frame at a time.

    Args:
        estimator: object with ``predict(rgb, K) -> Prediction`` (``depth``, ``labels``,
            ``timings``), ``palette`` and ``segmentation_info(key)``; when it has a true
            ``builds_clouds`` it is asked for the cloud too (``predict(rgb, K,
            cloud_decimation=N, cloud_rgb=B)`` -> ``Prediction.points``), e.g.
            :class:`mono_depth_ros.inference.estimator.DepthEstimator`.
        config: :class:`PipelineConfig` (defaults if omitted).
        scaler: :class:`~mono_depth_ros.core.scale.MetricScaler` applied right after inference
            (None = the network's depth as is).

    Not thread-safe: one thread calls :meth:`process`, :meth:`configure`,
    :meth:`set_estimator` and :meth:`set_scaler` (the node's worker thread).
    """

    def __init__(self, estimator, config: Optional[PipelineConfig] = None,
                 scaler: Optional[MetricScaler] = None):
        self.estimator = estimator
        self.scaler = scaler
        self.configure(config or PipelineConfig())

    def set_scaler(self, scaler: Optional[MetricScaler]) -> None:
        """Use another metric scale source from the next frame on (None = no scaling)."""
        self.scaler = scaler

    def configure(self, config: PipelineConfig) -> None:
        """Apply new settings from the next frame on (rebuilds the cloud buffers)."""
        self.config = config
        # One builder per cloud: each reuses its buffer, so points and obstacles never alias.
        self._points = CloudBuilder(config.cloud_decimation, config.cloud_rgb)
        self._obstacles = CloudBuilder(config.cloud_decimation, config.cloud_rgb)

    def set_estimator(self, estimator) -> None:
        """Use another network from the next frame on."""
        self.estimator = estimator

    def excluded_class_ids(self) -> Tuple[List[int], List[str]]:
        """Ids of ``obstacle_exclude_classes`` in the model's classes, and the unknown names."""
        names = list(self.estimator.segmentation_info("classes") or [])
        wanted = list(self.config.obstacle_exclude_classes)
        return [names.index(c) for c in wanted if c in names], [c for c in wanted if c not in names]

    def _scale(self, res: FrameResult, K: np.ndarray, reference: Optional[Reference],
               stamp: Optional[float]) -> None:
        est = self.estimator
        spec = getattr(est, "spec", None)
        t0 = time.perf_counter()
        out = self.scaler(res.depth, K, time.monotonic() if stamp is None else float(stamp),
                          getattr(spec, "output_kind", None), reference,
                          (getattr(est, "min_depth", 0.0), getattr(est, "max_depth", np.inf)))
        res.depth, res.scale = out.depth, out.state
        if out.depth is None:  # the last warning says why the frame is skipped
            res.skip, res.labels = out.warnings[-1], None
            res.warnings.extend(out.warnings[:-1])
        else:
            res.warnings.extend(out.warnings)
        res.timings["scale"] = 1e3 * (time.perf_counter() - t0)

    def process(self, rgb: np.ndarray, K: np.ndarray, wanted: Collection[str] = OUTPUTS,
                reference: Optional[Reference] = None, stamp: Optional[float] = None,
                valid: Optional[np.ndarray] = None) -> FrameResult:
        """Run one frame.

        Args:
            rgb: ``H x W x 3`` uint8 RGB image.
            K: ``3 x 3`` float intrinsics of ``rgb`` (pixels).
            wanted: names from :data:`OUTPUTS` to compute; depth is always computed.
            reference: this frame's metric reference for the scaler (sparse sources).
            stamp: frame time in seconds for the scaler's temporal filter (default: now).
            valid: ``H x W`` bool, False where ``rgb`` has no image content (the black fill of
                rectification: :meth:`~mono_depth_ros.core.camera.Rectifier.valid_mask`); the
                depth, the relative output and the clouds are NaN there, and the scaler never
                sees those pixels. None: every pixel is content.

        Returns:
            :class:`FrameResult` (only ``skip``, ``scale`` and ``warnings`` when the scaler
            found no usable scale and its fallback is ``skip``).

        Raises:
            ValueError: ``wanted`` names an unknown output, or ``valid`` is not ``H x W``.
        """
        unknown = set(wanted) - set(OUTPUTS)
        if unknown:
            raise ValueError(f"unknown outputs {sorted(unknown)}; valid: {', '.join(OUTPUTS)}")
        cfg = self.config
        # the estimator's device path builds the cloud beside the depth (one copy back); a
        # scaler changes the depth after inference, so then the cloud is built here
        device_cloud = ("points" in wanted and self.scaler is None
                        and getattr(self.estimator, "builds_clouds", False))
        pred = (self.estimator.predict(rgb, K, cloud_decimation=cfg.cloud_decimation,
                                       cloud_rgb=cfg.cloud_rgb)
                if device_cloud else self.estimator.predict(rgb, K))
        relative = getattr(pred, "relative", None)
        # with a scaler: what it scales (1 / x of a relative model; the network's depth before
        # its range mask, which then applies after the scale, in metres: core.scale)
        depth = scaler_input(pred) if self.scaler is not None else pred.depth
        if valid is not None:  # before the scaler: no fit on pixels computed from black fill
            if valid.shape != rgb.shape[:2]:
                raise ValueError(f"valid mask {valid.shape} does not match the image "
                                 f"{rgb.shape[:2]}")
            invalid = ~valid
            depth, relative = _nan_where(depth, invalid), _nan_where(relative, invalid)
            if getattr(pred, "points", None) is not None:
                d = cfg.cloud_decimation  # the device cloud keeps [::d, ::d], as CloudBuilder
                pred.points[invalid[::d, ::d], :3] = np.nan
        res = FrameResult(depth=depth, labels=pred.labels, timings=dict(pred.timings),
                          relative=relative)
        if self.scaler is not None:
            self._scale(res, K, reference, stamp)
            if res.skip:
                return res
            if relative is not None and res.scale.status in ("none", "fallback"):
                res.depth = None  # 1 / x has no unit: no metres without a usable scale
        if res.depth is None:  # relative model without a scale: no colour map or clouds
            res.labels = res.labels if "labels" in wanted else None
            res.timings.update(colorize=0.0, cloud=0.0)
            return res
        t0 = time.perf_counter()
        if "colored" in wanted:
            res.colored = colorize_depth(res.depth, *cfg.colored_range)
        if pred.labels is not None and "seg_colored" in wanted and self.estimator.palette is not None:
            res.seg_colored = colorize_labels(pred.labels, self.estimator.palette)
        t1 = time.perf_counter()
        colour = rgb if cfg.cloud_rgb else None
        if "points" in wanted and getattr(pred, "points", None) is not None:
            res.points = OrganizedCloud(pred.points, self._points.fields)
        elif "points" in wanted:
            res.points = self._points.build(res.depth, K, colour)
        if pred.labels is not None and "obstacles" in wanted:
            ids, unknown_names = self.excluded_class_ids()
            if unknown_names:
                res.warnings.append(("unknown_class", f"obstacle_exclude_classes {unknown_names} not "
                                     f"in the model's classes: ignored"))
            res.obstacles = self._obstacles.build(obstacle_depth(res.depth, pred.labels, ids), K, colour)
        if "labels" not in wanted:
            res.labels = None
        res.timings["colorize"] = 1e3 * (t1 - t0)
        res.timings["cloud"] = 1e3 * (time.perf_counter() - t1)
        return res


def _nan_where(a: Optional[np.ndarray], mask: np.ndarray) -> Optional[np.ndarray]:
    """``a`` (float ``H x W`` or None) with NaN where ``mask``; in place when writeable (the
    estimator's fresh output), else on a copy."""
    if a is None:
        return None
    if not a.flags.writeable:
        a = a.copy()
    a[mask] = np.nan
    return a
