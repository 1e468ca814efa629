"""The ROS packaging: launch files, parameter/RViz configs, package.xml, colcon build.

launch / launch_ros cannot be installed without ROS, so the launch files are checked statically
(they parse, declare the documented arguments with descriptions, start executables the package
installs and name files that exist) and run against a minimal stand-in for launch / launch_ros
that records the actions they return (parameters, namespaces, environment, RViz config); where
launch_ros imports, the description is built by the real one too.
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
MULTI = ROOT / "launch" / "multi_camera.launch.py"
DOCUMENTED_ARGS = {"model", "device", "camera", "params_file", "rviz", "use_fastdds_profile",
                   "namespace", "use_sim_time", "lifecycle", "autostart"}


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


def _arguments(path):
    """The ARGUMENTS table of a launch file: ``{name: (default, description)}``."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "ARGUMENTS":
            return {n: (d, desc) for n, d, desc in ast.literal_eval(node.value)}
    raise AssertionError(f"{path.name} has no ARGUMENTS table")


@pytest.mark.parametrize("path", [LAUNCH, MULTI], ids=lambda p: p.name)
def test_launch_files_declare_documented_arguments(path):
    args = _arguments(path)
    assert all(desc for _, desc in args.values())
    assert len(_calls(ast.parse(path.read_text()), "DeclareLaunchArgument")) == 1  # from the table
    wanted = DOCUMENTED_ARGS if path == LAUNCH else (DOCUMENTED_ARGS - {"camera", "rviz"}
                                                     | {"cameras"})
    assert wanted <= set(args)
    # overriding arguments default to empty: the params file wins unless they are given
    for name in ("model", "device", "use_sim_time"):
        assert args[name][0] == "", name


@pytest.mark.parametrize("path", [LAUNCH, MULTI], ids=lambda p: p.name)
def test_launch_files_start_installed_executables_and_existing_files(path):
    tree = ast.parse(path.read_text())
    for n in _calls(tree, "Node"):
        if _kw(n, "package").value == "mono_depth_ros":
            exes = [c.value for c in ast.walk(_kw(n, "executable")) if isinstance(c, ast.Constant)]
            assert exes and set(exes) <= _console_scripts()
    # every PathJoinSubstitution([share, "dir", "file"]) names a file in the package
    for call in _calls(tree, "PathJoinSubstitution"):
        parts = [e.value for e in call.args[0].elts if isinstance(e, ast.Constant)]
        assert (ROOT.joinpath(*parts)).is_file(), parts


# ---- the launch files run against a minimal stand-in for launch / launch_ros, which cannot be
# ---- installed here: the actions they return are recorded, not executed
class _Action:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _Context:
    def __init__(self, arguments, environment):
        self.arguments, self.environment = dict(arguments), dict(environment)


class _LaunchConfiguration:
    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context.arguments[self.name]


class _FindPackageShare:
    def __init__(self, package):
        self.package = package

    def perform(self, context):
        return str(ROOT)


class _PathJoin:
    def __init__(self, parts):
        self.parts = parts

    def perform(self, context):
        return os.path.join(*[p if isinstance(p, str) else p.perform(context) for p in self.parts])


def _stub_modules(monkeypatch):
    import types
    mods = {name: types.ModuleType(name) for name in (
        "launch", "launch.actions", "launch.substitutions", "launch.launch_description_sources",
        "launch_ros", "launch_ros.actions", "launch_ros.substitutions")}
    mods["launch"].LaunchDescription = lambda entities: list(entities)
    for name in ("DeclareLaunchArgument", "OpaqueFunction", "SetEnvironmentVariable",
                 "IncludeLaunchDescription"):
        setattr(mods["launch.actions"], name, type(name, (_Action,), {}))
    mods["launch.substitutions"].LaunchConfiguration = _LaunchConfiguration
    mods["launch.substitutions"].PathJoinSubstitution = _PathJoin
    mods["launch.launch_description_sources"].PythonLaunchDescriptionSource = _Action
    mods["launch_ros.actions"].Node = type("Node", (_Action,), {})
    mods["launch_ros.substitutions"].FindPackageShare = _FindPackageShare
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)


def _run_launch(monkeypatch, path, given=None, environment=None):
    """Declared defaults + ``given`` arguments -> the actions the launch file's setup returns."""
    _stub_modules(monkeypatch)
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    entities = mod.generate_launch_description()
    declared = {e.args[0]: e.kwargs["default_value"] for e in entities
                if type(e).__name__ == "DeclareLaunchArgument"}
    ctx = _Context({}, environment or {})
    ctx.arguments = {k: v if isinstance(v, str) else v.perform(ctx) for k, v in declared.items()}
    ctx.arguments.update(given or {})
    setup = [e for e in entities if type(e).__name__ == "OpaqueFunction"][0].kwargs["function"]
    return setup(ctx)


def _nodes(actions, executable=None):
    return [a for a in actions if type(a).__name__ == "Node"
            and (executable is None or a.kwargs["executable"] == executable)]


