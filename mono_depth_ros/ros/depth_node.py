"""depth_node: monocular camera in, metric depth image and organized point cloud out.

Subscribes (relative names, remap them in launch):
    ``image`` (sensor_msgs/Image: rgb8, bgr8, rgba8, bgra8, mono8, mono16) or, with
    ``use_compressed``, ``image/compressed`` (sensor_msgs/CompressedImage jpeg/png);
    ``camera_info`` (sensor_msgs/CameraInfo).
Publishes, each with the input image's header unchanged:
    ``depth/image`` (32FC1 metres, NaN invalid, REP 118), ``depth/camera_info``,
    ``depth/colored`` (bgr8), ``points`` (organized PointCloud2 x, y, z[, rgb] in the optical
    frame, REP 103), and for segmentation models ``segmentation/labels`` (mono8 class ids),
    ``segmentation/colored`` (bgr8) and ``points/obstacles`` (the organized cloud with the
    pixels of ``obstacle_exclude_classes`` - sky, road, sidewalk, lane marks - set to NaN, so a
    Nav2 voxel layer marks obstacles without ground or sky).
Metric scale (``scale_source``: none, fixed, sparse_depth, scan, ground_plane): see
:mod:`mono_depth_ros.ros.scale_source`; ``depth/image`` is in metres after the scale, and
``depth/scale`` carries the scale with its support and residual.

The subscription callbacks only store the newest frame (a size-1 slot; a frame still waiting
when the next arrives is dropped and counted); a worker thread decodes, infers and publishes,
so a slow network never backs up DDS. Only outputs with subscribers are computed. Every
malformed input is skipped with a throttled warning naming the problem and a counter.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional

import rclpy
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from ..core.geometry import InvalidCameraInfo, intrinsics_from_camera_info, scale_intrinsics
from ..core.image_codec import InvalidImage, compressed_msg_to_rgb, image_msg_to_rgb
from ..core.pipeline import FramePipeline, PipelineConfig
from ..core.stats import PipelineStats
from ..inference.estimator import DepthEstimator
from ..models import list_models
from .conversions import depth_camera_info, make_cloud, make_image, qos_profile, stamp_ns
from .scale_source import ScaleSourceAdapter

#: Parameters whose change rebuilds the estimator (applied before the next frame).
MODEL_PARAMS = ("model", "checkpoint", "seg_checkpoint", "device", "precision", "input_width",
                "input_height", "min_depth", "max_depth", "stateful")
#: Parameters of the stages after inference (applied by the worker before the next frame).
PIPELINE_PARAMS = ("cloud_decimation", "cloud_rgb", "colored_min", "colored_max",
                   "obstacle_exclude_classes")
#: Output topic of each pipeline output (core.pipeline.OUTPUTS), and its message kind.
OUTPUT_TOPICS = {"depth": ("depth/image", Image), "colored": ("depth/colored", Image),
                 "points": ("points", PointCloud2), "labels": ("segmentation/labels", Image),
                 "seg_colored": ("segmentation/colored", Image),
                 "obstacles": ("points/obstacles", PointCloud2)}
#: Encoding of each image output.
OUTPUT_ENCODINGS = {"depth": "32FC1", "colored": "bgr8", "labels": "mono8", "seg_colored": "bgr8"}

PARAMETERS = {
    "model": ("fastdepth", "registered model name (mono-depth-ros models lists them)"),
    "checkpoint": ("", "weights file; empty = the model's shipped default"),
    "seg_checkpoint": ("", "unet_seg weights for models that need OHES input"),
    "device": ("auto", "auto (CUDA if available, else CPU), cpu, cuda, cuda:N"),
    "precision": ("fp32", "fp32, fp16 or bf16 where the device supports it"),
    "input_width": (0, "network input width in px (0 = model default)"),
    "input_height": (0, "network input height in px (0 = model default)"),
    "min_depth": (0.0, "minimum valid depth in m (0 = model default)"),
    "max_depth": (0.0, "maximum valid depth in m (0 = model default)"),
    "stateful": (False, "keep recurrent state across frames (siamese_convlstm)"),
    "use_compressed": (False, "subscribe image/compressed instead of image"),
    "camera_info_fallback_latest": (True, "no camera_info with the image stamp: use the newest"),
    "input_reliability": ("best_effort", "QoS reliability of inputs: best_effort or reliable"),
    "input_depth": (1, "QoS history depth of inputs"),
    "output_reliability": ("best_effort", "QoS reliability of outputs"),
    "output_depth": (1, "QoS history depth of outputs"),
    "colored_min": (0.0, "depth/colored range start in m (min = max = 0: automatic)"),
    "colored_max": (0.0, "depth/colored range end in m"),
    "cloud_decimation": (1, "keep every N-th pixel in the point cloud"),
    "cloud_rgb": (True, "add the packed rgb field to points"),
    "stats_period": (5.0, "seconds between status lines (0 disables)"),
    "warn_throttle": (5.0, "minimum seconds between two warnings of one kind"),
    "stats_file": ("", "write final counters and latencies as JSON here on shutdown"),
    "obstacle_exclude_classes": (["Sky", "Road", "Sidewalk", "Lanemark"],
                                 "class names set to NaN in points/obstacles (segmentation models)"),
}


class DepthNode(Node):
    """See the module docstring. ``process_frame`` runs one frame synchronously (tests)."""

    def __init__(self, **kwargs):
        super().__init__("depth_node", **kwargs)
        for name, (default, doc) in PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=doc))
        self.stats = PipelineStats()
        self._warned: Dict[str, float] = {}
        self._lock = threading.Condition()
        self._slot: Optional[tuple] = None
        self._infos: "OrderedDict[int, CameraInfo]" = OrderedDict()
        self._rebuild: Optional[dict] = None  # parameter values of a pending model switch
        self._reconfigure: Optional[dict] = None  # parameter values of pending pipeline settings
        self._running = True

        self.pipeline = FramePipeline(self._make_estimator(), self._pipeline_config())

        qin = qos_profile(self.p("input_reliability"), self.p("input_depth"))
        qout = qos_profile(self.p("output_reliability"), self.p("output_depth"))
        if self.p("use_compressed"):
            self.create_subscription(CompressedImage, "image/compressed", self._on_image, qin)
        else:
            self.create_subscription(Image, "image", self._on_image, qin)
        self.create_subscription(CameraInfo, "camera_info", self._on_info, qin)
        self.pubs = {name: self.create_publisher(kind, topic, qout)
                     for name, (topic, kind) in OUTPUT_TOPICS.items()}
        self.pub_info = self.create_publisher(CameraInfo, "depth/camera_info", qout)
        self.scale_source = ScaleSourceAdapter(self, self.pipeline, qin, qout)  # scale_* params
        self.add_on_set_parameters_callback(self._on_params)
        if self.p("stats_period") > 0:
            self.create_timer(self.p("stats_period"), self._log_stats)
        self._worker = threading.Thread(target=self._run, name="depth_worker", daemon=True)
        self._worker.start()
        est = self.estimator
        self.get_logger().info(f"model={est.name} device={est.device} input={est.input_size} "
                               f"checkpoint={est.checkpoint}")

    # ----------------------------------------------------------------- parameters
    def p(self, name: str):
        """Current value of parameter ``name``."""
        return self.get_parameter(name).value

    @property
    def estimator(self) -> DepthEstimator:
        """The network in use."""
        return self.pipeline.estimator

    def _pipeline_config(self, new: Optional[dict] = None) -> PipelineConfig:
        v = {name: new[name] if new and name in new else self.p(name) for name in PIPELINE_PARAMS}
        return PipelineConfig(cloud_decimation=int(v["cloud_decimation"]), cloud_rgb=bool(v["cloud_rgb"]),
                              colored_range=(float(v["colored_min"]), float(v["colored_max"])),
                              obstacle_exclude_classes=tuple(v["obstacle_exclude_classes"]))

    def _make_estimator(self, new: Optional[dict] = None) -> DepthEstimator:
        # ``new``: values from the set-parameters callback, which runs before rclpy stores them
        v = {name: new[name] if new and name in new else self.p(name) for name in MODEL_PARAMS}
        w, h = v["input_width"], v["input_height"]
        est = DepthEstimator(
            model=v["model"], checkpoint=v["checkpoint"] or None,
            seg_checkpoint=v["seg_checkpoint"] or None, device=v["device"],
            precision=v["precision"], input_size=(h, w) if w > 0 and h > 0 else None,
            min_depth=v["min_depth"] or None, max_depth=v["max_depth"] or None,
            stateful=v["stateful"])
        for msg in est.warnings:
            self.get_logger().warning(msg)
        return est

    def _on_params(self, params) -> SetParametersResult:
        for prm in params:
            if prm.name == "model" and prm.value not in list_models():
                return SetParametersResult(
                    successful=False,
                    reason=f"unknown model {prm.value!r}; valid: {', '.join(list_models())}")
            if prm.name == "cloud_decimation" and int(prm.value) < 1:
                return SetParametersResult(successful=False, reason="cloud_decimation must be >= 1")
        # Changes are handed to the worker thread, which applies them between frames: the
        # pipeline is never modified while it processes a frame.
        model = {prm.name: prm.value for prm in params if prm.name in MODEL_PARAMS}
        stages = {prm.name: prm.value for prm in params if prm.name in PIPELINE_PARAMS}
        if model or stages:
            with self._lock:
                if model:
                    self._rebuild = {**(self._rebuild or {}), **model}
                if stages:
                    self._reconfigure = {**(self._reconfigure or {}), **stages}
                self._lock.notify()
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ callbacks
    def _on_image(self, msg) -> None:
        self.stats.count("received")
        with self._lock:
            if self._slot is not None:
                self.stats.count("dropped")
            self._slot = (msg, time.perf_counter())
            self._lock.notify()

    def _on_info(self, msg: CameraInfo) -> None:
        with self._lock:
            self._infos[stamp_ns(msg.header)] = msg
            while len(self._infos) > 64:
                self._infos.popitem(last=False)

    def _match_info(self, stamp: int) -> Optional[CameraInfo]:
        with self._lock:
            info = self._infos.get(stamp)
            if info is None and self.p("camera_info_fallback_latest") and self._infos:
                info = next(reversed(self._infos.values()))
        return info

    # --------------------------------------------------------------------- worker
    def _run(self) -> None:
        while self._running:
            with self._lock:
                if self._slot is None:
                    self._lock.wait(timeout=0.1)
                item, self._slot = self._slot, None
                rebuild, self._rebuild = self._rebuild, None
                reconfigure, self._reconfigure = self._reconfigure, None
            if rebuild is not None:
                self._apply_rebuild(rebuild)
            if reconfigure is not None:
                self.pipeline.configure(self._pipeline_config(reconfigure))
            if item is not None:
                try:
                    self.process_frame(item[0], received_at=item[1])
                except Exception as exc:  # noqa: BLE001 - the node must survive any frame
                    self.stats.skip("internal_error")
                    self.get_logger().error(f"frame failed: {type(exc).__name__}: {exc}")

    def _apply_rebuild(self, new: dict) -> None:
        try:
            self.pipeline.set_estimator(self._make_estimator(new))
            self.get_logger().info(f"switched to model {self.estimator.name}")
        except Exception as exc:  # noqa: BLE001 - keep the previous model running
            self.get_logger().error(f"cannot switch model: {exc}; keeping {self.estimator.name}")

    def _warn(self, reason: str, text: str) -> None:
        """Log ``text`` at most once per ``warn_throttle`` seconds for each ``reason``."""
        now = time.monotonic()
        if now - self._warned.get(reason, -1e9) >= self.p("warn_throttle"):
            self._warned[reason] = now
            self.get_logger().warning(text)

    def _warn_skip(self, reason: str, detail: str) -> None:
        self.stats.skip(reason)
        self._warn(reason, f"skipping frame ({reason}): {detail} [{self.stats.skipped[reason]} so far]")

    def _wanted(self) -> List[str]:
        """Outputs with subscribers (``depth/camera_info`` as ``info``)."""
        names = [name for name, pub in self.pubs.items() if pub.get_subscription_count() > 0]
        return names + (["info"] if self.pub_info.get_subscription_count() > 0 else [])

    def process_frame(self, msg, wanted: Optional[Iterable[str]] = None,
                      received_at: Optional[float] = None) -> bool:
        """Decode, infer and publish one image message.

        Args:
            msg: sensor_msgs/Image or CompressedImage.
            wanted: names of the outputs to compute (``core.pipeline.OUTPUTS`` and ``info``);
                default: those with subscribers.
            received_at: ``time.perf_counter()`` at reception, to report the ``queue`` latency.

        Returns:
            True when the frame was processed, False when it was skipped (bad input or no
            subscriber).
        """
        wanted = set(self._wanted() if wanted is None else wanted)
        if not wanted:
            self.stats.count("no_subscribers")
            return False
        t0 = time.perf_counter()
        try:
            rgb = compressed_msg_to_rgb(msg) if isinstance(msg, CompressedImage) else image_msg_to_rgb(msg)
        except InvalidImage as exc:
            self._warn_skip(exc.reason, str(exc))
            return False
        h, w = rgb.shape[:2]
        info = self._match_info(stamp_ns(msg.header))
        if info is None:
            self._warn_skip("missing_camera_info", "no camera_info received yet")
            return False
        try:
            K = intrinsics_from_camera_info(info.k, info.width, info.height)
        except InvalidCameraInfo as exc:
            self._warn_skip(exc.reason, str(exc))
            return False
        if (info.width, info.height) != (w, h):
            K = scale_intrinsics(K, w / info.width, h / info.height)
        t1 = time.perf_counter()
        ref = self.scale_source.prepare(msg.header, (h, w), K)
        res = self.pipeline.process(rgb, K, wanted & set(OUTPUT_TOPICS), ref, stamp_ns(msg.header) * 1e-9)
        for reason, text in res.warnings:
            self._warn(reason, text)
        self.scale_source.publish(msg.header, res.scale)
        if res.skip:
            self._warn_skip(*res.skip)
            return False
        t2 = time.perf_counter()
        header = msg.header
        for name, pub in self.pubs.items():
            value = getattr(res, name)
            if name in wanted and value is not None:
                pub.publish(make_image(header, value, OUTPUT_ENCODINGS[name]) if name in OUTPUT_ENCODINGS
                            else make_cloud(header, value))
        if "info" in wanted:
            self.pub_info.publish(depth_camera_info(info, header, w, h))
        timings = {"decode": 1e3 * (t1 - t0), **res.timings, "publish": 1e3 * (time.perf_counter() - t2),
                   "total": 1e3 * (time.perf_counter() - t0)}
        if received_at is not None:
            timings["queue"] = 1e3 * (t0 - received_at)
        self.stats.add_timings(timings)
        self.stats.count("processed")
        return True

    def _log_stats(self) -> None:
        self.get_logger().info(self.stats.summary_line() + self.scale_source.status())

    def write_stats(self, path: str) -> None:
        """Write counters, skip reasons and latency percentiles as JSON to ``path``."""
        with open(path, "w") as f:
            json.dump({"model": self.estimator.name, "device": str(self.estimator.device),
                       "counts": {k: self.stats.counts[k] for k in
                                  ("received", "processed", "dropped", "skipped", "no_subscribers")},
                       "skipped": dict(self.stats.skipped),
                       "latency_ms": self.stats.percentiles()}, f, indent=2)

    def destroy_node(self):
        self._running = False
        with self._lock:
            self._lock.notify_all()
        self._worker.join(timeout=5.0)
        if self.p("stats_file"):
            self.write_stats(self.p("stats_file"))
        return super().destroy_node()


def main(args=None) -> None:
    """Console entry point ``depth_node`` (``ros2 run mono_depth_ros depth_node``)."""
    rclpy.init(args=args)
    node = DepthNode()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.get_logger().info("final: " + node.stats.summary_line())
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
