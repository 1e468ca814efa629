"""Launch one depth_node per camera namespace (depth.launch.py once for each).

    ros2 launch mono_depth_ros multi_camera.launch.py cameras:=front,rear namespace:=robot1

Each camera gets ``<namespace>/<camera>/depth_node`` on ``<namespace>/<camera>/image_raw`` and
``camera_info``, with the same params file and overrides; every node reports its own status on
``/diagnostics``. The arguments mean what they mean in depth.launch.py: the namespaces are
relative (a parent's ``PushRosNamespace`` comes in front), a missing ``params_file`` stops the
launch before any node starts, and the Fast DDS setup goes to the depth nodes' processes only.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.substitutions import FindPackageShare

from mono_depth_ros.tools.launch_support import camera_list

#: Passed to depth.launch.py unchanged (empty model / device / use_sim_time: the params file's).
PASSED = ["namespace", "params_file", "model", "device", "use_sim_time", "lifecycle",
          "autostart", "use_fastdds_profile"]
ARGUMENTS = [
    ("cameras", "camera_front,camera_rear", "comma-separated camera namespaces, one node each"),
    ("namespace", "", "namespace above the cameras' (e.g. the robot's name); under a namespace "
                      "pushed by a parent launch file unless it starts with /"),
    ("params_file", None, "depth_node parameters shared by every camera; must exist (empty: "
                          "the node's built-in defaults)"),
    ("model", "", "registered depth model; empty: the params file's"),
    ("device", "", "auto, cpu, cuda or cuda:N; empty: the params file's"),
    ("use_sim_time", "", "true: follow /clock; empty: the params file's"),
    ("lifecycle", "false", "true: managed (lifecycle) nodes"),
    ("autostart", "true", "lifecycle nodes: configure and activate them at start"),
    ("use_fastdds_profile", "true",
     "give the node processes config/fastdds.xml when no DDS variable is set (never replaces "
     "yours)"),
]


def _launch_setup(context, *args, **kwargs):
    single = PathJoinSubstitution([FindPackageShare("mono_depth_ros"), "launch",
                                   "depth.launch.py"])
    passed = {name: LaunchConfiguration(name).perform(context) for name in PASSED}
    return [IncludeLaunchDescription(PythonLaunchDescriptionSource(single),
                                     launch_arguments={**passed, "camera": camera,
                                                       "rviz": "false"}.items())
            for camera in camera_list(LaunchConfiguration("cameras").perform(context))]


def generate_launch_description():
    share = FindPackageShare("mono_depth_ros")
    defaults = {"params_file": PathJoinSubstitution([share, "config", "depth.yaml"])}
    return LaunchDescription([
        *[DeclareLaunchArgument(name, default_value=defaults.get(name, default),
                                description=description)
          for name, default, description in ARGUMENTS],
        OpaqueFunction(function=_launch_setup),
    ])
