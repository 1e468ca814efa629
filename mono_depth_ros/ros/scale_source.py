"""ROS side of the metric scale: reference subscriptions, pairing, sensor poses, ``depth/scale``
and the scale's ``/diagnostics`` entry.

The estimation itself is ROS-free (:mod:`mono_depth_ros.core.scale`, applied by the frame
pipeline right after inference); the parameters are rows of the node's one table
(``inference.node_config.PARAMETERS``, group ``scale``), validated with the rest of the
configuration (:func:`~mono_depth_ros.inference.node_config.scale_reasons`) before a change is
accepted. This adapter only translates parameters and messages.

Parameter ``scale_source`` (changeable at run time; the next frame uses it, and the reference
topics of the old source are unsubscribed, those of the new one subscribed):

* ``none`` (default): the network's depth as is.
* ``fixed``: ``fixed_scale`` (a calibration factor).
* ``sparse_depth``: metric references registered to this camera: ``sparse_depth``
  (sensor_msgs/Image ``32FC1`` metres or ``16UC1`` millimetres at the camera resolution, 0 /
  NaN empty: a projected lidar, a ToF) or ``sparse_points`` (sensor_msgs/PointCloud2 with float
  x, y, z in the output frame - the ``frame_id`` parameter when set, else the image's - or, with
  ``scan_use_tf``, in any frame tf2 can transform into it).
* ``scan``: ``scan`` (sensor_msgs/LaserScan); the scanner's pose in the camera optical frame
  comes from tf2 (``scan_use_tf``, the default; the listener is created at start) or from
  ``scan_xyz`` (m) and ``scan_rpy`` (rad, roll-pitch-yaw about fixed X, Y, Z).
* ``ground_plane``: the floor in the lower image region (``camera_height`` m,
  ``expected_pitch`` degrees, ``max_tilt`` degrees).

References are paired with each image by :class:`~mono_depth_ros.core.stamp_pairing.
ApproximatePairer`: the nearest stamp within ``reference_stamp_tolerance``, waiting at most
``reference_max_wait`` s after the image arrived for one not yet received. A reference that
cannot be used is rejected with a reason (``no_reference``, ``stale_reference``,
``wrong_size``, ``empty_reference``, ``empty_frame``, ``wrong_frame``, ``no_transform``,
``bad_cloud`` ...), a throttled warning and a counter; never projected with a guessed pose.

Publishes ``depth/scale`` (diagnostic_msgs/DiagnosticArray, right after each frame's depth,
with the image's header - ``frame_id`` replaced like every output): one status, ``level`` as on
``/diagnostics`` (0 OK: fitted / fixed, 1 WARN: held or fallback, 2 ERROR: fallback after
repeated rejections), ``name`` ``<node>/scale``, ``message`` the reason, and ``values`` (text):
``status`` (fitted, held, fixed, fallback), ``scale``, ``shift`` (depth = scale * network depth,
or 1 / (scale * x + shift) for relative models), ``support``, ``residual``, ``age`` (s since the
scale's fit), ``reason``, ``detail``, ``pending`` (agreeing fits waiting to confirm a new
scale), ``rejections`` (frames in a row without a usable fit) and ``source``.
"""

from __future__ import annotations

import threading
import time
from typing import Dict, Optional, Tuple

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from sensor_msgs.msg import Image, LaserScan, PointCloud2

from ..core.health import HealthReport
from ..core.image_codec import InvalidImage, depth_msg_to_metres
from ..core.scale import (REFERENCE_SOURCES, MetricScaler, Reference, ScaleConfig, ScaleState,
                          points_to_sparse_depth, pose_matrix, quaternion_pose, scale_health,
                          scan_points)
from ..core.stamp_pairing import ApproximatePairer
from ..inference.node_config import SCALE_PARAMS, scale_config
from .conversions import stamp_ns

try:  # optional: sensor poses from tf2 where it is installed (not in the test venv)
    import tf2_ros
except ImportError:  # pragma: no cover - depends on the installation
    tf2_ros = None

#: Reference topics (relative names) and types of each source.
REFERENCE_TOPICS = {"sparse_depth": (("sparse_depth", Image), ("sparse_points", PointCloud2)),
                    "scan": (("scan", LaserScan),)}
#: References kept for stamp pairing (a short queue: approximate-time policy).
REFERENCE_BUFFER = 8
#: Seconds a tf2 lookup may wait for a transform (the worker thread waits).
TF_TIMEOUT = 0.05
#: sensor_msgs/PointField datatypes read for x, y, z.
_FIELD_DTYPES = {7: "f4", 8: "f8"}


