"""Launch depth_node (and optionally RViz) for one monocular camera.

    ros2 launch mono_depth_ros depth.launch.py camera:=camera model:=fastdepth device:=auto rviz:=true

The node runs in the camera's namespace and subscribes ``<camera>/image_raw`` and
``<camera>/camera_info``; it publishes ``<camera>/depth/image``, ``<camera>/depth/camera_info``,
``<camera>/depth/colored`` and ``<camera>/points`` (plus ``<camera>/segmentation/*`` for
segmentation models).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    share = FindPackageShare("mono_depth_ros")
    model = LaunchConfiguration("model")
    device = LaunchConfiguration("device")
    camera = LaunchConfiguration("camera")
    params_file = LaunchConfiguration("params_file")
    rviz = LaunchConfiguration("rviz")
    use_profile = LaunchConfiguration("use_fastdds_profile")

    return LaunchDescription([
        DeclareLaunchArgument(
            "model", default_value="fastdepth",
            description="registered depth model (mono-depth-ros models lists them)"),
        DeclareLaunchArgument(
            "device", default_value="auto",
            description="auto (CUDA when available, else CPU), cpu, cuda or cuda:N"),
        DeclareLaunchArgument(
            "camera", default_value="camera",
            description="camera namespace: subscribes <camera>/image_raw and <camera>/camera_info"),
        DeclareLaunchArgument(
            "params_file", default_value=PathJoinSubstitution([share, "config", "depth.yaml"]),
            description="depth_node parameters (YAML with /**: ros__parameters:)"),
        DeclareLaunchArgument(
            "rviz", default_value="false",
            description="also start RViz with config/depth.rviz"),
        DeclareLaunchArgument(
            "use_fastdds_profile", default_value="true",
            description="export FASTDDS_DEFAULT_PROFILES_FILE=config/fastdds.xml (large "
                        "best-effort images and clouds are dropped by Fast DDS without it)"),
        SetEnvironmentVariable(
            "FASTDDS_DEFAULT_PROFILES_FILE",
            PathJoinSubstitution([share, "config", "fastdds.xml"]),
            condition=IfCondition(use_profile)),
        Node(
            package="mono_depth_ros", executable="depth_node", name="depth_node",
            namespace=camera, output="screen", emulate_tty=True,
            parameters=[params_file, {"model": model, "device": device}],
            remappings=[("image", "image_raw"), ("image/compressed", "image_raw/compressed")]),
        Node(
            package="rviz2", executable="rviz2", name="rviz2", output="screen",
            arguments=["-d", PathJoinSubstitution([share, "config", "depth.rviz"])],
            condition=IfCondition(rviz)),
    ])
