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
from typing import Dict, Optional

import rclpy
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from .geometry import (CloudBuilder, InvalidCameraInfo, intrinsics_from_camera_info, obstacle_depth,
                       scale_intrinsics)
from .image_codec import InvalidImage, compressed_msg_to_rgb, image_msg_to_rgb
from .models import list_models
from .ros_conversions import depth_camera_info, make_cloud, make_image, qos_profile, stamp_ns
from .runtime import DepthEstimator
from .stats import PipelineStats
from .visualize import colorize_depth, colorize_labels

#: Parameters whose change rebuilds the estimator (applied before the next frame).
MODEL_PARAMS = ("model", "checkpoint", "seg_checkpoint", "device", "precision", "input_width",
                "input_height", "min_depth", "max_depth", "stateful")

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
        self._running = True

        self.estimator = self._make_estimator()
        self.builder = CloudBuilder(self.p("cloud_decimation"), self.p("cloud_rgb"))

        qin = qos_profile(self.p("input_reliability"), self.p("input_depth"))
        qout = qos_profile(self.p("output_reliability"), self.p("output_depth"))
        if self.p("use_compressed"):
            self.create_subscription(CompressedImage, "image/compressed", self._on_image, qin)
        else:
            self.create_subscription(Image, "image", self._on_image, qin)
        self.create_subscription(CameraInfo, "camera_info", self._on_info, qin)
        self.pub_depth = self.create_publisher(Image, "depth/image", qout)
        self.pub_info = self.create_publisher(CameraInfo, "depth/camera_info", qout)
        self.pub_colored = self.create_publisher(Image, "depth/colored", qout)
        self.pub_points = self.create_publisher(PointCloud2, "points", qout)
        self.pub_labels = self.create_publisher(Image, "segmentation/labels", qout)
        self.pub_seg_colored = self.create_publisher(Image, "segmentation/colored", qout)
        self.pub_obstacles = self.create_publisher(PointCloud2, "points/obstacles", qout)
        self.add_on_set_parameters_callback(self._on_params)
        if self.p("stats_period") > 0:
            self.create_timer(self.p("stats_period"), self._log_stats)
        self._worker = threading.Thread(target=self._run, name="depth_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"model={self.estimator.name} device={self.estimator.device} "
            f"input={self.estimator.input_size} checkpoint={self.estimator.checkpoint}")

    # ----------------------------------------------------------------- parameters
    def p(self, name: str):
        """Current value of parameter ``name``."""
        return self.get_parameter(name).value

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
        names = {prm.name for prm in params}
        if names & set(MODEL_PARAMS):
            with self._lock:
                self._rebuild = {**(self._rebuild or {}),
                                 **{prm.name: prm.value for prm in params if prm.name in MODEL_PARAMS}}
                self._lock.notify()
        if names & {"cloud_decimation", "cloud_rgb"}:
            vals = {prm.name: prm.value for prm in params}
            self.builder = CloudBuilder(int(vals.get("cloud_decimation", self.p("cloud_decimation"))),
                                        bool(vals.get("cloud_rgb", self.p("cloud_rgb"))))
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
            if rebuild is not None:
                self._apply_rebuild(rebuild)
            if item is not None:
                try:
                    self.process_frame(item[0], received_at=item[1])
                except Exception as exc:  # noqa: BLE001 - the node must survive any frame
                    self.stats.skip("internal_error")
                    self.get_logger().error(f"frame failed: {type(exc).__name__}: {exc}")

    def _apply_rebuild(self, new: dict) -> None:
        try:
            self.estimator = self._make_estimator(new)
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

    def _wanted(self) -> Dict[str, bool]:
        return {"depth": self.pub_depth.get_subscription_count() > 0,
                "info": self.pub_info.get_subscription_count() > 0,
                "colored": self.pub_colored.get_subscription_count() > 0,
                "points": self.pub_points.get_subscription_count() > 0,
                "labels": self.pub_labels.get_subscription_count() > 0,
                "obstacles": self.pub_obstacles.get_subscription_count() > 0,
                "seg_colored": self.pub_seg_colored.get_subscription_count() > 0}

    def process_frame(self, msg, wanted: Optional[Dict[str, bool]] = None,
                      received_at: Optional[float] = None) -> bool:
        """Decode, infer and publish one image message.

        Args:
            msg: sensor_msgs/Image or CompressedImage.
            wanted: outputs to compute (default: those with subscribers).
            received_at: ``time.perf_counter()`` at reception, to report the ``queue`` latency.

        Returns:
            True when the frame was processed, False when it was skipped (bad input or no
            subscriber).
        """
        wanted = wanted or self._wanted()
        if not any(wanted.values()):
            self.stats.count("no_subscribers")
            return False
        t0 = time.perf_counter()
        try:
            if isinstance(msg, CompressedImage):
                rgb = compressed_msg_to_rgb(msg)
            else:
                rgb = image_msg_to_rgb(msg)
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
        pred = self.estimator.predict(rgb, K)
        timings = {"decode": 1e3 * (t1 - t0), **pred.timings}
        if received_at is not None:
            timings["queue"] = 1e3 * (t0 - received_at)
        t2 = time.perf_counter()
        cloud_ms = 0.0
        header = msg.header
        if wanted["depth"]:
            self.pub_depth.publish(make_image(header, pred.depth, "32FC1"))
        if wanted["info"]:
            self.pub_info.publish(depth_camera_info(info, header, w, h))
        if wanted["colored"]:
            img = colorize_depth(pred.depth, self.p("colored_min"), self.p("colored_max"))
            self.pub_colored.publish(make_image(header, img, "bgr8"))
        if wanted["points"]:
            tc = time.perf_counter()
            cloud = self.builder.build(pred.depth, K, rgb if self.builder.with_rgb else None)
            cloud_ms = 1e3 * (time.perf_counter() - tc)
            self.pub_points.publish(make_cloud(header, cloud))
        if pred.labels is not None:
            if wanted.get("obstacles"):
                tc = time.perf_counter()
                depth = obstacle_depth(pred.depth, pred.labels, self._excluded_ids())
                cloud = self.builder.build(depth, K, rgb if self.builder.with_rgb else None)
                cloud_ms += 1e3 * (time.perf_counter() - tc)
                self.pub_obstacles.publish(make_cloud(header, cloud))
            if wanted["labels"]:
                self.pub_labels.publish(make_image(header, pred.labels, "mono8"))
            if wanted["seg_colored"]:
                palette = self.estimator.palette
                if palette is not None:
                    self.pub_seg_colored.publish(
                        make_image(header, colorize_labels(pred.labels, palette), "bgr8"))
        timings["cloud"] = cloud_ms
        timings["publish"] = 1e3 * (time.perf_counter() - t2) - cloud_ms
        timings["total"] = 1e3 * (time.perf_counter() - t0)
        self.stats.add_timings(timings)
        self.stats.count("processed")
        return True

    def _excluded_ids(self):
        names = list(self.estimator.segmentation_info("classes") or [])
        unknown = [c for c in self.p("obstacle_exclude_classes") if c not in names]
        if unknown:
            self._warn("unknown_class", f"obstacle_exclude_classes {unknown} not in {names}: ignored")
        return [names.index(c) for c in self.p("obstacle_exclude_classes") if c in names]

    def _log_stats(self) -> None:
        self.get_logger().info(self.stats.summary_line())

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
