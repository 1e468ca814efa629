"""mono_depth_ros: monocular metric depth and point clouds for ROS 2.

Layout (see the README's "Code layout"): a ROS-free core (``core``, ``models``, ``inference``,
``data``, ``training``), thin rclpy adapters in ``ros`` (the only place with module-level ROS
imports) and command-line tools in ``tools``.
"""

__version__ = "0.1.0"
