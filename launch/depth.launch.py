"""Launch depth_node (and optionally RViz) for one monocular camera.

    ros2 launch mono_depth_ros depth.launch.py camera:=camera rviz:=true
    ros2 launch mono_depth_ros depth.launch.py params_file:=my.yaml lifecycle:=true \
        namespace:=robot1

The node runs in ``<namespace>/<camera>`` and subscribes ``image_raw`` and ``camera_info``
there; it publishes ``depth/image``, ``depth/camera_info``, ``depth/colored`` and ``points``
(plus ``segmentation/*`` for segmentation models) in the same namespace, and ``/diagnostics``.

Parameters come from ``params_file``; ``model``, ``device`` and ``use_sim_time`` override it only
when given on the command line. ``lifecycle:=true`` starts the managed node, which configures
and activates itself with ``autostart:=true`` (else drive it with ``ros2 lifecycle set``).
``use_fastdds_profile:=true`` adds the shipped Fast DDS setup only when you set no DDS variables
yourself (``FASTDDS_DEFAULT_PROFILES_FILE``, ``FASTDDS_BUILTIN_TRANSPORTS``, another
``RMW_IMPLEMENTATION``); yours always win.
"""

import os
import tempfile

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from mono_depth_ros.core.dds_env import dds_defaults
from mono_depth_ros.tools.launch_support import node_namespace, node_overrides, rviz_config_for

ARGUMENTS = [
    ("camera", "camera",
     "camera namespace: subscribes <namespace>/<camera>/image_raw and camera_info"),
    ("namespace", "", "namespace above the camera's (e.g. the robot's name)"),
    ("params_file", None, "depth_node parameters (YAML with /**: ros__parameters:)"),
    ("model", "", "registered depth model; empty: the params file's"),
    ("device", "", "auto, cpu, cuda or cuda:N; empty: the params file's"),
    ("use_sim_time", "", "true: follow /clock (bag replays with --clock); empty: the params "
                         "file's (default false)"),
    ("lifecycle", "false", "true: start the managed (lifecycle) node depth_lifecycle_node"),
    ("autostart", "true", "lifecycle node: configure and activate it at start"),
    ("rviz", "false", "also start RViz with config/depth.rviz moved to the camera namespace"),
    ("use_fastdds_profile", "true",
     "add config/fastdds.xml when no DDS variable is set (never replaces yours)"),
]


def _launch_setup(context, *args, **kwargs):
    get = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    share = FindPackageShare("mono_depth_ros").perform(context)
    actions = []
    if get("use_fastdds_profile").lower() == "true":
        env = dict(getattr(context, "environment", os.environ))
        actions += [SetEnvironmentVariable(k, v) for k, v in dds_defaults(env).items()]
    lifecycle = get("lifecycle").lower() == "true"
    ns = node_namespace(get("namespace"), get("camera"))
    overrides = node_overrides({n: get(n) for n in ("model", "device", "use_sim_time")},
                               lifecycle=lifecycle, autostart=get("autostart"))
    actions.append(Node(
        package="mono_depth_ros",
        executable="depth_lifecycle_node" if lifecycle else "depth_node",
        name="depth_node", namespace=ns, output="screen", emulate_tty=True,
        # the params file first: an override is added only for an argument given explicitly
        parameters=[get("params_file"), overrides],
        remappings=[("image", "image_raw"), ("image/compressed", "image_raw/compressed")]))
    if get("rviz").lower() == "true":
        with open(os.path.join(share, "config", "depth.rviz")) as f:
            text = rviz_config_for(f.read(), ns)
        fd, path = tempfile.mkstemp(prefix="depth_", suffix=".rviz")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        actions.append(Node(package="rviz2", executable="rviz2", name="rviz2", namespace=ns,
                            output="screen", arguments=["-d", path],
                            parameters=[{k: v for k, v in overrides.items()
                                         if k == "use_sim_time"}]))
    return actions


def generate_launch_description():
    share = FindPackageShare("mono_depth_ros")
    defaults = {"params_file": PathJoinSubstitution([share, "config", "depth.yaml"])}
    return LaunchDescription([
        *[DeclareLaunchArgument(name, default_value=defaults.get(name, default),
                                description=description)
          for name, default, description in ARGUMENTS],
        OpaqueFunction(function=_launch_setup),
    ])
