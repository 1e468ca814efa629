"""A ROS 2 bag as a dataset: camera images + camera_info (+ ground-truth depth) -> Samples.

Reads any rosbag2 folder ``rosbags`` can open (MCAP or sqlite3: a folder with
``metadata.yaml`` and ``*.mcap`` / ``*.db3``), e.g. one written by
:func:`mono_depth_ros.data.bag.write_dataset_bag` or recorded from a robot:

- image topic: ``sensor_msgs/msg/Image`` (rgb8, bgr8, rgba8, bgra8, mono8, mono16) or
  ``sensor_msgs/msg/CompressedImage`` (jpeg / png) -> ``rgb``;
- camera_info topic: ``sensor_msgs/msg/CameraInfo`` -> ``K`` (its ``k``);
- optional depth topic: ``sensor_msgs/msg/Image`` 32FC1 (m) or 16UC1 (mm) -> ``depth``.

Messages are paired by their *header* stamp (not the log time): depth must carry exactly the
image's stamp; camera_info the same stamp, or else the one nearest in time (a constant camera
is often published at its own rate). The bag is indexed once (only the headers are parsed) and
each frame is read on demand.
"""

from __future__ import annotations

import struct
from typing import Dict, Optional, Tuple

import numpy as np

from ..core.camera import camera_model
from ..core.geometry import InvalidCameraInfo
from ..core.image_codec import InvalidImage, compressed_msg_to_rgb, depth_msg_to_metres, image_msg_to_rgb
from . import bag as bagio
from .datasets import DatasetError, Sample, _Frames

COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
_IMAGE_TYPES = (bagio.IMAGE_TYPE, COMPRESSED_TYPE)


def cdr_header(data) -> Tuple[int, str]:
    """``(stamp_ns, frame_id)`` of a CDR-serialised message that starts with a std_msgs/Header,
    read without deserialising the rest (images stay undecoded).

    Raises:
        ValueError: the buffer is too short to hold a header.
    """
    buf = memoryview(data)
    if len(buf) < 16:
        raise ValueError("message too short for a header")
    end = "<" if buf[1] & 1 else ">"  # encapsulation id: CDR_LE = 0x0001, CDR_BE = 0x0000
    sec, nsec, n = struct.unpack_from(end + "iII", buf, 4)
    frame_id = bytes(buf[16:16 + max(n - 1, 0)]).decode("utf-8", "replace")
    return sec * 10**9 + nsec, frame_id