class BadReference(ValueError):
    """A reference message that cannot be used; ``reason`` is a short key."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def cloud_xyz(msg) -> np.ndarray:
    """``N x 3`` float64 x, y, z of a ``sensor_msgs/PointCloud2`` (float32 or float64 fields,
    any point_step / row padding, either endianness); non-finite points are kept (dropped later).

    Raises:
        BadReference: ``bad_cloud`` for missing x/y/z fields, another datatype or a data size
            that does not match ``row_step * height``.
    """
    fields = {f.name: f for f in msg.fields}
    if not all(n in fields and fields[n].datatype in _FIELD_DTYPES for n in "xyz"):
        raise BadReference("bad_cloud", "PointCloud2 needs float32/float64 fields x, y, z")
    order = ">" if msg.is_bigendian else "<"
    dtype = np.dtype({"names": list("xyz"),
                      "formats": [order + _FIELD_DTYPES[fields[n].datatype] for n in "xyz"],
                      "offsets": [fields[n].offset for n in "xyz"], "itemsize": msg.point_step})
    h, w = int(msg.height), int(msg.width)
    buf = np.frombuffer(msg.data, np.uint8)
    if h * w == 0:
        return np.zeros((0, 3))
    if buf.size != msg.row_step * h or msg.row_step < w * msg.point_step:
        raise BadReference("bad_cloud", f"len(data)={buf.size} != row_step*height="
                           f"{msg.row_step}*{h}")
    rows = buf.reshape(h, msg.row_step)[:, :w * msg.point_step]
    pts = np.ascontiguousarray(rows).view(dtype).reshape(-1)
    return np.stack([pts[n].astype(np.float64) for n in "xyz"], 1)


def check_frames(ref_frame: str, out_frame: str, what: str) -> None:
    """Refuse a reference whose pose cannot be known: an empty frame_id on the reference, or on
    the output (the image's, when no ``frame_id`` override is set).

    Raises:
        BadReference: ``empty_frame``.
    """
    if not ref_frame:
        raise BadReference("empty_frame", f"{what} reference has an empty frame_id: its pose is "
                           "unknown")
    if not out_frame:
        raise BadReference("empty_frame", "the image has an empty frame_id and no frame_id "
                           f"override is set: the {what} reference cannot be placed in it")


def transform_pose(tf) -> np.ndarray:
    """``4 x 4`` matrix of a ``geometry_msgs/Transform`` (tf2's ``TransformStamped.transform``)."""
    t, q = tf.translation, tf.rotation
    return quaternion_pose([t.x, t.y, t.z], [q.x, q.y, q.z, q.w])


class ScaleSourceAdapter:
    """Metric scale for ``depth_node``: subscribes the reference topics of the selected source,
    pairs references with images, sets the pipeline's scaler, publishes ``depth/scale`` and
    reports the scale on ``/diagnostics``.

    Args:
        node: the rclpy node (its parameters include ``node_config.SCALE_PARAMS``; it has
            ``add_diagnostic_source``).
        qos_in, qos_out: QoS of the reference subscriptions and of ``depth/scale``.

    Parameter changes arrive validated (the node's set-parameters callback checks the whole
    configuration); they are applied after the set (post-set callback) and reach the pipeline
    in :meth:`prepare`, between two frames. The worker thread calls :meth:`prepare` before and
    :meth:`publish` after each frame.
    """

    def __init__(self, node, qos_in, qos_out):
        self.node, self.qos_in = node, qos_in
        self._scaler: Optional[MetricScaler] = None
        self._lock = threading.Lock()
        # the worker's received_at is time.perf_counter(): the pairer uses the same clock
        self._pairer = ApproximatePairer(REFERENCE_BUFFER, clock=time.perf_counter)
        self._subs, self._sub_source = [], None
        self._active = False  # reference subscriptions open only while the node's inputs are
        self._tf_buffer = self._tf_listener = None
        self.last: Optional[ScaleState] = None
        self.pub = node.create_publisher(DiagnosticArray, "depth/scale", qos_out)
        self._pending: Optional[ScaleConfig] = None
        self._values: Dict[str, object] = {}
        self._apply_parameters()
        node.add_post_set_parameters_callback(self._after_params)
        node.add_diagnostic_source(self.diagnostic)

    # ----------------------------------------------------------------- parameters
    def _apply_parameters(self) -> None:
        """Read the scale parameters; when they can run, stage the scaler and (re)subscribe.
        A start configuration that cannot run stages nothing: the node refuses it with the
        reasons (``validate_config``) and does not start."""
        values = {name: self.node.get_parameter(name).value for name in SCALE_PARAMS}
        try:
            config = scale_config(values)
            pose_matrix(values["scan_xyz"], values["scan_rpy"])
        except (ValueError, TypeError):
            return
        with self._lock:
            if config.source != self._values.get("scale_source"):
                self.last = None  # the state of the old source says nothing about the new one
            self._values, self._pending = values, config
        self._ensure_tf(values)
        if REFERENCE_TOPICS.get(config.source) != REFERENCE_TOPICS.get(self._sub_source):
            self._subscribe(config.source)
        self._sub_source = config.source

    def _after_params(self, params) -> None:
        if any(p.name in SCALE_PARAMS for p in params):
            self._apply_parameters()

    def _ensure_tf(self, values) -> None:
        """Create the tf2 buffer and listener once a source may need them (at start, or when a
        parameter change makes it so), never at the first lookup: a listener created then has
        no transforms yet."""
        needed = values["scan_use_tf"] and values["scale_source"] in REFERENCE_SOURCES
        if needed and self._tf_buffer is None and tf2_ros is not None:
            self._tf_buffer = tf2_ros.Buffer()
            self._tf_listener = tf2_ros.TransformListener(self._tf_buffer, self.node)

    def _subscribe(self, source: str) -> None:
        """Unsubscribe the old source's reference topics, subscribe the new one's (none while
        the node is not active: :meth:`set_active`)."""
        for sub in self._subs:
            self.node.destroy_subscription(sub)
        self._pairer.clear()
        self._subs = [self.node.create_subscription(kind, topic, self._on_reference, self.qos_in)
                      for topic, kind in (REFERENCE_TOPICS.get(source, ()) if self._active
                                          else ())]

    def set_active(self, active: bool) -> None:
        """Open (True: the node starts its inputs) or close (False: deactivate, shutdown) the
        reference subscriptions of the source in effect; a deactivated node subscribes nothing."""
        self._active = bool(active)
        self._subscribe(self._sub_source)

    def _on_reference(self, msg) -> None:
        self._pairer.add(stamp_ns(msg.header), msg)

    @property
    def subscribed_topics(self) -> Tuple[str, ...]:
        """Topic names of the reference subscriptions now open."""
        return tuple(sub.topic_name for sub in self._subs)

    # -------------------------------------------------------------------- per frame
    def prepare(self, pipeline, header, shape: Tuple[int, int], K: np.ndarray,
                out_header=None, received_at: Optional[float] = None) -> Optional[Reference]:
        """Apply pending parameter changes to ``pipeline`` (a
        :class:`~mono_depth_ros.core.pipeline.FramePipeline`), then pair the image with its
        reference.

        Args:
            pipeline: the frame pipeline.
            header: the image's header (its stamp pairs the reference).
            shape: ``(H, W)`` of the image.
            K: ``3 x 3`` intrinsics of the image the network sees.
            out_header: the outputs' header (``frame_id`` override applied): references in
                points are checked against, or transformed into, its frame. Default ``header``.
            received_at: ``time.perf_counter()`` when the image arrived: the wait for a
                reference is counted from then (default: now).

        Returns:
            The frame's :class:`~mono_depth_ros.core.scale.Reference` (None for sources without
            one).
        """
        out_header = header if out_header is None else out_header
        with self._lock:
            config, self._pending = self._pending, None
            values = self._values
        if config is not None:
            self._scaler = MetricScaler(config) if config.source != "none" else None
            self.node.get_logger().info(f"scale_source {config.source}")
        if pipeline.scaler is not self._scaler:
            pipeline.set_scaler(self._scaler)
        if self._scaler is None or self._scaler.config.source not in REFERENCE_SOURCES:
            return None
        msg, reason, detail = self._pairer.pair(
            stamp_ns(header), float(values["reference_stamp_tolerance"]),
            float(values["reference_max_wait"]), received_at)
        if msg is None:
            return Reference(problem=reason, detail=detail)
        try:
            return Reference(self._CONVERT[type(msg)](self, msg, out_header, shape, K, values))
        except InvalidImage as exc:
            return Reference(problem="bad_reference_image", detail=str(exc))
        except BadReference as exc:
            return Reference(problem=exc.reason, detail=exc.detail)

    def _image_ref(self, msg, out_header, shape, K, values) -> np.ndarray:
        return depth_msg_to_metres(msg)  # its size is checked by the core (wrong_size)

    def _cloud_ref(self, msg, out_header, shape, K, values) -> np.ndarray:
        check_frames(msg.header.frame_id, out_header.frame_id, "sparse_points")
        pose = None
        if msg.header.frame_id != out_header.frame_id:
            if not values["scan_use_tf"]:
                raise BadReference("wrong_frame", f"sparse_points in {msg.header.frame_id!r}, not "
                                   f"the output frame {out_header.frame_id!r} (scan_use_tf false: "
                                   "no transform is looked up)")
            pose = self.sensor_pose(msg.header, out_header)
        return points_to_sparse_depth(cloud_xyz(msg), K, shape, pose)

    def _scan_ref(self, msg, out_header, shape, K, values) -> np.ndarray:
        pts = scan_points(msg.ranges, msg.angle_min, msg.angle_increment, msg.range_min,
                          msg.range_max)
        pose = (self.sensor_pose(msg.header, out_header) if values["scan_use_tf"]
                else pose_matrix(values["scan_xyz"], values["scan_rpy"]))
        return points_to_sparse_depth(pts, K, shape, pose)

    _CONVERT = {Image: _image_ref, PointCloud2: _cloud_ref, LaserScan: _scan_ref}

    def sensor_pose(self, ref_header, out_header) -> np.ndarray:
        """``4 x 4`` pose of the reference's frame in the output frame, from tf2
        (``Buffer.can_transform`` / ``lookup_transform(target, source, time, timeout)`` at the
        reference's stamp).

        Raises:
            BadReference: ``empty_frame`` (either frame_id empty) or ``no_transform`` (no
                tf2 here, or the lookup failed or timed out): the reference is rejected, never
                projected with a default pose.
        """
        target, source = out_header.frame_id, ref_header.frame_id
        check_frames(source, target, "reference")
        if target == source:
            return np.eye(4)
        buf = self._tf_buffer
        if buf is None:
            raise BadReference("no_transform", f"no tf2 buffer (tf2_ros not installed) for "
                               f"{source} -> {target}")
        from rclpy.duration import Duration
        from rclpy.time import Time
        when, timeout = Time.from_msg(ref_header.stamp), Duration(seconds=TF_TIMEOUT)
        try:
            if not buf.can_transform(target, source, when, timeout):
                raise RuntimeError("can_transform is false")
            tf = buf.lookup_transform(target, source, when, timeout)
        except Exception as exc:  # noqa: BLE001 - tf2's lookup/extrapolation/connectivity errors
            raise BadReference("no_transform", f"tf2 {source} -> {target} at "
                               f"{stamp_ns(ref_header) * 1e-9:.3f} s: {type(exc).__name__}: "
                               f"{exc}") from None
        return transform_pose(tf.transform)

    # -------------------------------------------------------------------- outputs
    def publish(self, header, state: Optional[ScaleState]) -> None:
        """Publish ``state`` on ``depth/scale`` with ``header`` (nothing without a scaler)."""
        if state is None:
            return
        self.last = state
        msg = DiagnosticArray(header=header, status=[self._status(state)])
        self.pub.publish(msg)

    @property
    def source(self) -> str:
        """The ``scale_source`` in effect (the last accepted value)."""
        return str(self._values.get("scale_source", "none"))

    def _status(self, state: Optional[ScaleState]) -> DiagnosticStatus:
        source = self.source
        level, message = scale_health(state, source)
        values = (state.values() if state is not None else []) + [("source", source)]
        return DiagnosticStatus(level=bytes([level]), name=f"{self.node.get_fully_qualified_name()}"
                                "/scale", message=message or (state.status if state else ""),
                                values=[KeyValue(key=k, value=v) for k, v in values])

    def diagnostic(self) -> HealthReport:
        """The scale's part of the node's ``/diagnostics`` status (a diagnostic source): level
        and message from :func:`~mono_depth_ros.core.scale.scale_health`, values ``scale: …``."""
        state, source = self.last, self.source
        level, message = scale_health(state, source)
        values = [("scale: source", source)]
        if state is not None:
            values += [("scale: status", state.status), ("scale: value", f"{state.scale:.6g}"),
                       ("scale: shift", f"{state.shift:.6g}"),
                       ("scale: age of last good scale (s)", f"{state.age:.2f}"),
                       ("scale: reason", state.reason or "-"),
                       ("scale: rejections in a row", str(state.rejections))]
        scaler = self._scaler
        if scaler is not None:
            values += [(f"scale: rejected {k}", str(n)) for k, n in sorted(scaler.rejected.items())]
        return HealthReport(level, message, values)

    def status(self) -> str:
        """Status-line suffix: the current scale and the rejection counts."""
        scaler = self._scaler
        if scaler is None or self.last is None:
            return ""
        s = self.last
        text = (f" scale[{scaler.config.source}]={s.scale:.3f} shift={s.shift:.3g} ({s.status}, "
                f"support {s.support}, residual {s.residual:.3f}, age {s.age:.1f} s)")
        rejected: Dict[str, int] = dict(scaler.rejected)
        if rejected:
            text += " rejected(" + ", ".join(f"{k}={v}" for k, v in sorted(rejected.items())) + ")"
        return text

