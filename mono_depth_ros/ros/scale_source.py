"""ROS side of the metric scale: parameters, reference subscriptions and the ``depth/scale`` topic.

The estimation itself is ROS-free (:mod:`mono_depth_ros.core.scale`, applied by the frame
pipeline right after inference); this adapter only translates parameters and messages.

Parameter ``scale_source`` (changeable at run time; the next frame uses it):

* ``none`` (default): the network's depth as is.
* ``fixed``: ``fixed_scale`` (a calibration factor).
* ``sparse_depth``: metric references registered to this camera, paired with each image by
  stamp within ``reference_stamp_tolerance``: ``sparse_depth`` (sensor_msgs/Image ``32FC1``
  metres or ``16UC1`` millimetres at the camera resolution, 0 / NaN empty: a projected lidar, a
  ToF) or ``sparse_points`` (sensor_msgs/PointCloud2 with float x, y, z in the camera optical
  frame, i.e. the image's frame_id).
* ``scan``: ``scan`` (sensor_msgs/LaserScan); the scanner's pose in the camera optical frame
  comes from tf2 where ``tf2_ros`` imports and ``scan_use_tf`` is set, else from ``scan_xyz``
  (m) and ``scan_rpy`` (rad, roll-pitch-yaw about fixed X, Y, Z).
* ``ground_plane``: the floor in the lower image region (``camera_height`` m,
  ``expected_pitch`` degrees, ``max_tilt`` degrees).

Publishes ``depth/scale`` (std_msgs/Float32MultiArray, right after each frame's depth):
``[scale, shift, support, residual, age_s, status]`` (layout label
``scale,shift,support,residual,age_s,status``; status 0 fallback, 1 fitted, 2 held, 3 fixed).
A bad reference (none, stale, wrong size, empty, not a floor, too few agreeing points) is
skipped with a throttled warning and a counter; the last good scale is held for
``scale_max_age`` seconds (image stamps), then ``scale_fallback`` applies (``unscaled``: the
network's own depth, ``skip``: no depth for the frame).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from sensor_msgs.msg import Image, LaserScan, PointCloud2
from std_msgs.msg import Float32MultiArray, MultiArrayDimension

from ..core.image_codec import InvalidImage, depth_msg_to_metres
from ..core.scale import (LEVEL_SCANNER_RPY, REFERENCE_SOURCES, STATE_FIELDS, MetricScaler,
                          Reference, ScaleConfig, ScaleState, points_to_sparse_depth, pose_matrix,
                          quaternion_pose, scan_points)
from .conversions import stamp_ns

try:  # optional: the scanner pose from tf2 where it is installed
    import tf2_ros
except ImportError:  # pragma: no cover - depends on the installation (absent in the venv)
    tf2_ros = None

#: The scale parameters: name -> (default, description, ScaleConfig field or None).
SCALE_PARAMETERS = {
    "scale_source": ("none", "none | fixed | sparse_depth | scan | ground_plane", "source"),
    "fixed_scale": (1.0, "fixed: depth = fixed_scale * network depth", "fixed_scale"),
    "camera_height": (0.0, "ground_plane: optical centre above the floor, m", "camera_height"),
    "expected_pitch": (0.0, "ground_plane: camera pitch in degrees, positive = looking up",
                       "expected_pitch_deg"),
    "max_tilt": (15.0, "ground_plane: largest angle (deg) of the floor normal from the expected up",
                 "max_tilt_deg"),
    "ground_region": (0.4, "ground_plane: fraction of the image rows, from the bottom, searched",
                      "ground_region"),
    "ground_min_fraction": (0.15, "ground_plane: smallest share of the region on the floor",
                            "ground_min_fraction"),
    "scale_min_support": (16, "fewest agreeing references (floor: 4x as many points)",
                          "min_support"),
    "scale_inlier_threshold": (0.3, "largest relative residual of an agreeing reference",
                               "inlier_threshold"),
    "ground_inlier_threshold": (0.05, "ground_plane: largest point-to-floor distance of a floor "
                                "point, as a fraction of camera_height", "ground_inlier_threshold"),
    "scale_min_inlier_fraction": (0.3, "smallest share of the references that must agree",
                                  "min_inlier_fraction"),
    "scale_smoothing": (0.5, "weight of the previous scale in [0, 1) (0 = every frame's own fit)",
                        "smoothing"),
    "scale_jump_ratio": (1.5, "restart the smoothing when the new scale differs by more",
                         "jump_ratio"),
    "scale_max_age": (2.0, "seconds the last good scale is kept, then scale_fallback", "max_age"),
    "scale_fallback": ("unscaled", "unscaled (the network's depth) | skip (no depth)", "fallback"),
    "reference_stamp_tolerance": (0.05, "s between an image and its paired reference", None),
    "scan_xyz": ([0.0, 0.0, 0.0], "scan: scanner position in the camera optical frame, m", None),
    "scan_rpy": (list(LEVEL_SCANNER_RPY), "scan: scanner roll, pitch, yaw in the camera optical "
                 "frame, rad (default: a level scanner at a level camera)", None),
    "scan_use_tf": (True, "scan: use tf2 for the scanner pose when tf2_ros is installed", None),
}

#: Reference topics (relative names) and types of each source.
REFERENCE_TOPICS = {"sparse_depth": (("sparse_depth", Image), ("sparse_points", PointCloud2)),
                    "scan": (("scan", LaserScan),)}
#: References kept for stamp pairing.
REFERENCE_BUFFER = 16
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


class ScaleSourceAdapter:
    """Metric scale for ``depth_node``: declares the ``scale_*`` parameters, subscribes the
    reference topics of the selected source, sets the pipeline's scaler and publishes
    ``depth/scale``.

    Args:
        node: the rclpy node (parameters, subscriptions, publisher, logger).
        qos_in, qos_out: QoS of the reference subscriptions and of ``depth/scale``.

    The worker thread calls :meth:`prepare` before and :meth:`publish` after each frame; a
    parameter change is applied by :meth:`prepare`, so the pipeline never changes mid-frame,
    and a pipeline built anew (a lifecycle re-configure) gets the current scaler.
    """

    def __init__(self, node, qos_in, qos_out):
        self.node, self.qos_in = node, qos_in
        self._scaler: Optional[MetricScaler] = None
        for name, (default, doc, _) in SCALE_PARAMETERS.items():
            node.declare_parameter(name, default, ParameterDescriptor(description=doc))
        self._lock = threading.Lock()
        self._refs: "OrderedDict[int, object]" = OrderedDict()
        self._subs, self._sub_source = [], "none"
        self._active = False  # reference subscriptions open only while the node's inputs are
        self._tf_buffer = None
        self.last: Optional[ScaleState] = None
        self.pub = node.create_publisher(Float32MultiArray, "depth/scale", qos_out)
        values = {name: node.get_parameter(name).value for name in SCALE_PARAMETERS}
        try:
            config = self._config(values)
        except ValueError as exc:
            node.get_logger().error(f"scale parameters rejected ({exc}): scale_source none")
            config = ScaleConfig()
        self._pending: Optional[ScaleConfig] = config
        self._values = values
        self._subscribe(config.source)
        node.add_on_set_parameters_callback(self._on_params)

    # ----------------------------------------------------------------- parameters
    @staticmethod
    def _config(values: dict) -> ScaleConfig:
        return ScaleConfig(**{field: values[name] for name, (_, _, field) in SCALE_PARAMETERS.items()
                              if field is not None})

    def _on_params(self, params) -> SetParametersResult:
        changed = {p.name: p.value for p in params if p.name in SCALE_PARAMETERS}
        if not changed:
            return SetParametersResult(successful=True)
        values = {**self._values, **changed}
        try:
            config = self._config(values)
            pose_matrix(values["scan_xyz"], values["scan_rpy"])  # three values each
        except (ValueError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        source_changed = config.source != self._values["scale_source"]
        with self._lock:
            self._values, self._pending = values, config
        if source_changed:
            self._subscribe(config.source)
        return SetParametersResult(successful=True)

    def _subscribe(self, source: str) -> None:
        """Unsubscribe the old source's reference topics, subscribe the new one's (none while
        the node is not active: :meth:`set_active`)."""
        self._sub_source = source
        for sub in self._subs:
            self.node.destroy_subscription(sub)
        with self._lock:
            self._refs.clear()
        self._subs = [self.node.create_subscription(kind, topic, self._on_reference, self.qos_in)
                      for topic, kind in (REFERENCE_TOPICS.get(source, ()) if self._active
                                          else ())]

    def set_active(self, active: bool) -> None:
        """Open (True: the node starts its inputs) or close (False: deactivate, shutdown) the
        reference subscriptions of the source in effect; a deactivated node subscribes nothing."""
        self._active = bool(active)
        self._subscribe(self._sub_source)

    def _on_reference(self, msg) -> None:
        with self._lock:
            self._refs[stamp_ns(msg.header)] = msg
            while len(self._refs) > REFERENCE_BUFFER:
                self._refs.popitem(last=False)

    # -------------------------------------------------------------------- per frame
    def prepare(self, pipeline, header, shape: Tuple[int, int], K: np.ndarray
                ) -> Optional[Reference]:
        """Apply pending parameter changes to ``pipeline`` (a
        :class:`~mono_depth_ros.core.pipeline.FramePipeline`), then the reference paired with the
        image ``header`` for an image of ``shape`` with intrinsics ``K`` (None for sources without
        one)."""
        with self._lock:
            config, self._pending = self._pending, None
            values = self._values
        if config is not None:
            self._scaler = MetricScaler(config) if config.source != "none" else None
            self.node.get_logger().info(f"scale_source {config.source}")
        if pipeline.scaler is not self._scaler:
            pipeline.set_scaler(self._scaler)
        source = values["scale_source"]
        if source not in REFERENCE_SOURCES:
            return None
        msg, problem = self._pair(stamp_ns(header), float(values["reference_stamp_tolerance"]))
        if msg is None:
            return Reference(problem=problem[0], detail=problem[1])
        try:
            return Reference(self._CONVERT[type(msg)](self, msg, header, shape, K, values))
        except InvalidImage as exc:
            return Reference(problem="bad_reference_image", detail=str(exc))
        except BadReference as exc:
            return Reference(problem=exc.reason, detail=exc.detail)

    def _pair(self, stamp: int, tolerance: float):
        with self._lock:
            if not self._refs:
                return None, ("no_reference", "no reference message received yet")
            best = min(self._refs, key=lambda s: abs(s - stamp))
            msg = self._refs[best]
        dt = abs(best - stamp) * 1e-9
        if dt > tolerance:
            return None, ("stale_reference", f"nearest reference is {dt:.3f} s from the image "
                          f"(reference_stamp_tolerance {tolerance} s)")
        return msg, ("", "")

    def _image_ref(self, msg, header, shape, K, values) -> np.ndarray:
        return depth_msg_to_metres(msg)  # its size is checked by the core (wrong_size)

    def _cloud_ref(self, msg, header, shape, K, values) -> np.ndarray:
        if msg.header.frame_id and header.frame_id and msg.header.frame_id != header.frame_id:
            raise BadReference("wrong_frame", f"sparse_points in {msg.header.frame_id!r}, not the "
                               f"camera optical frame {header.frame_id!r}")
        return points_to_sparse_depth(cloud_xyz(msg), K, shape)

    def _scan_ref(self, msg, header, shape, K, values) -> np.ndarray:
        pts = scan_points(msg.ranges, msg.angle_min, msg.angle_increment, msg.range_min,
                          msg.range_max)
        return points_to_sparse_depth(pts, K, shape, self._scan_pose(msg, header, values))

    _CONVERT = {Image: _image_ref, PointCloud2: _cloud_ref, LaserScan: _scan_ref}

    def _scan_pose(self, msg, header, values) -> np.ndarray:
        """Scanner pose in the camera optical frame: tf2 when available, else the parameters."""
        if tf2_ros is not None and values["scan_use_tf"] and msg.header.frame_id and header.frame_id:
            try:  # pragma: no cover - tf2_ros is not installed in the test environment
                if self._tf_buffer is None:
                    self._tf_buffer = tf2_ros.Buffer()
                    self._tf_listener = tf2_ros.TransformListener(self._tf_buffer, self.node)
                tf = self._tf_buffer.lookup_transform(header.frame_id, msg.header.frame_id,
                                                      msg.header.stamp).transform
                return quaternion_pose([tf.translation.x, tf.translation.y, tf.translation.z],
                                       [tf.rotation.x, tf.rotation.y, tf.rotation.z, tf.rotation.w])
            except Exception as exc:  # noqa: BLE001 - any tf failure: fall back to parameters
                self.node.get_logger().warning(
                    f"tf2 lookup {msg.header.frame_id} -> {header.frame_id} failed ({exc}): "
                    "using scan_xyz/rpy", throttle_duration_sec=5.0)
        return pose_matrix(values["scan_xyz"], values["scan_rpy"])

    def publish(self, header, state: Optional[ScaleState]) -> None:
        """Publish ``state`` on ``depth/scale`` (nothing without a scaler)."""
        if state is None:
            return
        self.last = state
        msg = Float32MultiArray()
        msg.layout.dim = [MultiArrayDimension(label=",".join(STATE_FIELDS), size=len(STATE_FIELDS),
                                              stride=len(STATE_FIELDS))]
        msg.data = state.as_list()
        self.pub.publish(msg)

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
