"""Launch depth_node (and optionally RViz) for one monocular camera.

    ros2 launch mono_depth_ros depth.launch.py camera:=camera rviz:=true
    ros2 launch mono_depth_ros depth.launch.py params_file:=my.yaml lifecycle:=true \
        namespace:=robot1

The node runs in ``<namespace>/<camera>`` and subscribes ``image_raw`` and ``camera_info``
there; it publishes ``depth/image``, ``depth/camera_info``, ``depth/colored`` and ``points``
(plus ``segmentation/*`` for segmentation models) in the same namespace, and ``/diagnostics``.
That namespace is relative: included under a parent's ``PushRosNamespace('robot2')`` the node
is ``/robot2/<namespace>/<camera>/depth_node``; ``namespace:=/robot1`` (leading slash) is
absolute and ignores a pushed namespace, as any absolute namespace in launch_ros does.

Parameters come from ``params_file``; ``model``, ``device`` and ``use_sim_time`` override it only
when given on the command line. A ``params_file`` that does not exist stops the launch before
anything starts (``params_file:=''``: the node's built-in defaults). ``lifecycle:=true`` starts
the managed node, which configures and activates itself with ``autostart:=true`` (else drive it
with ``ros2 lifecycle set``). ``rviz:=true`` needs the rviz2 package: without it the launch
stops with that error before anything starts; the RViz config, moved to the node's namespace, is
written to one fixed file per namespace under ``$ROS_HOME/mono_depth_ros/rviz``.
``use_fastdds_profile:=true`` gives the depth node process (only it, not the other processes of
a parent launch file) the shipped Fast DDS setup, and only when you set no DDS variables
yourself (``FASTDDS_DEFAULT_PROFILES_FILE``, ``FASTDDS_BUILTIN_TRANSPORTS``, another
``RMW_IMPLEMENTATION``); yours always win.
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from mono_depth_ros.core.dds_env import dds_defaults
from mono_depth_ros.tools.launch_support import (LaunchSetupError, check_params_file,
                                                 node_namespace, node_overrides, package_found,
                                                 resolved_namespace, write_rviz_config)

ARGUMENTS = [
    ("camera", "camera",
     "camera namespace: subscribes <namespace>/<camera>/image_raw and camera_info"),
    ("namespace", "", "namespace above the camera's (e.g. the robot's name); under a namespace "
                      "pushed by a parent launch file unless it starts with /"),
    ("params_file", None, "depth_node parameters (YAML with /**: ros__parameters:); must exist "
                          "(empty: the node's built-in defaults)"),
    ("model", "", "registered depth model; empty: the params file's"),
    ("device", "", "auto, cpu, cuda or cuda:N; empty: the params file's"),
    ("use_sim_time", "", "true: follow /clock (bag replays with --clock); empty: the params "
                         "file's (default false)"),
    ("lifecycle", "false", "true: start the managed (lifecycle) node depth_lifecycle_node"),
    ("autostart", "true", "lifecycle node: configure and activate it at start"),
    ("rviz", "false", "also start RViz (needs rviz2) with config/depth.rviz moved to the camera "
                      "namespace"),
    ("use_fastdds_profile", "true",
     "give the node process config/fastdds.xml when no DDS variable is set (never replaces "
     "yours)"),
]


def _launch_setup(context, *args, **kwargs):
    get = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    env = getattr(context, "environment", os.environ)
    # every check first: a launch that fails starts nothing (no orphan node, no file)
    params_file = check_params_file(get("params_file"))
    lifecycle = get("lifecycle").lower() == "true"
    overrides = node_overrides({n: get(n) for n in ("model", "device", "use_sim_time")},
                               lifecycle=lifecycle, autostart=get("autostart"))
    rviz = get("rviz").lower() == "true"
    if rviz and not package_found("rviz2"):
        raise LaunchSetupError("rviz:=true but the rviz2 package is not installed (apt install "
                               "ros-$ROS_DISTRO-rviz2), or launch with rviz:=false; nothing was "
                               "started")
    ns = node_namespace(get("namespace"), get("camera"))  # relative: a pushed namespace composes
    # the DDS setup goes to this process only (its environment), never to the whole launch
    dds = dds_defaults(env) if get("use_fastdds_profile").lower() == "true" else {}
    actions = [Node(
        package="mono_depth_ros",
        executable="depth_lifecycle_node" if lifecycle else "depth_node",
        name="depth_node", namespace=ns, output="screen", emulate_tty=True,
        # the params file first: an override is added only for an argument given explicitly
        # (an empty dict is left out: launch_ros writes every dict to a temporary file)
        parameters=[*([params_file] if params_file else []), *([overrides] if overrides else [])],
        remappings=[("image", "image_raw"), ("image/compressed", "image_raw/compressed")],
        **({"additional_env": dds} if dds else {}))]
    if rviz:
        full_ns = resolved_namespace(context.launch_configurations.get("ros_namespace"), ns)
        share = FindPackageShare("mono_depth_ros").perform(context)
        config = write_rviz_config(os.path.join(share, "config", "depth.rviz"), full_ns, env)
        actions.append(Node(package="rviz2", executable="rviz2", name="rviz2", namespace=ns,
                            output="screen", arguments=["-d", config],
                            parameters=[{"use_sim_time": overrides["use_sim_time"]}]
                            if "use_sim_time" in overrides else []))
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
