"""ament_python package definition (colcon in a ROS 2 workspace, or pip in a venv)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "mono_depth_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml")),
        (f"share/{PACKAGE}/config/onnx", glob("config/onnx/*.yaml")),
        (f"share/{PACKAGE}/models", glob("models/*.pt") + glob("models/*.md")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="mono_depth_ros maintainers",
    maintainer_email="mono-depth-ros@example.com",
    description="Monocular metric depth and point clouds for ROS 2 from selectable depth networks",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "depth_node = mono_depth_ros.ros.depth_node:main",
            "depth_lifecycle_node = mono_depth_ros.ros.depth_node:main_lifecycle",
            "bag_player = mono_depth_ros.ros.bag_player:main",
            "bag_recorder = mono_depth_ros.ros.bag_recorder:main",
            "mono-depth-ros = mono_depth_ros.tools.cli:main",
        ],
    },
)