def test_params_file_wins_unless_an_argument_is_given(monkeypatch, tmp_path):
    params = str(tmp_path / "mine.yaml")
    node, = _nodes(_run_launch(monkeypatch, LAUNCH, {"params_file": params}))
    assert node.kwargs["parameters"] == [params, {}]  # nothing on top of the user's file
    assert node.kwargs["executable"] == "depth_node"
    assert node.kwargs["namespace"] == "/camera"
    node, = _nodes(_run_launch(monkeypatch, LAUNCH, {"params_file": params, "model": "scrx_rgb",
                                                     "use_sim_time": "true"}))
    assert node.kwargs["parameters"] == [params, {"model": "scrx_rgb", "use_sim_time": True}]
    node, = _nodes(_run_launch(monkeypatch, LAUNCH))
    assert node.kwargs["parameters"][0] == str(ROOT / "config" / "depth.yaml")


def test_lifecycle_namespace_and_rviz_follow_the_arguments(monkeypatch):
    actions = _run_launch(monkeypatch, LAUNCH, {"lifecycle": "true", "namespace": "robot1",
                                                "camera": "front", "rviz": "true"})
    node, = _nodes(actions, "depth_lifecycle_node")
    assert node.kwargs["namespace"] == "/robot1/front"
    assert node.kwargs["parameters"][1] == {"autostart": True}
    rviz, = _nodes(actions, "rviz2")
    cfg = yaml.safe_load(Path(rviz.kwargs["arguments"][1]).read_text())
    topics = {d["Topic"]["Value"] for d in cfg["Visualization Manager"]["Displays"] if "Topic" in d}
    assert topics == {"/robot1/front/image_raw", "/robot1/front/depth/colored",
                      "/robot1/front/points"}
    os.unlink(rviz.kwargs["arguments"][1])


def test_launch_never_overrides_a_users_dds_setting(monkeypatch):
    def env_actions(environment, **given):
        return {a.args[0]: a.args[1] for a in _run_launch(monkeypatch, LAUNCH, given, environment)
                if type(a).__name__ == "SetEnvironmentVariable"}
    shipped = str(ROOT / "config" / "fastdds.xml")
    assert env_actions({}) == {"FASTDDS_DEFAULT_PROFILES_FILE": shipped}
    assert env_actions({}, use_fastdds_profile="false") == {}
    for var in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS"):
        assert env_actions({var: "x"}) == {}
    assert env_actions({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}) == {}


def test_multi_camera_launch_includes_one_node_per_camera(monkeypatch):
    actions = _run_launch(monkeypatch, MULTI, {"cameras": "front, rear ,left",
                                               "model": "fastdepth"})
    cameras = [dict(a.kwargs["launch_arguments"])["camera"] for a in actions]
    assert cameras == ["front", "rear", "left"]
    for a in actions:
        args = dict(a.kwargs["launch_arguments"])
        assert args["model"] == "fastdepth" and args["device"] == "" and args["rviz"] == "false"
        assert a.args[0].args[0].perform(None).endswith("launch/depth.launch.py")


def test_params_yaml_matches_node_parameters():
    from mono_depth_ros.inference.node_config import PARAMETERS  # the scale ones included
    defaults = {n: spec.default for n, spec in PARAMETERS.items()}
    data = yaml.safe_load((ROOT / "config" / "depth.yaml").read_text())
    params = data["/**"]["ros__parameters"]
    assert set(params) == set(defaults)
    for name, value in params.items():
        default = defaults[name]
        assert type(value) is type(default), f"{name}: yaml {value!r} vs node default {default!r}"
        assert value == default, f"{name}: yaml {value!r} vs node default {default!r}"


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


def test_package_xml_format3_ament_python():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3" and root.find("name").text == "mono_depth_ros"
    deps = {e.text for e in root.iter("exec_depend")}
    assert {"rclpy", "sensor_msgs", "std_msgs", "launch", "launch_ros", "cv_bridge",
            "diagnostic_msgs", "lifecycle_msgs", "rosgraph_msgs"} <= deps
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
    if shutil.which("ros2"):  # a real `ros2 launch` parses both files
        for path in (LAUNCH, MULTI):
            res = subprocess.run(["ros2", "launch", str(path), "--show-args"],
                                 capture_output=True, text=True, timeout=60)
            assert res.returncode == 0 and "use_sim_time" in res.stdout, res.stderr


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
    for rel in ("package.xml", "launch/depth.launch.py", "launch/multi_camera.launch.py",
                "config/depth.yaml", "config/depth.rviz", "config/fastdds.xml"):
        assert (share / rel).is_file(), rel
    for model in ROOT.glob("models/*.pt"):
        assert (share / "models" / model.name).is_file()
    index = tmp_path / "install" / "mono_depth_ros" / "share" / "ament_index" / "resource_index"
    assert (index / "packages" / "mono_depth_ros").is_file()
    lib = tmp_path / "install" / "mono_depth_ros" / "lib" / "mono_depth_ros"
    for exe in ("depth_node", "depth_lifecycle_node", "bag_player", "bag_recorder"):
        assert (lib / exe).is_file(), exe


def test_launch_support_helpers():
    from mono_depth_ros.tools.launch_support import camera_list, node_namespace, node_overrides
    assert node_overrides({"model": "", "device": "cpu", "use_sim_time": "False"}) == {
        "device": "cpu", "use_sim_time": False}
    with pytest.raises(ValueError, match="use_sim_time"):
        node_overrides({"use_sim_time": "yes"})
    assert node_namespace("", "camera") == "/camera"
    assert node_namespace("/robot1/", "front") == "/robot1/front"
    assert camera_list("[a, b]") == ["a", "b"]
    for bad in ("", "a,a"):
        with pytest.raises(ValueError):
            camera_list(bad)