class BagDataset(_Frames):
    """A rosbag2 folder (module docstring) as a sequence of :class:`Sample`.

    Args:
        root: the bag folder (holding ``metadata.yaml``).
        image_topic: default :data:`~.bag.IMAGE_TOPIC` if in the bag, else the only
            Image / CompressedImage topic without ``depth`` in its name.
        info_topic: default :data:`~.bag.INFO_TOPIC` if in the bag, else ``<image ns>/camera_info``
            or the only CameraInfo topic.
        depth_topic: default :data:`~.bag.GT_TOPIC` if in the bag, else no depth.
        K: intrinsics for bags without camera_info.

    Sample names are the header stamps (ns, as text); ``frame_id`` is the first image's.

    Raises:
        DatasetError: not a bag folder, a named topic is missing, the image topic is
            ambiguous, no intrinsics, or no image messages.
    """

    def __init__(self, root, frames: Optional[slice] = None, image_topic: Optional[str] = None,
                 info_topic: Optional[str] = None, depth_topic: Optional[str] = None,
                 K: Optional[np.ndarray] = None):
        super().__init__(root, frames)
        if not (self.root / "metadata.yaml").is_file():
            raise DatasetError(f"no ROS 2 bag (metadata.yaml) in {self.root}")
        try:
            topics = bagio.bag_topics(self.root)
        except Exception as exc:  # rosbags raises its own error types for broken bags
            raise DatasetError(f"cannot open bag {self.root}: {exc}") from exc
        self.image_topic = self._pick_image(topics, image_topic)
        self.info_topic = self._pick_info(topics, info_topic)
        if depth_topic is None and bagio.GT_TOPIC in topics:
            depth_topic = bagio.GT_TOPIC
        if depth_topic is not None and depth_topic not in topics:
            raise DatasetError(f"depth topic {depth_topic} not in bag {self.root}")
        self.depth_topic = depth_topic
        self.types = {t: topics[t][0] for t in (self.image_topic, self.info_topic, depth_topic) if t}
        self.default_K = None if K is None else np.asarray(K, np.float64).reshape(3, 3)
        if self.info_topic is None and self.default_K is None:
            raise DatasetError(f"bag {self.root} has no CameraInfo topic; pass K")
        self._index: Dict[str, Dict[int, int]] = {t: {} for t in self.types}
        first_frame = None
        for topic, _, t, data in bagio.iter_raw(self.root, list(self.types)):
            stamp, fid = cdr_header(data)
            self._index[topic].setdefault(stamp, t)
            if topic == self.image_topic and first_frame is None:
                first_frame = fid
        stamps = sorted(self._index[self.image_topic])
        if not stamps:
            raise DatasetError(f"no messages on {self.image_topic} in {self.root}")
        if first_frame:
            self.frame_id = first_frame
        self._info_stamps = np.array(sorted(self._index[self.info_topic]), dtype=np.int64) \
            if self.info_topic else np.zeros(0, np.int64)
        self._items = self._select(stamps)

    def _pick_image(self, topics, name: Optional[str]) -> str:
        if name is not None:
            if name not in topics or topics[name][0] not in _IMAGE_TYPES:
                raise DatasetError(f"image topic {name} not in bag {self.root} (topics: {sorted(topics)})")
            return name
        if bagio.IMAGE_TOPIC in topics:
            return bagio.IMAGE_TOPIC
        cands = [t for t, (ty, _) in topics.items() if ty in _IMAGE_TYPES and "depth" not in t.lower()]
        if len(cands) != 1:
            raise DatasetError(f"bag {self.root}: pass image_topic, candidates {sorted(cands)}")
        return cands[0]

    def _pick_info(self, topics, name: Optional[str]) -> Optional[str]:
        if name is not None:
            if name not in topics:
                raise DatasetError(f"camera_info topic {name} not in bag {self.root}")
            return name
        if bagio.INFO_TOPIC in topics:
            return bagio.INFO_TOPIC
        sibling = self.image_topic.rsplit("/", 1)[0] + "/camera_info"
        if sibling in topics:
            return sibling
        cands = [t for t, (ty, _) in topics.items() if ty == bagio.INFO_TYPE]
        return cands[0] if len(cands) == 1 else None

    def _fetch(self, reader, topic: str, stamp: int):
        """The message of ``topic`` with header ``stamp`` (via its indexed log time)."""
        t = self._index[topic][stamp]
        conns = [c for c in reader.connections if c.topic == topic]
        for _, _, data in reader.messages(connections=conns, start=t, stop=t + 1):
            if cdr_header(data)[0] == stamp:
                return bagio.deserialize(data, self.types[topic])
        raise DatasetError(f"{topic} message at {stamp} vanished from {self.root}")  # pragma: no cover

    def _load_with(self, reader, i: int) -> Sample:
        stamp = self._items[i]
        msg = self._fetch(reader, self.image_topic, stamp)
        try:
            rgb = compressed_msg_to_rgb(msg) if self.types[self.image_topic] == COMPRESSED_TYPE \
                else image_msg_to_rgb(msg)
        except InvalidImage as exc:
            raise DatasetError(f"{self.image_topic} at {stamp}: {exc}") from exc
        if self.info_topic is not None and len(self._info_stamps):
            j = int(np.argmin(np.abs(self._info_stamps - stamp)))
            info = self._fetch(reader, self.info_topic, int(self._info_stamps[j]))
            try:  # binning, ROI and a rescaled image as image_geometry reads them
                K = camera_model(info, rgb.shape[1], rgb.shape[0]).K.copy()
            except InvalidCameraInfo as exc:
                raise DatasetError(f"{self.info_topic} at {stamp}: {exc}") from exc
        elif self.default_K is not None:
            K = self.default_K.copy()
        else:
            raise DatasetError(f"no camera_info messages in {self.root}; pass K")
        depth = None
        if self.depth_topic is not None and stamp in self._index[self.depth_topic]:
            try:
                depth = depth_msg_to_metres(self._fetch(reader, self.depth_topic, stamp)).copy()
            except InvalidImage as exc:
                raise DatasetError(f"{self.depth_topic} at {stamp}: {exc}") from exc
        return Sample(rgb, depth, K, stamp, str(stamp))

    def _load(self, i: int) -> Sample:
        from rosbags.rosbag2 import Reader
        with Reader(self.root) as reader:
            return self._load_with(reader, i)

    def __iter__(self):
        from rosbags.rosbag2 import Reader
        with Reader(self.root) as reader:
            for i in range(len(self)):
                yield self._load_with(reader, i)
