"""ROS 2 bags in MCAP without a ROS install, through ``rosbags`` (ROS-free).

Messages are built and parsed with the rosbags ``ROS2_KILTED`` typestore; their CDR bytes are
exactly what rclpy publishes and receives, so the player and recorder nodes move raw bytes
between DDS and the bag without converting messages.
"""

from __future__ import annotations

import shutil
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, Iterator, Optional, Sequence, Tuple, Union

import numpy as np

from ..core.image_codec import array_to_image_fields

#: Topics written by :func:`write_dataset_bag`.
IMAGE_TOPIC = "/camera/image_raw"
INFO_TOPIC = "/camera/camera_info"
GT_TOPIC = "/camera/depth/ground_truth"

IMAGE_TYPE = "sensor_msgs/msg/Image"
INFO_TYPE = "sensor_msgs/msg/CameraInfo"
CLOUD_TYPE = "sensor_msgs/msg/PointCloud2"


@lru_cache(maxsize=1)
def typestore():
    """The rosbags typestore for ROS 2 Kilted message definitions."""
    from rosbags.typesys import Stores, get_typestore
    return get_typestore(Stores.ROS2_KILTED)


def _header(stamp_ns: int, frame_id: str):
    ts = typestore()
    Time = ts.types["builtin_interfaces/msg/Time"]
    Header = ts.types["std_msgs/msg/Header"]
    return Header(stamp=Time(sec=int(stamp_ns // 10**9), nanosec=int(stamp_ns % 10**9)),
                  frame_id=frame_id)


def image_message(array: np.ndarray, encoding: str, stamp_ns: int, frame_id: str):
    """A rosbags ``sensor_msgs/msg/Image`` holding ``array`` (see ``array_to_image_fields``)."""
    f = array_to_image_fields(array, encoding)
    f["data"] = np.frombuffer(f["data"], dtype=np.uint8)
    return typestore().types[IMAGE_TYPE](header=_header(stamp_ns, frame_id), **f)


def camera_info_message(K: np.ndarray, width: int, height: int, stamp_ns: int, frame_id: str):
    """A rosbags ``sensor_msgs/msg/CameraInfo`` for an undistorted pinhole camera with ``K``."""
    ts = typestore()
    P = np.zeros((3, 4), dtype=np.float64)
    P[:, :3] = K
    return ts.types[INFO_TYPE](
        header=_header(stamp_ns, frame_id), height=int(height), width=int(width),
        distortion_model="plumb_bob", d=np.zeros(5), k=np.asarray(K, np.float64).reshape(9),
        r=np.eye(3).reshape(9), p=P.reshape(12), binning_x=0, binning_y=0,
        roi=ts.types["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


def serialize(msg, msgtype: str) -> bytes:
    """CDR bytes of a rosbags message (what DDS carries)."""
    return bytes(typestore().serialize_cdr(msg, msgtype))


def deserialize(data: Union[bytes, memoryview], msgtype: str):
    """rosbags message from CDR bytes."""
    return typestore().deserialize_cdr(bytes(data), msgtype)


class McapWriter:
    """Minimal MCAP bag writer (rosbag2 layout: a folder with ``metadata.yaml`` + ``.mcap``).

    Args:
        path: bag folder to create; an existing one is replaced when ``overwrite``.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
    """

    def __init__(self, path: Union[str, Path], overwrite: bool = True):
        from rosbags.rosbag2 import StoragePlugin, Writer
        self.path = Path(path)
        if self.path.exists():
            if not overwrite:
                raise FileExistsError(self.path)
            shutil.rmtree(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._conns: Dict[str, object] = {}
        self.counts: Dict[str, int] = {}

    def __enter__(self) -> "McapWriter":
        self._writer.open()
        return self

    def __exit__(self, *exc) -> None:
        self._writer.close()

    def write_raw(self, topic: str, msgtype: str, t_ns: int, data: Union[bytes, memoryview]) -> None:
        """Append CDR ``data`` of ``msgtype`` on ``topic`` at log time ``t_ns``."""
        conn = self._conns.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, msgtype, typestore=typestore())
            self._conns[topic] = conn
            self.counts[topic] = 0
        self._writer.write(conn, int(t_ns), data)
        self.counts[topic] += 1

    def write(self, topic: str, msg, msgtype: str, t_ns: int) -> None:
        """Serialise a rosbags message and append it."""
        self.write_raw(topic, msgtype, t_ns, serialize(msg, msgtype))


def write_dataset_bag(samples: Iterable, out: Union[str, Path], frame_id: str = "camera_optical_frame",
                      progress: bool = False) -> Dict[str, int]:
    """Write RGB, camera_info and ground-truth depth of ``samples`` to an MCAP bag.

    Topics: :data:`IMAGE_TOPIC` (rgb8), :data:`INFO_TOPIC`, :data:`GT_TOPIC` (32FC1 metres, NaN
    invalid); header stamps and log times are each sample's ``stamp_ns`` (the dataset rate).

    Returns:
        message count per topic.
    """
    items = samples
    if progress:
        from tqdm import tqdm
        items = tqdm(samples, desc="make-bag", unit="frame", disable=None)  # None: off without a TTY
    with McapWriter(out) as w:
        for s in items:
            t = int(s.stamp_ns)
            h, wd = s.rgb.shape[:2]
            w.write(IMAGE_TOPIC, image_message(s.rgb, "rgb8", t, frame_id), IMAGE_TYPE, t)
            w.write(INFO_TOPIC, camera_info_message(s.K, wd, h, t, frame_id), INFO_TYPE, t)
            if s.depth is not None:
                w.write(GT_TOPIC, image_message(s.depth.astype(np.float32), "32FC1", t, frame_id),
                        IMAGE_TYPE, t)
        return dict(w.counts)


def bag_topics(path: Union[str, Path]) -> Dict[str, Tuple[str, int]]:
    """``{topic: (msgtype, count)}`` of a bag."""
    from rosbags.rosbag2 import Reader
    with Reader(path) as r:
        return {c.topic: (c.msgtype, c.msgcount) for c in r.connections}


def iter_raw(path: Union[str, Path], topics: Optional[Sequence[str]] = None
             ) -> Iterator[Tuple[str, str, int, memoryview]]:
    """Yield ``(topic, msgtype, log_time_ns, cdr_bytes)`` in log-time order."""
    from rosbags.rosbag2 import Reader
    with Reader(path) as r:
        conns = [c for c in r.connections if topics is None or c.topic in topics]
        for conn, t, data in r.messages(connections=conns):
            yield conn.topic, conn.msgtype, t, data


def stamp_ns(msg) -> int:
    """Header stamp of a (rosbags or rclpy) message in nanoseconds."""
    st = msg.header.stamp
    return int(st.sec) * 10**9 + int(st.nanosec)


def read_topics_by_stamp(path: Union[str, Path], topics: Sequence[str],
                         stamps: Optional[Iterable[int]] = None) -> Dict[str, Dict[int, object]]:
    """Deserialise ``topics`` of a bag into ``{topic: {header_stamp_ns: message}}``.

    Args:
        stamps: keep only messages with these header stamps (bounds memory on long bags).
    """
    keep = None if stamps is None else set(stamps)
    out: Dict[str, Dict[int, object]] = {t: {} for t in topics}
    for topic, msgtype, _, data in iter_raw(path, topics):
        msg = deserialize(data, msgtype)
        st = stamp_ns(msg)
        if keep is None or st in keep:
            out[topic][st] = msg
    return out
