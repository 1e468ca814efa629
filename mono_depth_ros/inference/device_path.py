"""The whole frame on the model's device (ROS-free): upload once, pre- and post-process there,
copy back once.

The CPU path (:func:`~mono_depth_ros.inference.preprocess.prepare` with OpenCV, numpy metric
conversion, :class:`~mono_depth_ros.core.geometry.CloudBuilder`) is the fastest on a CPU. On a
GPU every host step between kernels costs more than the kernels, so :class:`DeviceFrame` keeps
the frame there:

1. :meth:`DeviceFrame.upload`: the ``H x W x 3`` uint8 image is copied once into a page-locked
   (pinned) host buffer and sent to the device with a non-blocking copy;
2. :meth:`DeviceFrame.prepare`: resize and normalise on the device (``area`` models: area
   averaging when shrinking, bilinear when enlarging, the OpenCV recipe's device counterpart;
   the Hugging Face recipes are already device-side in ``prepare``);
3. :meth:`DeviceFrame.finish`: upsample to the image, convert to metres
   (:func:`~mono_depth_ros.models.spec.output_to_metric_depth` works on tensors), range mask to
   NaN (REP 118), back-project with ``K`` and pack ``0x00RRGGBB`` (the
   :class:`~mono_depth_ros.core.geometry.CloudBuilder` layout, REP 103 optical frame), all into
   one flat device buffer, then **one** device-to-host copy into a pinned buffer.

Buffers come from torch's caching allocators (device and pinned host), so after the first frame
of a size there are no driver allocations; the numpy arrays handed out own their block until
they are dropped, so a caller may keep them across frames. On a CPU device the same code runs
(nothing is pinned): the tests check it against the CPU path there.

:class:`GraphRunner` replays the network from a CUDA graph captured per input shape (static
input/output tensors, re-captured when the shape changes) - the ``cuda_graph`` backend of
:mod:`~mono_depth_ros.inference.backends`. Batch-1 inference of small networks is bound by
kernel launches; a graph launches them all at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..core.geometry import ray_grid, ray_key
from ..models.spec import ModelSpec, output_to_metric_depth
from .preprocess import (Prepared, crop_to_view, network_size, normalize_images, prepare,
                         restore)


def _copy_into(static, value):
    """Copy ``value`` (tensor or dict of tensors) into ``static`` of the same structure (or
    allocate it when ``static`` is None); returns ``static``."""
    if isinstance(value, dict):
        static = static if static is not None else {}
        for k, v in value.items():
            static[k] = _copy_into(static.get(k), v)
        return static
    if static is None or static.shape != value.shape or static.dtype != value.dtype:
        return value.clone()
    return static.copy_(value)


@dataclass
class _Graph:
    static_in: torch.Tensor
    static_out: object = None
    graph: Optional["torch.cuda.CUDAGraph"] = None


class GraphRunner:
    """``fn(x)`` replayed from a CUDA graph, one per input shape and dtype.

    On the first input of a shape the runner warms ``fn`` up on a side stream, captures one call
    into a ``torch.cuda.CUDAGraph`` reading a static input tensor and writing static outputs;
    later calls copy ``x`` into the static input and replay. A new shape (another camera size,
    a changed ``input_size``) is captured anew; at most ``max_graphs`` graphs are kept (oldest
    dropped first).

    Without CUDA (``capture=False``, the default off a GPU) the same static-buffer logic runs
    eagerly, so the shape bookkeeping, buffer reuse and outputs are testable on a CPU.

    Args:
        fn: the network: ``B x C x h x w`` float tensor -> tensor or dict of tensors. Must not
            synchronise with the host or change shapes with the data (true of this package's
            own models).
        capture: capture CUDA graphs; default: whether ``device`` is CUDA.
        warmup: eager calls before a capture (cuDNN picks its kernels there).
        max_graphs: graphs kept.

    Attributes:
        captures: graphs captured so far (tests read it). ``fallbacks``: captures that failed
            and run eagerly instead (with ``last_error``).

    The returned tensors are the runner's static outputs: read them before the next call.
    """

    def __init__(self, fn: Callable, device: torch.device, capture: Optional[bool] = None,
                 warmup: int = 2, max_graphs: int = 4):
        self.fn = fn
        self.device = torch.device(device)
        self.capture = (self.device.type == "cuda") if capture is None else bool(capture)
        self.warmup = int(warmup)
        self.max_graphs = int(max_graphs)
        self._graphs: Dict[tuple, _Graph] = {}
        self.captures = 0
        self.fallbacks = 0
        self.last_error: Optional[str] = None

    def _key(self, x: torch.Tensor) -> tuple:
        amp = torch.is_autocast_enabled(x.device.type)
        return (tuple(x.shape), x.dtype,
                torch.get_autocast_dtype(x.device.type) if amp else None)

    def _capture(self, x: torch.Tensor) -> _Graph:
        g = _Graph(static_in=x.detach().clone())
        if self.capture:
            try:
                side = torch.cuda.Stream(self.device)
                side.wait_stream(torch.cuda.current_stream(self.device))
                with torch.cuda.stream(side):
                    for _ in range(self.warmup):
                        self.fn(g.static_in)
                torch.cuda.current_stream(self.device).wait_stream(side)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    g.static_out = self.fn(g.static_in)
                g.graph = graph
            except Exception as exc:  # an op that cannot be captured: stay eager, say why
                self.fallbacks += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                g.graph, g.static_out = None, None
        self.captures += 1
        return g

    def __call__(self, x: torch.Tensor):
        key = self._key(x)
        g = self._graphs.pop(key, None)
        if g is None:
            if len(self._graphs) >= self.max_graphs:
                self._graphs.pop(next(iter(self._graphs)))
            g = self._capture(x)
        self._graphs[key] = g  # most recently used last
        g.static_in.copy_(x)
        if g.graph is not None:
            g.graph.replay()
        else:
            g.static_out = _copy_into(g.static_out, self.fn(g.static_in))
        return g.static_out


def area_matrix(n_in: int, n_out: int, device=None) -> torch.Tensor:
    """``n_out x n_in`` float32 weights of box-filter (area) shrinking along one axis: output
    pixel ``i`` averages the input over ``[i s, (i + 1) s)``, ``s = n_in / n_out``, each input
    pixel weighted by its overlap - OpenCV's INTER_AREA for a shrink, as two matrix products.

    Raises:
        ValueError: ``n_out > n_in`` (not a shrink) or a non-positive size.
    """
    if not 0 < n_out <= n_in:
        raise ValueError(f"area shrink needs 0 < n_out <= n_in, got {n_out}, {n_in}")
    s = n_in / n_out
    lo = torch.arange(n_out, dtype=torch.float64)[:, None] * s
    j = torch.arange(n_in, dtype=torch.float64)[None, :]
    overlap = (torch.minimum(lo + s, j + 1) - torch.maximum(lo, j)).clamp_(min=0)
    return (overlap / s).float().to(device)


def _empty_host(shape, dtype: torch.dtype, pin: bool) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, pin_memory=pin)


class DeviceFrame:
    """Pre- and post-processing of one frame on the model's device (see the module docstring).

    Args:
        device: the model's device.
        min_depth, max_depth: valid range in metres (outside -> NaN).

    Not thread-safe (one per estimator; the node runs one worker thread).
    """

    def __init__(self, device: torch.device, min_depth: float, max_depth: float):
        self.device = torch.device(device)
        self.pin = self.device.type == "cuda"
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        self._rays_key: Optional[tuple] = None
        self._area_key: Optional[tuple] = None
        self._area: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
        self._rays: Optional[Tuple[torch.Tensor, torch.Tensor]] = None

    def upload(self, rgb: np.ndarray) -> torch.Tensor:
        """``H x W x 3`` uint8 numpy image -> the same as a uint8 tensor on the device (one
        pinned staging copy, one non-blocking host-to-device copy)."""
        if self.device.type != "cuda":
            return torch.from_numpy(np.ascontiguousarray(rgb))
        host = _empty_host(rgb.shape, torch.uint8, True)
        host.numpy()[...] = rgb
        return host.to(self.device, non_blocking=True)

    def prepare(self, img: torch.Tensor, spec: ModelSpec, target_hw: Tuple[int, int],
                fx: Optional[float] = None) -> Prepared:
        """Network input ``1 x 3 x h x w`` float32 from the uploaded ``H x W x 3`` uint8 image.

        ``area`` models: normalise, then area-average to the network size when shrinking
        (:func:`area_matrix`, exact fractional box weights) or bilinear (``align_corners=False``)
        when enlarging: the device counterpart of the CPU path's OpenCV INTER_AREA /
        INTER_LINEAR (the CPU path also rounds the resized image to uint8; the inputs then
        differ by at most half a grey level). Other recipes: :func:`prepare`. ``fx``: the
        camera's focal (pixels) for the ``focal_crop`` view (:func:`view_window`).
        """
        pp = spec.preprocessing
        if pp.on_device:
            return prepare(img, spec, target_hw, self.device, fx)
        img, window = crop_to_view(img, spec, fx)
        H, W = img.shape[:2]
        h, w = network_size((H, W), target_hw, pp)
        x = normalize_images(img.unsqueeze(0), spec)
        if (h, w) == (H, W):
            return Prepared(x, window=window)
        if h <= H and w <= W:
            key = (H, W, h, w)
            if key != self._area_key:
                self._area = (area_matrix(H, h, self.device), area_matrix(W, w, self.device).T)
                self._area_key = key
            ry, rx = self._area
            return Prepared(torch.matmul(torch.matmul(ry, x), rx), window=window)
        return Prepared(F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False),
                        window=window)

    def _ray_grid(self, K: np.ndarray, h: int, w: int, step: int):
        """:func:`~mono_depth_ros.core.geometry.ray_grid` (the host cloud's rays, so both
        clouds are the same floats) as a row and a column on the device, cached per K/size."""
        key = ray_key(K, h, w, step)
        if key != self._rays_key:
            rx, ry = ray_grid(K, h, w, step)
            self._rays = (torch.from_numpy(rx[:1].copy()).to(self.device),
                          torch.from_numpy(ry[:, :1].copy()).to(self.device))
            self._rays_key = key
        return self._rays

    def finish(self, out: torch.Tensor, prepared: Prepared, spec: ModelSpec, K: np.ndarray,
               image_hw: Tuple[int, int], fx: float, img: Optional[torch.Tensor] = None,
               cloud_decimation: Optional[int] = None
               ) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """Metric depth, unmasked depth and (optionally) the organized cloud, with one
        device-to-host copy.

        Args:
            out: network output ``1 x 1 x h x w`` (the model's output kind) on the device.
            prepared: what :meth:`prepare` returned (the padding to cut away).
            K: ``3 x 3`` intrinsics of the image (pixels).
            image_hw: ``(H, W)`` of the image.
            fx: focal length (pixels) used for the output-kind conversion.
            img: the uploaded image, for the cloud's colour (None: an XYZ cloud).
            cloud_decimation: build the cloud keeping every N-th pixel (None: no cloud).

        Returns:
            ``(depth, unmasked, points)``: ``H x W`` float32 metres with NaN outside
            ``[min_depth, max_depth]``; ``H x W`` float32 metres before the mask (``inf``
            where the network gave no positive value); ``ceil(H/d) x ceil(W/d) x (3|4)``
            float32 x, y, z[, rgb] (optical frame, NaN where depth is), or None.
        """
        H, W = image_hw
        raw = restore(out, prepared, (H, W), spec)[0, 0]
        unmasked = output_to_metric_depth(raw, spec, fx=fx, width=prepared.seen_width(W))
        keep = (unmasked >= self.min_depth) & (unmasked <= self.max_depth)
        n = H * W
        channels, hh, ww = 0, 0, 0
        if cloud_decimation is not None:
            d = int(cloud_decimation)
            hh, ww = -(-H // d), -(-W // d)
            channels = 4 if img is not None else 3
        flat = torch.empty(2 * n + hh * ww * channels, dtype=torch.float32, device=self.device)
        depth_d = flat[:n].view(H, W)
        depth_d.copy_(unmasked).masked_fill_(~keep, torch.nan)
        flat[n:2 * n].view(H, W).copy_(unmasked)
        if channels:
            z = depth_d[::d, ::d]
            rx, ry = self._ray_grid(K, H, W, d)
            cloud = flat[2 * n:].view(hh, ww, channels)
            torch.mul(z, rx, out=cloud[..., 0])
            torch.mul(z, ry, out=cloud[..., 1])
            cloud[..., 2].copy_(z)
            if img is not None:
                c = img[::d, ::d].to(torch.int32)
                packed = (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]
                cloud[..., 3].copy_(packed.view(torch.float32))
        host = flat if not self.pin else _empty_host(flat.shape, torch.float32, True)
        if self.pin:
            host.copy_(flat, non_blocking=True)
            torch.cuda.current_stream(self.device).synchronize()
        arr = host.numpy()
        points = arr[2 * n:].reshape(hh, ww, channels) if channels else None
        return arr[:n].reshape(H, W), arr[n:2 * n].reshape(H, W), points
