"""Fill rclpy ``sensor_msgs`` messages from core arrays (ROS layer: imports message packages).

The core produces numpy arrays and cloud layouts; this module only copies them into message
fields. ``uint8[]`` fields are assigned as ``array.array('B')`` to messages made with
``check_fields=True``: rosidl's setter then keeps that buffer as it is (one memcpy from the numpy
array in all), where the default setter copies it once more, and a sequence of ints would be
validated byte by byte in Python (seconds for a VGA cloud). The checks cost microseconds for the
scalar fields and catch a wrong type at the source.
"""

from __future__ import annotations

import array
import importlib
import sys

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

from ..core.camera import CameraModel, output_camera_info
from ..core.geometry import OrganizedCloud
from ..core.image_codec import array_to_image_fields


def byte_array(buf) -> array.array:
    """``array.array('B')`` copy of any bytes-like object (one memcpy)."""
    out = array.array("B")
    out.frombytes(memoryview(buf).cast("B"))
    return out


def make_image(header, img: np.ndarray, encoding: str) -> Image:
    """``sensor_msgs/Image`` with ``header`` (kept unchanged) and ``img`` in ``encoding``."""
    f = array_to_image_fields(img, encoding)
    msg = Image(check_fields=True)
    msg.header = header
    msg.height, msg.width, msg.encoding = int(f["height"]), int(f["width"]), str(f["encoding"])
    msg.is_bigendian, msg.step = int(f["is_bigendian"]), int(f["step"])
    msg.data = byte_array(f["data"])
    return msg


def make_cloud(header, cloud: OrganizedCloud) -> PointCloud2:
    """``sensor_msgs/PointCloud2`` (organized, ``is_dense`` False) from an OrganizedCloud."""
    msg = PointCloud2(check_fields=True)
    msg.header = header
    msg.height, msg.width = int(cloud.height), int(cloud.width)
    msg.fields = [PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
                  for f in cloud.fields]
    msg.is_bigendian = sys.byteorder == "big"  # the cloud buffer is native-endian float32
    msg.point_step, msg.row_step = int(cloud.point_step), int(cloud.row_step)
    msg.is_dense = bool(cloud.is_dense)
    msg.data = byte_array(cloud.data)
    return msg


def depth_camera_info(cam: CameraModel, header) -> CameraInfo:
    """``sensor_msgs/CameraInfo`` describing exactly the published depth image of camera ``cam``
    (:func:`mono_depth_ros.core.camera.output_camera_info`: its size and K, D zero, R identity,
    no binning, empty ROI); the header is the image's, unchanged."""
    out = CameraInfo()
    out.header = header
    for name, value in output_camera_info(cam).items():
        setattr(out, name, value)
    return out


def stamp_ns(header) -> int:
    """Header stamp in integer nanoseconds (the key used to pair images and camera_info)."""
    return int(header.stamp.sec) * 10**9 + int(header.stamp.nanosec)


def qos_profile(reliability: str, depth: int):
    """QoS profile from a parameter pair (``best_effort`` / ``reliable``, history depth).

    Raises:
        ValueError: unknown reliability string or depth < 1.
    """
    from rclpy.qos import (HistoryPolicy, QoSProfile, ReliabilityPolicy)
    rel = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
    if reliability not in rel:
        raise ValueError(f"reliability must be best_effort or reliable, got {reliability!r}")
    if depth < 1:
        raise ValueError(f"QoS depth must be >= 1, got {depth}")
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(depth), reliability=rel[reliability])


def message_class(msgtype: str):
    """rclpy message class for ``pkg/msg/Name``.

    Raises:
        ValueError: malformed type name; ImportError: package not installed.
    """
    parts = msgtype.split("/")
    if len(parts) != 3:
        raise ValueError(f"message type must look like pkg/msg/Name, got {msgtype!r}")
    return getattr(importlib.import_module(f"{parts[0]}.{parts[1]}"), parts[2])
