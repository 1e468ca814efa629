"""The ROS packaging: launch file, parameter/RViz/Fast DDS configs, package.xml, colcon build.

launch / launch_ros cannot be installed without ROS, so the launch file is checked statically
(it parses, declares the documented arguments with descriptions, starts executables the package
installs and names files that exist); where launch_ros imports, the description is built too.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "depth.launch.py"
DOCUMENTED_ARGS = {"model", "device", "camera", "params_file", "rviz", "use_fastdds_profile"}


def _calls(tree, name):
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call)
            and getattr(n.func, "id", getattr(n.func, "attr", None)) == name]


def _kw(call, key):
    for k in call.keywords:
        if k.arg == key:
            return k.value
    return None


def _console_scripts():
    tree = ast.parse((ROOT / "setup.py").read_text())
    scripts = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and " = " in node.value:
            scripts.add(node.value.split(" = ")[0].strip())
    return scripts


def test_launch_file_declares_documented_arguments():
    tree = ast.parse(LAUNCH.read_text())
    declared = {}
    for call in _calls(tree, "DeclareLaunchArgument"):
        name = call.args[0].value
        desc = _kw(call, "description")
        assert desc is not None, f"argument {name} has no description"
        declared[name] = call
    assert DOCUMENTED_ARGS <= set(declared)


def test_launch_file_starts_installed_executables_and_existing_files():
    tree = ast.parse(LAUNCH.read_text())
    nodes = _calls(tree, "Node")
    ours = [n for n in nodes if _kw(n, "package").value == "mono_depth_ros"]
    assert ours, "launch file starts no mono_depth_ros node"
    for n in ours:
        assert _kw(n, "executable").value in _console_scripts()
    # every PathJoinSubstitution([share, "dir", "file"]) names a file in the package
    for call in _calls(tree, "PathJoinSubstitution"):
        parts = [e.value for e in call.args[0].elts if isinstance(e, ast.Constant)]
        assert (ROOT.joinpath(*parts)).is_file(), parts


def test_params_yaml_matches_node_parameters():
    from mono_depth_ros.ros.depth_node import PARAMETERS
    from mono_depth_ros.ros.scale_source import SCALE_PARAMETERS
    everything = {**PARAMETERS, **SCALE_PARAMETERS}
    data = yaml.safe_load((ROOT / "config" / "depth.yaml").read_text())
    params = data["/**"]["ros__parameters"]
    assert set(params) == set(everything)
    for name, value in params.items():
        default = everything[name][0]
        assert type(value) is type(default), f"{name}: yaml {value!r} vs node default {default!r}"


def test_rviz_config_shows_input_depth_and_cloud():
    cfg = yaml.safe_load((ROOT / "config" / "depth.rviz").read_text())
    vm = cfg["Visualization Manager"]
    assert vm["Global Options"]["Fixed Frame"] == "camera_optical_frame"
    by_topic = {d["Topic"]["Value"]: d for d in vm["Displays"] if "Topic" in d}
    assert by_topic["/camera/image_raw"]["Class"] == "rviz_default_plugins/Image"
    assert by_topic["/camera/depth/colored"]["Class"] == "rviz_default_plugins/Image"
    cloud = by_topic["/camera/points"]
    assert cloud["Class"] == "rviz_default_plugins/PointCloud2"
    assert cloud["Topic"]["Reliability Policy"] == "Best Effort"


def test_fastdds_profile_raises_shared_memory_segment():
    ns = {"d": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}
    root = ET.parse(ROOT / "config" / "fastdds.xml").getroot()
    shm = [t for t in root.iterfind(".//d:transport_descriptor", ns)
           if t.find("d:type", ns).text == "SHM"]
    assert shm and int(shm[0].find("d:segment_size", ns).text) >= 16 * 1024 * 1024
    participant = root.find(".//d:participant", ns)
    assert participant.get("is_default_profile") == "true"


def test_package_xml_format3_ament_python():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3" and root.find("name").text == "mono_depth_ros"
    deps = {e.text for e in root.iter("exec_depend")}
    assert {"rclpy", "sensor_msgs", "std_msgs", "launch", "launch_ros", "cv_bridge"} <= deps
    assert root.find("export/build_type").text == "ament_python"
    assert (ROOT / "resource" / "mono_depth_ros").is_file()


@pytest.mark.skipif(importlib.util.find_spec("launch_ros") is None,
                    reason="launch_ros is not installable without a ROS install")
def test_launch_description_builds():  # pragma: no cover - runs only on ROS machines
    spec = importlib.util.spec_from_file_location("depth_launch", LAUNCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ld = mod.generate_launch_description()
    names = {a.name for a in ld.get_launch_arguments()}
    assert DOCUMENTED_ARGS <= names


@pytest.mark.skipif(shutil.which("colcon", path=os.path.dirname(sys.executable)) is None,
                    reason="colcon not installed in this environment")
def test_colcon_build_installs_share_files(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mono_depth_ros").symlink_to(ROOT)
    colcon = shutil.which("colcon", path=os.path.dirname(sys.executable))
    res = subprocess.run([colcon, "build", "--packages-select", "mono_depth_ros",
                          "--build-base", str(tmp_path / "build"),
                          "--install-base", str(tmp_path / "install")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "COLCON_LOG_PATH": str(tmp_path / "log")})
    assert res.returncode == 0, res.stdout + res.stderr
    share = tmp_path / "install" / "mono_depth_ros" / "share" / "mono_depth_ros"
    for rel in ("package.xml", "launch/depth.launch.py", "config/depth.yaml", "config/depth.rviz",
                "config/fastdds.xml"):
        assert (share / rel).is_file(), rel
    for model in ROOT.glob("models/*.pt"):
        assert (share / "models" / model.name).is_file()
    index = tmp_path / "install" / "mono_depth_ros" / "share" / "ament_index" / "resource_index"
    assert (index / "packages" / "mono_depth_ros").is_file()
    lib = tmp_path / "install" / "mono_depth_ros" / "lib" / "mono_depth_ros"
    for exe in ("depth_node", "bag_player", "bag_recorder"):
        assert (lib / exe).is_file(), exe
