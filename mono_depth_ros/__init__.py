"""mono_depth_ros: monocular metric depth and point clouds for ROS 2.

The package is split into a ROS-free core (``models``, ``runtime``, ``geometry``,
``image_codec``, ``metrics``, ``data``, ``evaluate``) and thin rclpy nodes (``depth_node``,
``bag_player``, ``bag_recorder``). Nothing in the core imports rclpy.
"""

__version__ = "0.1.0"
