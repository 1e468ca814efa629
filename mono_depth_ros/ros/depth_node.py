"""depth_node: monocular camera in, metric depth image and organized point cloud out.

Subscribes (relative names, remap them in launch):
    ``image`` (sensor_msgs/Image: rgb8, bgr8, rgba8, bgra8, mono8, mono16) or, with
    ``use_compressed``, ``image/compressed`` (sensor_msgs/CompressedImage jpeg/png);
    ``camera_info`` (sensor_msgs/CameraInfo).
Publishes, each with the input image's header (``frame_id`` replaced when the ``frame_id``
parameter is set):
    ``depth/image`` (32FC1 metres, NaN invalid, REP 118), ``depth/camera_info``,
    ``depth/colored`` (bgr8), ``points`` (organized PointCloud2 x, y, z[, rgb] in the optical
    frame, REP 103), and for segmentation models ``segmentation/labels`` (mono8 class ids),
    ``segmentation/colored`` (bgr8) and ``points/obstacles`` (the organized cloud with the
    pixels of ``obstacle_exclude_classes`` - sky, road, sidewalk, lane marks - set to NaN, so a
    Nav2 voxel layer marks obstacles without ground or sky);
    ``/diagnostics`` (diagnostic_msgs/DiagnosticArray, one status named after the node).
Metric scale (``scale_source``: none, fixed, sparse_depth, scan, ground_plane): see
:mod:`mono_depth_ros.ros.scale_source`; ``depth/image`` is in metres after the scale, and
``depth/scale`` (diagnostic_msgs/DiagnosticArray with the image's header, right after the depth)
carries the scale, its status, support and the reason it is not trusted; the scale's state also
sets the level of ``/diagnostics`` (docs/metric_scale.md).
Relative models (affine-invariant inverse depth: Depth Anything V2 relative, DPT/MiDaS) have no
metric scale of their own: without a usable scale they publish ``depth/relative`` (32FC1,
unitless, larger = nearer, NaN invalid) instead of ``depth/image``, ``depth/colored`` and the
clouds, and say so once in the log.

Two executables share one body (:class:`DepthNodeCore`): ``depth_node`` (:class:`DepthNode`)
loads the model and starts at once; ``depth_lifecycle_node`` (:class:`LifecycleDepthNode`) is a
managed node: configure loads the model, activate creates the subscriptions and (lifecycle)
publishers, deactivate removes them, cleanup frees the model and its GPU memory.

Parameters (``inference.node_config.PARAMETERS``) are validated as a whole configuration before
a change is accepted, and a new network is built before the change is reported as successful,
so ``ros2 param get`` always shows what runs. The subscription callbacks only store the newest
frame (a size-1 slot; a frame still waiting when the next arrives is dropped and counted); a
worker thread decodes, infers and publishes, so a slow network never backs up DDS. Only outputs
with subscribers are computed. Every malformed input is skipped with a throttled warning naming
the problem and a counter.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Callable, Dict, Iterable, List, Mapping, Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from ..core.camera import Rectifier, camera_model
from ..core.geometry import InvalidCameraInfo
from ..core.health import OK, HealthMonitor, HealthReport, HealthThresholds
from ..core.image_codec import InvalidImage, compressed_msg_to_rgb, image_msg_to_rgb
from ..core.pipeline import FramePipeline
from ..core.stamp_pairing import StampedBuffer
from ..core.stats import PipelineStats, Snapshot
from ..inference.estimator import DepthEstimator
from ..inference.node_config import (ESTIMATOR_PARAMS, PARAMETERS, PIPELINE_PARAMS, ConfigError,
                                     ParamSpec, build_estimator, pipeline_config,
                                     release_device_memory, validate_config)
from .conversions import depth_camera_info, make_cloud, make_image, qos_profile, stamp_ns
from .scale_source import ScaleSourceAdapter
from .shutdown import context_gone, init_ros

#: Output topic of each pipeline output (core.pipeline.OUTPUTS), and its message kind.
OUTPUT_TOPICS = {"depth": ("depth/image", Image), "colored": ("depth/colored", Image),
                 "points": ("points", PointCloud2), "labels": ("segmentation/labels", Image),
                 "seg_colored": ("segmentation/colored", Image),
                 "obstacles": ("points/obstacles", PointCloud2),
                 "relative": ("depth/relative", Image)}
#: Encoding of each image output.
OUTPUT_ENCODINGS = {"depth": "32FC1", "colored": "bgr8", "labels": "mono8", "seg_colored": "bgr8",
                    "relative": "32FC1"}
#: Parameters of the lifecycle node only.
LIFECYCLE_PARAMETERS = {
    "autostart": ParamSpec(False, "configure and activate right after start (launch: "
                           "autostart:=true)", read_only=True),
}
#: Seconds between the log lines of a stop that waits for a long frame (export, engine build).
STOP_WAIT_LOG_PERIOD = 10.0
#: ``diag_*`` parameter -> HealthThresholds field.
THRESHOLD_PARAMS = {"diag_input_timeout": "input_timeout", "diag_drop_warn": "drop_warn",
                    "diag_skip_warn": "skip_warn", "diag_latency_warn_ms": "latency_warn_ms"}


def descriptor(name: str, spec: ParamSpec) -> ParameterDescriptor:
    """``ParameterDescriptor`` of a :class:`ParamSpec`: description, range, choices, read-only."""
    d = ParameterDescriptor(name=name, description=spec.description, read_only=spec.read_only)
    if spec.choices:
        d.additional_constraints = "one of: " + ", ".join(spec.choices)
    if spec.range is not None:
        lo, hi, step = spec.range
        if isinstance(spec.default, int) and not isinstance(spec.default, bool):
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=int(step))]
        else:
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi),
                                                         step=float(step))]
    return d


class DepthNodeCore:
    """The body shared by :class:`DepthNode` and :class:`LifecycleDepthNode` (a mixin: the
    concrete class also derives from ``Node`` or ``LifecycleNode``).

    Life cycle of the parts: :meth:`_setup` (parameters, diagnostics) once,
    :meth:`_load_model` / :meth:`_free_model` (the network), :meth:`_start_io` /
    :meth:`_stop_io` (subscriptions, publishers, worker thread). ``process_frame`` runs one
    frame synchronously (tests).
    """

    # ----------------------------------------------------------------- set-up
    def _setup(self) -> None:
        for name, spec in PARAMETERS.items():
            self.declare_parameter(name, spec.default, descriptor(name, spec))
        self.stats = PipelineStats()
        self.pipeline: Optional[FramePipeline] = None
        self.pubs: Dict[str, object] = {}
        self.pub_info = None
        self._subs: List[object] = []
        self._warned: Dict[str, float] = {}
        self._lock = threading.Condition()
        self._frame_lock = threading.Lock()  # held by the worker while it runs one frame
        self._slot: Optional[tuple] = None
        self._infos = StampedBuffer(64)
        self._staged: Optional[dict] = None  # validated change waiting for the post-set callback
        self._running = False
        self._worker: Optional[threading.Thread] = None
        self._last_input: Optional[float] = None
        self._diagnostic_sources: List[Callable[[], Mapping[str, str]]] = []
        self.add_diagnostic_source(self._backend_diagnostics)
        self.health = HealthMonitor()
        self._rectifier = Rectifier()
        # scale_* parameters, reference subscriptions and depth/scale (ros/scale_source.py)
        self.scale_source = ScaleSourceAdapter(
            self, qos_profile(self.p("input_reliability"), self.p("input_depth")),
            qos_profile(self.p("output_reliability"), self.p("output_depth")))
        self.add_on_set_parameters_callback(self._on_params)
        self.add_post_set_parameters_callback(self._after_params)
        # the status line's scale part reads the scaler the worker mutates: a snapshot
        self._status_line = Snapshot(lambda: self.scale_source.status(), self._frame_lock)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # Steady clock, not the node's: with use_sim_time the ROS clock stops with the bag and
        # /clock, and the diagnostics must keep reporting (WARN: no input) exactly then.
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        if self.p("diagnostics_period") > 0:
            self.create_timer(self.p("diagnostics_period"), self.publish_diagnostics,
                              clock=steady)
        if self.p("stats_period") > 0:
            self.create_timer(self.p("stats_period"), self._log_stats, clock=steady)

    def p(self, name: str):
        """Current value of parameter ``name``."""
        return self.get_parameter(name).value

    def config(self) -> Dict[str, object]:
        """Current value of every parameter of :data:`PARAMETERS`."""
        return {name: self.p(name) for name in PARAMETERS}

    @property
    def estimator(self) -> Optional[DepthEstimator]:
        """The network in use (None while no model is loaded)."""
        return self.pipeline.estimator if self.pipeline is not None else None

    @property
    def active(self) -> bool:
        """True while the node subscribes and publishes."""
        return self._running

    # ----------------------------------------------------------------- the model
    def _build_estimator(self, values: Mapping[str, object]) -> DepthEstimator:
        est = build_estimator(values)  # ConfigError names every problem
        for msg in est.warnings:
            self.get_logger().warning(msg)
        if est.spec.is_relative:
            self.get_logger().warning(
                f"{est.name} predicts relative (affine-invariant) inverse depth: without a usable "
                "metric scale (scale_source) it publishes depth/relative (32FC1, unitless, larger "
                "= nearer), not depth/image, depth/colored or points")
        return est

    def _load_model(self) -> None:
        """Validate the parameters and build the network.

        Raises:
            ConfigError: the configuration cannot run (the reasons are in the message).
        """
        cfg = self.config()
        self.pipeline = FramePipeline(self._build_estimator(cfg), pipeline_config(cfg))
        est = self.estimator
        self.get_logger().info(f"model={est.name} device={est.device} backend={est.backend} "
                               f"input={est.input_size} checkpoint={est.checkpoint}")

    def _free_model(self) -> None:
        """Drop the network and give its (GPU) memory back."""
        device = self.estimator.device if self.estimator is not None else None
        self.pipeline = None
        release_device_memory(device)

    # ----------------------------------------------------------------- parameters
    def _on_params(self, params) -> SetParametersResult:
        """Validate the configuration the change would give; build a new network if the change
        needs one. Nothing is applied here (see :meth:`_after_params`)."""
        self._staged = None
        ours = {prm.name: prm.value for prm in params if prm.name in PARAMETERS}
        if not ours:
            return SetParametersResult(successful=True)
        new = {**self.config(), **ours}
        reasons = validate_config(new)
        if reasons:
            return SetParametersResult(successful=False, reason="; ".join(reasons))
        changed = {n for n, v in ours.items() if v != self.p(n)}
        staged = {}
        if self.pipeline is not None and changed & set(ESTIMATOR_PARAMS):
            try:
                staged["estimator"] = self._build_estimator(new)
            except ConfigError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        if self.pipeline is not None and changed & set(PIPELINE_PARAMS):
            staged["pipeline"] = pipeline_config(new)
        self._staged = staged
        return SetParametersResult(successful=True)

    def _after_params(self, params) -> None:
        """Apply what :meth:`_on_params` staged, between two frames."""
        staged, self._staged = self._staged, None
        if not staged or self.pipeline is None:
            return
        old = None
        with self._frame_lock:
            if "estimator" in staged:
                old = self.pipeline.estimator
                self.pipeline.set_estimator(staged["estimator"])
            if "pipeline" in staged:
                self.pipeline.configure(staged["pipeline"])
        if old is not None:
            est = self.estimator
            self.get_logger().info(f"switched to model={est.name} device={est.device} "
                                   f"input={est.input_size} checkpoint={est.checkpoint}")
            device, old = old.device, None
            release_device_memory(device)

    # ----------------------------------------------------------------- inputs and outputs
    def _start_io(self, create_publisher) -> None:
        """Subscribe, create the publishers with ``create_publisher`` and start the worker."""
        qin = qos_profile(self.p("input_reliability"), self.p("input_depth"))
        qout = qos_profile(self.p("output_reliability"), self.p("output_depth"))
        if self.p("use_compressed"):
            self._subs.append(self.create_subscription(CompressedImage, "image/compressed",
                                                       self._on_image, qin))
        else:
            self._subs.append(self.create_subscription(Image, "image", self._on_image, qin))
        self._subs.append(self.create_subscription(CameraInfo, "camera_info", self._on_info, qin))
        self.pubs = {name: create_publisher(kind, topic, qout)
                     for name, (topic, kind) in OUTPUT_TOPICS.items()}
        self.pub_info = create_publisher(CameraInfo, "depth/camera_info", qout)
        self.scale_source.set_active(True)
        self._running = True
        self._worker = threading.Thread(target=self._run, name="depth_worker", daemon=True)
        self._worker.start()

    def _stop_io(self, destroy_publisher) -> None:
        """Stop the worker after its current frame (waiting as long as that frame takes: a
        first-frame export or TensorRT engine build can take minutes, and the publishers and
        the model must outlive it), unsubscribe (references too), destroy the publishers."""
        self._running = False
        with self._lock:
            self._lock.notify_all()
        if self._worker is not None:
            waited = 0.0
            while self._worker.is_alive():
                self._worker.join(timeout=STOP_WAIT_LOG_PERIOD)
                waited += STOP_WAIT_LOG_PERIOD
                if self._worker.is_alive():
                    self.get_logger().warning(f"stopping: waiting for the current frame to end "
                                              f"({waited:.0f} s so far; an export or engine "
                                              "build runs to completion)")
            self._worker = None
        self.scale_source.set_active(False)
        for sub in self._subs:
            self.destroy_subscription(sub)
        for pub in [*self.pubs.values(), *([self.pub_info] if self.pub_info else [])]:
            destroy_publisher(pub)
        self._subs, self.pubs, self.pub_info, self._slot = [], {}, None, None
        self._infos.clear()

    # ------------------------------------------------------------------ callbacks
    def _on_image(self, msg) -> None:
        self.stats.count("received")
        self._last_input = time.monotonic()
        with self._lock:
            if self._slot is not None:
                self.stats.count("dropped")
            self._slot = (msg, time.perf_counter())
            self._lock.notify()

    def _on_info(self, msg: CameraInfo) -> None:
        self._infos.add(stamp_ns(msg.header), msg)

    def _match_info(self, stamp: int) -> Optional[CameraInfo]:
        """camera_info for an image stamp: exact, else the newest within camera_info_max_age;
        None (skipped with a warning and a counter) when there is none."""
        info, reason, detail = self._infos.match(stamp, self.p("camera_info_max_age"))
        if info is None:
            self._warn_skip(reason, detail)
        return info

    def _output_header(self, header: Header) -> Header:
        """The outputs' header: the input's, with ``frame_id`` replaced when the parameter is
        set (warned once per input frame); an empty frame without override is warned about."""
        fid = self.p("frame_id")
        if fid and header.frame_id != fid:
            self.stats.count("frame_id_replaced")
            self._warn_once(f"frame_id:{header.frame_id}", f"input frame_id {header.frame_id!r} "
                            f"replaced by the frame_id parameter {fid!r} in every output")
            return Header(stamp=header.stamp, frame_id=fid)
        if not fid and not header.frame_id:
            self.stats.count("empty_frame_id")
            self._warn_once("frame_id:", "input image has an empty frame_id: the outputs cannot "
                            "be placed in TF; fix the camera driver or set the frame_id parameter")
        return header

    # --------------------------------------------------------------------- worker
    def _run(self) -> None:
        while self._running:
            with self._lock:
                if self._slot is None:
                    self._lock.wait(timeout=0.1)
                item, self._slot = self._slot, None
            if item is None:
                continue
            with self._frame_lock:
                try:
                    self.process_frame(item[0], received_at=item[1])
                except Exception as exc:  # noqa: BLE001 - the node must survive any frame
                    self.stats.skip("internal_error")
                    self.get_logger().error(f"frame failed: {type(exc).__name__}: {exc}")
                finally:  # still under the frame lock: what the timers read next
                    self._refresh_snapshots()

    def _refresh_snapshots(self) -> None:
        """Recompute the status line and diagnostic sources (worker, frame lock held)."""
        for snap in (self._status_line, *self._diagnostic_sources):
            try:
                snap.refresh()
            except Exception as exc:  # noqa: BLE001 - a report must never stop the worker
                self._warn("report_failed", f"status/diagnostics source failed: "
                           f"{type(exc).__name__}: {exc}")

    def _warn(self, reason: str, text: str) -> None:
        """Log ``text`` at most once per ``warn_throttle`` seconds for each ``reason``."""
        now = time.monotonic()
        if now - self._warned.get(reason, -1e9) >= self.p("warn_throttle"):
            self._warned[reason] = now
            self.get_logger().warning(text)

    def _warn_once(self, key: str, text: str) -> None:
        """Log ``text`` the first time ``key`` occurs."""
        if key not in self._warned:
            self._warned[key] = time.monotonic()
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
            rgb = (compressed_msg_to_rgb(msg, self.p("max_image_pixels"))
                   if isinstance(msg, CompressedImage) else image_msg_to_rgb(msg))
        except InvalidImage as exc:
            self._warn_skip(exc.reason, str(exc))
            return False
        h, w = rgb.shape[:2]
        info = self._match_info(stamp_ns(msg.header))
        if info is None:
            return False
        try:
            cam = camera_model(info, w, h)  # binning, ROI and size as image_geometry reads them
        except InvalidCameraInfo as exc:
            self._warn_skip(exc.reason, str(exc))
            return False
        for reason, text in cam.warnings:
            self._warn(reason, text)
        rgb = self._rectifier.rectify(rgb, cam)  # lens distortion removed before inference
        t1 = time.perf_counter()
        header = self._output_header(msg.header)  # once a frame: it counts replaced frame_ids
        # the reference is paired by the image's stamp (waiting at most reference_max_wait
        # after it arrived) and placed in the output frame
        ref = self.scale_source.prepare(self.pipeline, msg.header, (h, w), cam.output_K, header,
                                        received_at)
        res = self.pipeline.process(rgb, cam.output_K, wanted & set(OUTPUT_TOPICS), ref,
                                    stamp_ns(msg.header) * 1e-9,
                                    valid=self._rectifier.valid_mask(cam))  # fill -> NaN
        for reason, text in res.warnings:
            self._warn(reason, text)
        if res.skip:
            self.scale_source.publish(header, res.scale)  # why there is no depth this frame
            self._warn_skip(*res.skip)
            return False
        t2 = time.perf_counter()
        for name, pub in self.pubs.items():
            value = getattr(res, name)
            if name in wanted and value is not None:
                pub.publish(make_image(header, value, OUTPUT_ENCODINGS[name]) if name in OUTPUT_ENCODINGS
                            else make_cloud(header, value))
        if "info" in wanted:
            self.pub_info.publish(depth_camera_info(cam, header))
        self.scale_source.publish(header, res.scale)  # right after the depth it describes
        timings = {"decode": 1e3 * (t1 - t0), **res.timings, "publish": 1e3 * (time.perf_counter() - t2),
                   "total": 1e3 * (time.perf_counter() - t0)}
        if received_at is not None:
            timings["queue"] = 1e3 * (t0 - received_at)
        self.stats.add_timings(timings)
        self.stats.count("processed")
        return True

    # --------------------------------------------------------------------- reporting
    def _log_stats(self) -> None:
        self.get_logger().info(self.stats.summary_line() + self._status_line())

    def add_diagnostic_source(self, source: Callable[[], object]) -> None:
        """Add ``source()`` to every diagnostics status: a ``{key: value}`` mapping, or a
        :class:`~mono_depth_ros.core.health.HealthReport` whose values are added and whose
        level and message (when above OK) raise the status's (e.g. the metric scale).
        ``source`` may read state the worker thread mutates: it is called only between frames
        (:class:`~mono_depth_ros.core.stats.Snapshot`), never from the worker mid-frame."""
        self._diagnostic_sources.append(Snapshot(source, self._frame_lock))

    def _backend_diagnostics(self) -> Dict[str, str]:
        """The backend that runs and, after a fallback to PyTorch (failed export, unwritable
        cache, graph refused), why (``backend fallback``)."""
        est = self.estimator
        if est is None:
            return {}
        values = {"backend": est.backend}
        if est.backend_fallback:
            values["backend fallback"] = est.backend_fallback
        return values

    def _state_text(self) -> str:
        return "active" if self.active else ("inactive" if self.pipeline is not None
                                              else "unconfigured")

    def health_report(self) -> HealthReport:
        """This period's :class:`HealthReport` (levels and thresholds: ``core.health``)."""
        self.health.thresholds = HealthThresholds(
            **{field: float(self.p(name)) for name, field in THRESHOLD_PARAMS.items()})
        est = self.estimator
        info = {"state": self._state_text(), "model": est.name if est else "none",
                "device": str(est.device) if est else "none",
                "input size": "x".join(map(str, est.input_size)) if est else "none"}
        raised = []  # (level, message) of sources that report a level of their own
        for source in self._diagnostic_sources:
            out = source()
            if isinstance(out, HealthReport):
                info.update(out.values)
                if out.level > OK:
                    raised.append((out.level, out.message))
            else:
                info.update(out)
        counts, skipped = self.stats.snapshot()
        now = time.monotonic()
        report = self.health.update(
            now, counts, skipped, self.stats.percentiles(["total"]),
            None if self._last_input is None else now - self._last_input, info)
        if raised:
            own = [report.message] if report.level > OK else []
            report = HealthReport(max([report.level] + [lvl for lvl, _ in raised]),
                                  "; ".join(own + [msg for _, msg in raised]), report.values)
        if not self.active:  # a managed node that is not active is not a fault
            report = HealthReport(OK, f"{self._state_text()} (lifecycle)", report.values)
        return report

    def publish_diagnostics(self) -> None:
        """Publish :meth:`health_report` on ``/diagnostics``."""
        report = self.health_report()
        est = self.estimator
        status = DiagnosticStatus(level=bytes([report.level]), message=report.message,
                                  name=self.get_fully_qualified_name(),
                                  hardware_id=str(est.device) if est else "")
        status.values = [KeyValue(key=k, value=v) for k, v in report.values]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)

    def write_stats(self, path: str) -> None:
        """Write counters, skip reasons and latency percentiles as JSON to ``path``."""
        est = self.estimator
        with open(path, "w") as f:
            counts, skipped = self.stats.snapshot()
            json.dump({"model": est.name if est else None,
                       "device": str(est.device) if est else None,
                       "counts": {k: counts.get(k, 0) for k in
                                  ("received", "processed", "dropped", "skipped", "no_subscribers")},
                       "skipped": skipped,
                       "latency_ms": self.stats.percentiles()}, f, indent=2)

    def _shutdown_core(self) -> None:
        if self.active:
            self._stop_io(self.destroy_publisher)
        if self.p("stats_file"):
            self.write_stats(self.p("stats_file"))


