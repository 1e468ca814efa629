"""depth_node in-process with a metric scale source: every reference kind is used, bad references
are skipped with a counter while the last good scale is held, then the fallback applies, and the
source can be switched by parameter."""

from __future__ import annotations

import array
import re

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import CameraInfo, LaserScan, PointCloud2, PointField  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from mono_depth_ros.ros.conversions import make_image  # noqa: E402
from mono_depth_ros.ros.depth_node import DepthNode  # noqa: E402
from mono_depth_ros.ros.scale_source import cloud_xyz  # noqa: E402

K = np.array([[585.0, 0.0, 320.0], [0.0, 585.0, 240.0], [0.0, 0.0, 1.0]])
WANTED = ("depth",)


def header(t: float, frame="camera_optical_frame") -> Header:
    h = Header(frame_id=frame)
    h.stamp.sec, h.stamp.nanosec = 500 + int(t), int(round((t % 1) * 1e9))
    return h


def rgb_frame() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 255, (480, 640, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def node(rclpy_context):
    n = DepthNode(context=rclpy_context, parameter_overrides=[
        Parameter("stats_period", value=0.0), Parameter("warn_throttle", value=0.0),
        Parameter("device", value="cpu"), Parameter("max_depth", value=30.0),
        # a small network input keeps the test fast; the scale code sees the full 640 x 480
        Parameter("input_width", value=128), Parameter("input_height", value=96),
        Parameter("scale_source", value="sparse_depth"), Parameter("scale_smoothing", value=0.0),
        Parameter("scale_max_age", value=1.0), Parameter("scale_fallback", value="unscaled"),
        # each new scale at once (confirmation: test_scale.py), scanner pose from parameters
        Parameter("scale_jump_confirm_frames", value=1), Parameter("scan_use_tf", value=False),
        Parameter("camera_info_max_age", value=60.0)])  # one camera_info at t=0 for all frames
    m = CameraInfo(header=header(0), width=640, height=480)
    m.k = K.reshape(9).tolist()
    n._on_info(m)
    yield n
    n.destroy_node()


@pytest.fixture(scope="module")
def base_depth(node):
    """The network's own depth of the test frame (the node's estimator, same input)."""
    return node.estimator.predict(rgb_frame(), K).depth


def _frame(node, t: float, *refs) -> bool:
    for r in refs:
        node.scale_source._on_reference(r)
    return node.process_frame(make_image(header(t), rgb_frame(), "rgb8"), WANTED)


def _sparse(depth: np.ndarray, n: int = 400) -> np.ndarray:
    out = np.full(depth.shape, np.nan, np.float32)
    idx = np.random.default_rng(0).choice(np.flatnonzero(np.isfinite(depth)), n, replace=False)
    out.flat[idx] = depth.flat[idx]
    return out


def _cloud(points: np.ndarray, frame: str, t: float) -> PointCloud2:
    msg = PointCloud2(header=header(t, frame), height=1, width=len(points), point_step=12,
                      row_step=12 * len(points), is_bigendian=False, is_dense=True)
    msg.fields = [PointField(name=n, offset=4 * i, datatype=7, count=1) for i, n in enumerate("xyz")]
    msg.data = array.array("B", points.astype(np.float32).tobytes())
    return msg


def _state(node):
    return node.scale_source.last


def test_sparse_depth_image_metres_and_millimetres(node, base_depth):
    ref = 2.0 * _sparse(base_depth)
    assert _frame(node, 1.0, make_image(header(1.0), ref, "32FC1"))
    s = _state(node)
    assert s.status == "fitted" and s.scale == pytest.approx(2.0, rel=1e-4) and s.support == 400
    mm = np.nan_to_num(ref * 1000.0).round().astype(np.uint16)
    assert _frame(node, 1.1, make_image(header(1.1), mm, "16UC1"))
    assert _state(node).status == "fitted" and _state(node).scale == pytest.approx(2.0, rel=2e-3)


def test_bad_references_are_skipped_the_scale_is_held_then_falls_back(node, base_depth):
    assert _frame(node, 2.0, make_image(header(2.0), 3.0 * _sparse(base_depth), "32FC1"))
    assert _state(node).scale == pytest.approx(3.0, rel=1e-4)
    cases = [  # (reference message, expected reason)
        (make_image(header(2.2), np.ones((240, 320), np.float32), "32FC1"), "wrong_size"),
        (make_image(header(2.3), np.full((480, 640), np.nan, np.float32), "32FC1"), "empty_reference"),
        (make_image(header(1.5), 3.0 * _sparse(base_depth), "32FC1"), "stale_reference"),
        # REP 118: inf, NaN and 0 all mean "no value"
        (make_image(header(2.5), np.full((480, 640), np.inf, np.float32), "32FC1"), "empty_reference"),
    ]
    for i, (msg, reason) in enumerate(cases):
        t = 2.2 + 0.1 * i
        before = node.pipeline.scaler.rejected[reason]
        node.scale_source._pairer.clear()
        assert _frame(node, t, msg), reason  # the frame is still published ...
        s = _state(node)
        assert (s.status, s.reason) == ("held", reason)  # ... with the last good scale
        assert s.scale == pytest.approx(3.0, rel=1e-4) and s.age == pytest.approx(t - 2.0, abs=1e-6)
        assert node.pipeline.scaler.rejected[reason] == before + 1
    node.scale_source._pairer.clear()
    assert _frame(node, 3.5)  # 1.5 s after the last good fit > scale_max_age: unscaled fallback
    assert (_state(node).status, _state(node).reason) == ("fallback", "no_reference")
    assert "rejected(" in node.scale_source.status() and "no_reference=1" in node.scale_source.status()


def test_points_in_the_optical_frame_and_in_another_frame(node, base_depth):
    v, u = np.nonzero(np.isfinite(base_depth))
    pick = np.random.default_rng(1).choice(len(v), 300, replace=False)
    z = 1.5 * base_depth[v[pick], u[pick]]
    pts = np.stack([(u[pick] - K[0, 2]) / K[0, 0] * z, (v[pick] - K[1, 2]) / K[1, 1] * z, z], 1)
    assert cloud_xyz(_cloud(pts, "x", 0)).shape == (300, 3)
    assert _frame(node, 4.0, _cloud(pts, "camera_optical_frame", 4.0))
    assert _state(node).status == "fitted" and _state(node).scale == pytest.approx(1.5, rel=1e-3)
    node.scale_source._pairer.clear()
    assert _frame(node, 4.1, _cloud(pts, "base_link", 4.1))
    assert _state(node).reason == "wrong_frame"


def _set(node, **values):
    """Set ``values`` atomically (all or nothing, validated as one configuration)."""
    return node.set_parameters_atomically([Parameter(k, value=v) for k, v in values.items()]
                                          ).successful


def test_scan_fixed_skip_fallback_and_parameter_switching(node, base_depth):
    assert not _set(node, scale_source="lidar")  # unknown source: refused, nothing changes
    assert not _set(node, scale_source="ground_plane")  # camera_height 0: refused
    assert _set(node, scale_source="scan")
    assert node.scale_source._subs and node.scale_source._subs[0].msg_type is LaserScan
    # a level scanner at the optical centre (default scan_xyz / scan_rpy) sees row cy
    row = 2.0 * base_depth[240]
    cols = np.flatnonzero(np.isfinite(row))
    x, z = (cols - K[0, 2]) / K[0, 0] * row[cols], row[cols]
    ang, rng = np.arctan2(-x, z), np.hypot(x, z)
    scan = LaserScan(header=header(5.0, "laser"), angle_min=-0.6, angle_max=0.6,
                     angle_increment=0.002, range_min=0.05, range_max=40.0)
    beams = np.full(int(round(1.2 / 0.002)) + 1, np.inf)
    idx = np.round((ang - scan.angle_min) / scan.angle_increment).astype(int)
    beams[idx] = rng
    scan.ranges = beams.astype(np.float32).tolist()
    assert _frame(node, 5.0, scan)
    s = _state(node)
    assert s.status == "fitted" and s.scale == pytest.approx(2.0, rel=0.02) and s.support > 100
    assert _set(node, scale_source="fixed", fixed_scale=3.0)
    assert _frame(node, 6.0)
    assert (_state(node).status, _state(node).scale) == ("fixed", 3.0)
    assert _set(node, scale_source="sparse_depth", scale_fallback="skip")
    skipped = node.stats.skipped["no_scale"]
    assert not _frame(node, 7.0)  # no reference and no earlier scale: no depth for this frame
    assert node.stats.skipped["no_scale"] == skipped + 1
    assert _state(node).status == "fallback"
    assert _set(node, scale_source="none", scale_fallback="unscaled")
    assert _frame(node, 8.0) and node.pipeline.scaler is None
    assert _state(node) is None  # a source switch forgets the old source's state


# ------------------------------------------------------------------ issue 22: trust in the scale

def _describe(node, name):
    return node.describe_parameter(name)


def test_scale_parameters_have_ranges_and_bad_values_are_refused(node):
    d = _describe(node, "max_tilt").floating_point_range[0]
    assert (d.from_value, d.to_value) == (0.0, 90.0)
    assert _describe(node, "scale_jump_confirm_frames").integer_range[0].from_value == 1
    assert _describe(node, "reference_stamp_tolerance").floating_point_range[0].from_value == 0.0
    before = {n: node.get_parameter(n).value for n in
              ("reference_stamp_tolerance", "max_tilt", "scale_smoothing", "scale_source")}
    for name, value in (("reference_stamp_tolerance", -1.0), ("max_tilt", -5.0),
                        ("max_tilt", 0.0), ("scale_smoothing", 1.0), ("scale_smoothing", 1.5),
                        ("scale_source", "lidar"), ("scale_jump_confirm_frames", 0)):
        assert not _set(node, **{name: value}), (name, value)
    # get_parameters reports what runs: every refused value left the old one in place
    assert {n: node.get_parameter(n).value for n in before} == before


def test_switching_the_source_resubscribes_the_reference_topics(node):
    topics = lambda: sorted(t.rsplit("/", 1)[-1] for t in node.scale_source.subscribed_topics)  # noqa
    assert _set(node, scale_source="sparse_depth")
    assert topics() == ["sparse_depth", "sparse_points"]
    assert _set(node, scale_source="scan")
    assert topics() == ["scan"]
    assert _set(node, scale_source="ground_plane", camera_height=1.2)
    assert topics() == []
    assert _set(node, scale_source="none", camera_height=0.0)


class _Recorder:
    """Stands in for a publisher: records (topic, message) in one shared list."""

    def __init__(self, log, topic, real):
        self.log, self.topic, self.real = log, topic, real

    def publish(self, msg):
        self.log.append((self.topic, msg))

    def get_subscription_count(self):
        return 1


def test_depth_scale_carries_the_image_header_and_follows_the_depth(node, base_depth):
    log = []
    pubs, scale_pub = dict(node.pubs), node.scale_source.pub
    node.pubs = {"depth": _Recorder(log, "depth", pubs["depth"])}
    node.scale_source.pub = _Recorder(log, "scale", scale_pub)
    try:
        assert _set(node, scale_source="sparse_depth", frame_id="cam_override")
        node.scale_source._pairer.clear()
        assert _frame(node, 9.0, make_image(header(9.0), 2.0 * _sparse(base_depth), "32FC1"))
    finally:
        node.pubs, node.scale_source.pub = pubs, scale_pub
        assert _set(node, frame_id="")
    assert [t for t, _ in log] == ["depth", "scale"]  # right after the depth it describes
    depth_msg, scale_msg = log[0][1], log[1][1]
    assert scale_msg.header == depth_msg.header
    assert scale_msg.header.frame_id == "cam_override" and scale_msg.header.stamp.sec == 509
    (status,) = scale_msg.status
    values = {kv.key: kv.value for kv in status.values}
    assert values["status"] == "fitted" and float(values["scale"]) == pytest.approx(2.0, rel=1e-4)
    assert int(values["support"]) == 400 and values["source"] == "sparse_depth"
    assert status.level == b"\x00" and status.name.endswith("depth_node/scale")


def test_one_outlier_reference_frame_moves_the_published_depth_at_most_15_percent(node, base_depth):
    assert _set(node, scale_source="sparse_depth", scale_smoothing=0.5,
                scale_jump_confirm_frames=3, scale_fallback="skip")
    node.scale_source._pairer.clear()
    out = []
    try:
        for i, factor in enumerate([1.0, 1.0, 1.0, 1.0, 1.8, 1.0, 1.0, 1 / 1.8, 1.0]):
            t = 10.0 + 0.1 * i
            ref = make_image(header(t), 2.0 * factor * _sparse(base_depth), "32FC1")
            published = _frame(node, t, ref)
            out.append((published, _state(node)))
    finally:
        assert _set(node, scale_smoothing=0.0, scale_jump_confirm_frames=1,
                    scale_fallback="unscaled")
    assert [p for p, _ in out][:3] == [False, False, True]  # the first scale is confirmed first
    scales = [s.scale for _, s in out[2:]]
    for a, b in zip(scales, scales[1:]):
        assert abs(b / a - 1.0) <= 0.15, scales
    assert out[4][1].status == "held" and out[4][1].reason == "scale_jump"
    assert out[7][1].status == "held" and out[7][1].reason == "scale_jump"
    assert scales[-1] == pytest.approx(2.0, rel=1e-4)


def test_scale_state_on_diagnostics_warn_then_error(node, base_depth):
    assert _set(node, scale_source="none")
    assert node.scale_source.diagnostic().level == 0  # no scaling asked for: nothing to say
    assert _set(node, scale_source="sparse_depth", scale_fallback="skip", scale_max_age=0.5)
    node.scale_source._pairer.clear()
    try:
        report = node.scale_source.diagnostic()
        assert report.level == 1 and "no frame scaled yet" in report.message  # no frame yet
        assert node.health_report().level >= 1
        assert "scale (sparse_depth)" in node.health_report().message
        for i in range(3):  # no reference: fallback (skip), a warning
            assert not _frame(node, 20.0 + 0.1 * i)
        report = node.scale_source.diagnostic()
        assert report.level == 1 and "no_reference" in report.message
        values = dict(report.values)
        assert values["scale: status"] == "fallback" and values["scale: reason"] == "no_reference"
        assert values["scale: age of last good scale (s)"] == "inf"
        for i in range(3, 12):  # rejected again and again: an error
            assert not _frame(node, 20.0 + 0.1 * i)
        report = node.scale_source.diagnostic()
        assert report.level == 2 and "12 frame(s) in a row" in report.message
        assert node.health_report().level == 2
        assert _frame(node, 21.5, make_image(header(21.5), 2.0 * _sparse(base_depth), "32FC1"))
        assert node.scale_source.diagnostic().level == 0  # fitted (confirm frames 1 here)
    finally:
        assert _set(node, scale_fallback="unscaled", scale_max_age=1.0)


def _lidar_cloud(base_depth, frame, t, offset=(0.0, 0.0, 0.0)):
    v, u = np.nonzero(np.isfinite(base_depth))
    pick = np.random.default_rng(2).choice(len(v), 300, replace=False)
    z = 1.5 * base_depth[v[pick], u[pick]]
    pts = np.stack([(u[pick] - K[0, 2]) / K[0, 0] * z, (v[pick] - K[1, 2]) / K[1, 1] * z, z], 1)
    return _cloud(pts - np.asarray(offset), frame, t)


def test_sparse_points_are_checked_against_the_output_frame(node, base_depth):
    assert _set(node, scale_source="sparse_depth", frame_id="cam_override", scan_use_tf=False)
    try:
        cases = [("cam_override", "fitted", ""), ("camera_optical_frame", "held", "wrong_frame"),
                 ("", "held", "empty_frame")]
        for i, (frame, status, reason) in enumerate(cases):
            node.scale_source._pairer.clear()
            t = 30.0 + 0.1 * i
            assert _frame(node, t, _lidar_cloud(base_depth, frame, t))
            assert (_state(node).status, _state(node).reason) == (status, reason), frame
        # an image without frame_id and no override: a cloud cannot be placed in it
        assert _set(node, frame_id="")
        node.scale_source._pairer.clear()
        h = header(30.5, frame="")
        node.scale_source._on_reference(_lidar_cloud(base_depth, "camera_optical_frame", 30.5))
        assert node.process_frame(make_image(h, rgb_frame(), "rgb8"), WANTED)
        assert _state(node).reason == "empty_frame"
    finally:
        assert _set(node, frame_id="", scan_use_tf=False)


class FakeTfBuffer:
    """tf2_ros.Buffer's lookup API (can_transform / lookup_transform(target, source, time,
    timeout)); ``transforms[(target, source)]`` is a translation and optionally a quaternion
    (x, y, z, w); absent = no transform."""

    def __init__(self, transforms):
        self.transforms, self.calls = transforms, []

    def can_transform(self, target, source, time, timeout):
        from rclpy.duration import Duration
        from rclpy.time import Time
        assert isinstance(time, Time) and isinstance(timeout, Duration)
        self.calls.append((target, source, time.nanoseconds))
        return (target, source) in self.transforms

    def lookup_transform(self, target, source, time, timeout):
        from geometry_msgs.msg import TransformStamped
        if (target, source) not in self.transforms:
            raise LookupError(f"{source} -> {target} not in the tree")  # tf2.LookupException
        tf = TransformStamped()
        tf.header.frame_id, tf.child_frame_id = target, source
        xyz, *quat = self.transforms[(target, source)]
        tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z = xyz
        r = tf.transform.rotation
        r.x, r.y, r.z, r.w = quat[0] if quat else (0.0, 0.0, 0.0, 1.0)
        return tf


def test_references_in_other_frames_use_tf2_and_are_rejected_without_a_transform(node, base_depth):
    adapter = node.scale_source
    assert _set(node, scale_source="sparse_depth", scan_use_tf=True)
    saved = adapter._tf_buffer
    try:
        adapter._tf_buffer = FakeTfBuffer({("camera_optical_frame", "lidar"): ((0.1, -0.2, 0.3),)})
        adapter._pairer.clear()
        # points in the lidar frame = optical points - offset: tf2 puts them back
        assert _frame(node, 40.0, _lidar_cloud(base_depth, "lidar", 40.0, (0.1, -0.2, 0.3)))
        assert _state(node).status == "fitted"
        assert _state(node).scale == pytest.approx(1.5, rel=1e-3)
        assert adapter._tf_buffer.calls == [("camera_optical_frame", "lidar", 540 * 10**9)]
        adapter._pairer.clear()
        assert _frame(node, 40.1, _lidar_cloud(base_depth, "base_laser", 40.1))  # not in the tree
        assert (_state(node).status, _state(node).reason) == ("held", "no_transform")
        adapter._tf_buffer = None  # no tf2 at all: also rejected, never a guessed pose
        adapter._pairer.clear()
        assert _frame(node, 40.2, _lidar_cloud(base_depth, "lidar", 40.2))
        assert _state(node).reason == "no_transform"
        # a scan likewise: its pose from tf2 or rejected (never scan_xyz / scan_rpy then)
        scan = LaserScan(header=header(40.3, "laser"), angle_min=-0.5, angle_increment=0.01,
                         range_min=0.1, range_max=30.0, ranges=[2.0] * 100)
        values = {**adapter._values, "scan_use_tf": True}
        with pytest.raises(Exception) as err:
            adapter._scan_ref(scan, header(40.3), (480, 640), K, values)
        assert getattr(err.value, "reason", None) == "no_transform"
        level = (0.5, -0.5, 0.5, 0.5)  # a level scanner's axes in the optical frame
        adapter._tf_buffer = FakeTfBuffer({("camera_optical_frame", "laser"): ((0, 0, 0), level)})
        ref = adapter._scan_ref(scan, header(40.3), (480, 640), K, values)
        assert np.nanmax(ref) == pytest.approx(2.0 * np.cos(0.0), abs=0.01)  # the beam ahead
        hits = np.isfinite(ref)
        assert hits[240].sum() > 50 and hits.sum() == hits[240].sum()  # one row: the scan plane
    finally:
        adapter._tf_buffer = saved
        assert _set(node, scan_use_tf=False)


def test_a_reference_arriving_after_the_image_is_waited_for(node, base_depth):
    """A lidar stamped at its sweep start comes after the image: the worker waits for it (at
    most reference_max_wait after the image arrived; generous here, so load cannot matter)."""
    import threading
    import time
    assert _set(node, scale_source="sparse_depth", reference_max_wait=1.0)
    try:
        node.scale_source._pairer.clear()
        node.scale_source._on_reference(make_image(header(49.9), 2.0 * _sparse(base_depth),
                                                   "32FC1"))  # the previous sweep, 0.13 s off
        late = make_image(header(49.98), 2.5 * _sparse(base_depth), "32FC1")
        timer = threading.Timer(0.08, node.scale_source._on_reference, [late])
        timer.start()
        assert node.process_frame(make_image(header(50.03), rgb_frame(), "rgb8"), WANTED,
                                  received_at=time.perf_counter())
        timer.join()
        assert _state(node).status == "fitted"
        assert _state(node).scale == pytest.approx(2.5, rel=1e-4)  # the late one, not 49.9
    finally:
        assert _set(node, reference_max_wait=0.15)


@pytest.mark.parametrize("overrides, error", [
    ({"scale_source": "ground_plane"}, "camera_height > 0"),
    ({"scale_smoothing": 1.0}, "scale_smoothing must be in [0, 1)"),
    ({"scale_source": "lidar"}, "scale_source must be one of"),
    ({"scale_source": "scan", "scan_use_tf": True}, "tf2_ros"),  # not installed in the venv
])
def test_a_start_configuration_that_cannot_run_stops_the_node(rclpy_context, overrides, error):
    from mono_depth_ros.inference.node_config import ConfigError
    with pytest.raises(ConfigError, match=re.escape(error)):
        DepthNode(context=rclpy_context, parameter_overrides=[
            Parameter("device", value="cpu"), Parameter("stats_period", value=0.0),
            *[Parameter(k, value=v) for k, v in overrides.items()]])


def test_out_of_range_at_start_is_refused_by_the_descriptor(rclpy_context):
    from rclpy.exceptions import ParameterException
    with pytest.raises(ParameterException, match="scale_smoothing"):
        DepthNode(context=rclpy_context, parameter_overrides=[
            Parameter("device", value="cpu"), Parameter("scale_smoothing", value=1.5)])


def test_fixing_a_refused_start_value_subscribes_the_references(rclpy_context):
    """The managed node stays unconfigured after a refused configure; a corrected value is
    accepted, configure succeeds, and activating subscribes the configured source's topics."""
    from rclpy.lifecycle import TransitionCallbackReturn as Ret
    from mono_depth_ros.ros.depth_node import LifecycleDepthNode
    n = LifecycleDepthNode(context=rclpy_context, parameter_overrides=[
        Parameter("device", value="cpu"), Parameter("stats_period", value=0.0),
        Parameter("input_width", value=128), Parameter("input_height", value=96),
        Parameter("scale_source", value="sparse_depth"), Parameter("scale_smoothing", value=1.0)])
    try:
        assert n.trigger_configure() == Ret.FAILURE  # refused, with the reasons logged
        assert n.scale_source.subscribed_topics == ()
        assert _set(n, scale_smoothing=0.5)
        assert n.get_parameter("scale_smoothing").value == 0.5
        assert n.trigger_configure() == Ret.SUCCESS
        assert n.trigger_activate() == Ret.SUCCESS
        assert sorted(t.rsplit("/", 1)[-1] for t in n.scale_source.subscribed_topics) == [
            "sparse_depth", "sparse_points"]
    finally:
        n.destroy_node()


def test_the_tf2_listener_is_created_when_the_source_is_selected_not_at_a_lookup(node, monkeypatch):
    """With tf2_ros importable (a stand-in here), selecting a reference source that uses tf2
    creates Buffer and TransformListener(buffer, node) at once: a listener created at the first
    lookup has no transforms yet, so that lookup would always fail."""
    import mono_depth_ros.ros.scale_source as ss
    made = []

    class Buffer:
        pass

    class TransformListener:
        def __init__(self, buffer, n):
            made.append((buffer, n))

    fake = type("tf2_ros", (), {"Buffer": Buffer, "TransformListener": TransformListener})
    monkeypatch.setattr(ss, "tf2_ros", fake)
    adapter = node.scale_source
    saved = adapter._tf_buffer
    adapter._tf_buffer = None
    try:
        assert _set(node, scale_source="none", scan_use_tf=True)
        assert made == []  # nothing needs tf2
        assert _set(node, scale_source="sparse_depth")
        assert len(made) == 1 and made[0][1] is node and adapter._tf_buffer is made[0][0]
        assert _set(node, scale_source="none")
        assert _set(node, scale_source="sparse_depth")
        assert len(made) == 1  # once
    finally:
        adapter._tf_buffer = saved
        assert _set(node, scale_source="none", scan_use_tf=False)
