"""The node's publish step for ``mono-depth-ros bench`` (ROS layer: imports rclpy).

:class:`BenchPublisher` owns a private :class:`rclpy.context.Context` (never the global one), a
node named :data:`NODE_NAME` and two publishers with the node's output QoS (reliable, keep-last
1): ``depth/image`` (``sensor_msgs/Image``, 32FC1) and ``points`` (``sensor_msgs/PointCloud2``).
:meth:`BenchPublisher.publish` builds both messages with :mod:`mono_depth_ros.ros.conversions`
and publishes them, as ``depth_node`` does per frame: ``publish`` converts the Python message
to its C form and serialises it into the middleware. Nothing subscribes, so nothing is
delivered; discovery traffic goes to the usual ``ROS_DOMAIN_ID`` (and discovery range).
"""

from __future__ import annotations

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header

from ..core.geometry import OrganizedCloud
from .conversions import make_cloud, make_image, qos_profile

#: Name of the bench's node.
NODE_NAME = "mono_depth_ros_bench"
#: Topics of the depth image and the cloud (relative, as the node's outputs).
TOPICS = {"depth": "depth/image", "points": "points"}


class BenchPublisher:
    """Publishers of the depth Image and the PointCloud2 in a private rclpy context.

    Use as a context manager, or call :meth:`close` (idempotent): it destroys the node and shuts
    the private context down. If set-up fails half-way, what was created is closed again.
    """

    def __init__(self, frame_id: str = "camera_optical_frame"):
        self.frame_id = frame_id
        self.context = Context()
        self.node = None
        # no signal handlers: Ctrl-C stays a KeyboardInterrupt for the caller's clean-up
        rclpy.init(args=[], context=self.context,
                   signal_handler_options=SignalHandlerOptions.NO)
        try:
            self.node = Node(NODE_NAME, context=self.context)
            qos = qos_profile("reliable", 1)
            self.depth_pub = self.node.create_publisher(Image, TOPICS["depth"], qos)
            self.points_pub = self.node.create_publisher(PointCloud2, TOPICS["points"], qos)
        except BaseException:
            self.close()
            raise

    def publish(self, depth: np.ndarray, cloud: OrganizedCloud) -> None:
        """Build and publish the depth image (float32 metres, HxW, as 32FC1) and the cloud."""
        header = Header(frame_id=self.frame_id)
        self.depth_pub.publish(make_image(header, depth, "32FC1"))
        self.points_pub.publish(make_cloud(header, cloud))

    def close(self) -> None:
        """Destroy the node and shut the private context down (safe to call twice)."""
        if self.node is not None:
            self.node.destroy_node()
            self.node = None
        self.context.try_shutdown()

    def __enter__(self) -> "BenchPublisher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