class DepthNode(DepthNodeCore, Node):
    """The plain node: loads the model and starts subscribing at once.

    Raises:
        ConfigError: the start parameters cannot run (every reason in the message).
        rclpy.exceptions.ParameterException: a start value outside its descriptor's range.
    """

    def __init__(self, **kwargs):
        Node.__init__(self, "depth_node", **kwargs)
        try:
            self._setup()
            self._load_model()
        except (ConfigError, rclpy.exceptions.ParameterException):
            Node.destroy_node(self)  # half built: not through our destroy_node
            raise
        self._start_io(self.create_publisher)

    def destroy_node(self):
        self._shutdown_core()
        return Node.destroy_node(self)


class LifecycleDepthNode(DepthNodeCore, LifecycleNode):
    """The managed node (ROS 2 node lifecycle, ``rclpy.lifecycle.LifecycleNode``).

    configure: validate the parameters and load the network (FAILURE, with the reasons logged,
    leaves it unconfigured); activate: subscriptions, lifecycle publishers, worker; deactivate:
    stop them; cleanup: free the network and its GPU memory; shutdown: all of it. With the
    ``autostart`` parameter it configures and activates itself at start.
    """

    def __init__(self, **kwargs):
        LifecycleNode.__init__(self, "depth_node", **kwargs)
        try:
            self._setup()
        except rclpy.exceptions.ParameterException:
            LifecycleNode.destroy_node(self)  # half built: not through our destroy_node
            raise
        for name, spec in LIFECYCLE_PARAMETERS.items():
            self.declare_parameter(name, spec.default, descriptor(name, spec))
        if self.p("autostart") and self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._load_model()
        except ConfigError as exc:
            self.get_logger().error(f"configure failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._start_io(self.create_lifecycle_publisher)
        return super().on_activate(state)  # enables the lifecycle publishers

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        ret = super().on_deactivate(state)
        self._stop_io(self.destroy_lifecycle_publisher)
        return ret

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._free_model()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.active:
            self._stop_io(self.destroy_lifecycle_publisher)
        self._free_model()
        return super().on_shutdown(state)

    def destroy_node(self):
        if self.active:
            self._stop_io(self.destroy_lifecycle_publisher)
        self._shutdown_core()
        return LifecycleNode.destroy_node(self)


def _spin(node_class, args=None) -> int:
    """Run ``node_class`` until SIGINT or SIGTERM (exit 0), or refuse an invalid start
    configuration (exit 2).

    The signal only requests the stop (:mod:`.shutdown`, not rclpy's handlers, which shut the
    context down under a running wait or publish). While the node is being built (model load,
    engine build: nothing published yet) it interrupts at once; afterwards the executor loop
    ends within 0.1 s, the final stats line is logged while the context is still valid, the node
    is destroyed (the worker finishes its frame, ``stats_file`` is written), and only then is
    the context shut down. A context shut down by someone else ends the loop the same way (also
    exit 0).
    """
    stop = init_ros(args)
    try:
        try:
            with stop.interrupting():  # a signal stops a long model load / engine build at once
                node = node_class()
        except KeyboardInterrupt:
            print(f"depth_node: stopped by {signal.Signals(stop.signum or signal.SIGINT).name} "
                  "while starting", file=sys.stderr, flush=True)
            return 0
        except (ConfigError, rclpy.exceptions.ParameterException) as exc:
            # a value outside its descriptor's range is refused by rclpy while declaring
            print(f"depth_node: invalid parameters: {exc}", file=sys.stderr, flush=True)
            return 2
        executor = rclpy.executors.SingleThreadedExecutor()
        executor.add_node(node)
        try:
            while not stop.requested and rclpy.ok():
                executor.spin_once(timeout_sec=0.1)
        except Exception as exc:  # noqa: BLE001 - only a shutdown in progress is a normal end
            if not context_gone(exc):
                raise
        final = "final: " + node.stats.summary_line()
        if rclpy.ok():
            node.get_logger().info(final)
        else:  # the context went first: /rosout is gone, the console is not
            print(f"[INFO] [{node.get_fully_qualified_name()}]: {final}", file=sys.stderr,
                  flush=True)
        executor.shutdown()
        node.destroy_node()
        return 0
    finally:
        rclpy.try_shutdown()  # the stop handlers stay: a second signal during teardown is ignored


def _exit(code: int) -> None:
    """End the process with ``code`` right after a complete :func:`_spin` (the node destroyed,
    stats written, the context and its logging shut down), without Python's interpreter teardown:
    with torch loaded that teardown takes seconds (4 s measured on a busy 2-core machine), close
    to the 5 s after which ``ros2 launch`` escalates SIGINT to SIGTERM, and adds nothing here."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(args=None) -> None:
    """Console entry point ``depth_node`` (``ros2 run mono_depth_ros depth_node``): exit 0 after
    SIGINT / SIGTERM, 2 for invalid start parameters."""
    _exit(_spin(DepthNode, args))


def main_lifecycle(args=None) -> None:
    """Console entry point ``depth_lifecycle_node`` (the managed node); exit codes as
    :func:`main`."""
    _exit(_spin(LifecycleDepthNode, args))


if __name__ == "__main__":
    main()
