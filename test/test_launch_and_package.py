"""The ROS packaging: launch files, parameter/RViz configs, package.xml, colcon build.

launch / launch_ros cannot be installed without ROS, so the launch files are checked statically
(they parse, declare the documented arguments with descriptions, start executables the package
installs and name files that exist) and run by a stand-in for launch 3.7 / launch_ros 0.28
(``launch_standin.py``) that executes them as ``ros2 launch`` does and records the processes
they would start (namespace after PushRosNamespace, parameters, environment, RViz config),
strict where the real packages are: namespace composition, params files, package look-up,
environment scoping, exceptions as exit code 1. Where launch_ros imports, the description is
built by the real one too.
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
from types import SimpleNamespace

import launch_standin
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


# ---- the launch files run by a stand-in for launch 3.7 / launch_ros 0.28 (test/launch_standin.py),
# ---- which cannot be installed here: it executes them in order and records the processes
@pytest.fixture
def standin(monkeypatch, tmp_path):
    """The stand-in with mono_depth_ros (and, unless ``standin.index`` is changed, rviz2) in the
    ament index; ``standin.run(what, arguments, environment)`` launches. ROS_HOME is a temporary
    folder (where the RViz config goes)."""
    def run(what=LAUNCH, arguments=None, environment=None, index=("mono_depth_ros", "rviz2")):
        launch_standin.install(monkeypatch, index)
        env = {"ROS_HOME": str(tmp_path / "ros_home"), **(environment or {})}
        return launch_standin.launch(what, arguments, env)
    return SimpleNamespace(run=run, ros_home=tmp_path / "ros_home", sl=launch_standin)


def _params(tmp_path, text="/**:\n  ros__parameters:\n    model: fastdepth\n"):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return str(path)


def test_params_file_wins_unless_an_argument_is_given(standin, tmp_path):
    params = _params(tmp_path)
    run = standin.run(arguments={"params_file": params})
    assert run.returncode == 0, run.text
    node, = run.processes
    assert node.parameters == [params]  # nothing on top of the user's file
    assert node.executable == "depth_node" and node.namespace == "/camera"
    assert node.remappings == [("image", "image_raw"), ("image/compressed", "image_raw/compressed")]
    node, = standin.run(arguments={"params_file": params, "model": "scrx_rgb",
                                   "use_sim_time": "true"}).processes
    assert node.parameters == [params, {"model": "scrx_rgb", "use_sim_time": True}]
    node, = standin.run().processes
    assert node.parameters == [str(ROOT / "config" / "depth.yaml")]
    node, = standin.run(arguments={"params_file": ""}).processes  # built-in defaults
    assert node.parameters == []


def test_missing_params_file_stops_the_launch(standin, tmp_path):
    """launch_ros only warns about a params file that is not a file and starts the node on its
    built-in defaults: the launch files refuse it before starting anything."""
    missing = str(tmp_path / "nonexistent.yaml")
    for path in (LAUNCH, MULTI):
        run = standin.run(path, {"params_file": missing})
        assert run.returncode == 1 and run.processes == [], run.text
        assert "Caught exception in launch" in run.text and missing in run.text
        assert "Parameter file path is not a file" not in run.text


def test_lifecycle_namespace_and_rviz_follow_the_arguments(standin):
    run = standin.run(arguments={"lifecycle": "true", "namespace": "robot1", "camera": "front",
                                 "rviz": "true"})
    assert run.returncode == 0, run.text
    node, = run.by_executable("depth_lifecycle_node")
    assert node.namespace == "/robot1/front" and node.name == "depth_node"
    assert node.parameters[1] == {"autostart": True}
    rviz, = run.by_executable("rviz2")
    assert rviz.namespace == "/robot1/front" and rviz.parameters == []
    cfg = Path(rviz.arguments[1])
    assert cfg == standin.ros_home / "mono_depth_ros" / "rviz" / "robot1" / "front" / "depth.rviz"
    topics = _rviz_topics(cfg)
    assert topics == {"/robot1/front/image_raw", "/robot1/front/depth/colored",
                      "/robot1/front/points"}


def _rviz_topics(path):
    cfg = yaml.safe_load(Path(path).read_text())
    return {d["Topic"]["Value"] for d in cfg["Visualization Manager"]["Displays"] if "Topic" in d}


def _include(path=LAUNCH, **arguments):
    sl = launch_standin
    return sl.IncludeLaunchDescription(sl.PythonLaunchDescriptionSource(str(path)),
                                       launch_arguments=arguments.items())


def test_namespace_pushed_by_a_parent_launch_file_composes(standin):
    """GroupAction([PushRosNamespace('robot2'), IncludeLaunchDescription(depth.launch.py,
    camera:=front)]) is /robot2/front/depth_node; an absolute namespace:= ignores the pushed one
    (as launch_ros does); RViz, under the pushed namespace too, shows the composed topics."""
    sl = launch_standin
    parent = sl.LaunchDescription([
        sl.GroupAction([sl.PushRosNamespace("robot2"), _include(camera="front", rviz="true")]),
        sl.GroupAction([sl.PushRosNamespace("robot2"), _include(camera="side",
                                                                namespace="/fixed")]),
        sl.GroupAction([sl.PushRosNamespace("/robot3"), _include(MULTI, cameras="a,b",
                                                                 namespace="arm")]),
        _include(camera="top"),  # outside the groups: the pushed namespaces are gone
    ])
    run = standin.run(parent)
    assert run.returncode == 0, run.text
    assert [p.namespace for p in run.by_executable("depth_node")] == [
        "/robot2/front", "/fixed/side", "/robot3/arm/a", "/robot3/arm/b", "/top"]
    rviz, = run.by_executable("rviz2")
    assert rviz.namespace == "/robot2/front"
    assert _rviz_topics(rviz.arguments[1]) == {
        "/robot2/front/image_raw", "/robot2/front/depth/colored", "/robot2/front/points"}


def test_rviz_without_rviz2_stops_before_anything_starts(standin, tmp_path):
    """rviz:=true where rviz2 is not installed: one clear error, no depth_node left running, no
    config file written."""
    import tempfile
    before = set(Path(tempfile.gettempdir()).glob("depth_*.rviz"))
    run = standin.run(arguments={"rviz": "true"}, index=("mono_depth_ros",))
    assert run.returncode == 1, run.text
    assert run.processes == [], "a process was started by a launch that failed"
    errors = [line for line in run.log if "Caught exception" in line]
    assert len(errors) == 1 and "rviz2" in errors[0] and "rviz:=false" in errors[0], run.text
    assert not standin.ros_home.exists()
    assert set(Path(tempfile.gettempdir()).glob("depth_*.rviz")) == before


def test_rviz_config_is_one_file_per_namespace_not_a_new_temporary_each_launch(standin):
    import tempfile
    before = set(Path(tempfile.gettempdir()).glob("depth_*.rviz"))
    paths = {standin.run(arguments={"rviz": "true", "camera": c}).by_executable("rviz2")[0]
             .arguments[1] for c in ("front", "front", "rear")}
    assert len(paths) == 2
    written = sorted(str(p.relative_to(standin.ros_home / "mono_depth_ros" / "rviz"))
                     for p in standin.ros_home.rglob("*") if p.is_file())
    assert written == ["front/depth.rviz", "rear/depth.rviz"]
    assert set(Path(tempfile.gettempdir()).glob("depth_*.rviz")) == before


def test_dds_profile_goes_to_the_node_process_only(standin):
    """The shipped Fast DDS profile is in the depth node's environment, not the launch's: a
    process a parent launch file starts after including depth.launch.py does not inherit it."""
    sl = launch_standin
    parent = sl.LaunchDescription([
        _include(), sl.Node(package="mono_depth_ros", executable="bag_player", name="player")])
    run = standin.run(parent)
    assert run.returncode == 0, run.text
    shipped = str(ROOT / "config" / "fastdds.xml")
    node, = run.by_executable("depth_node")
    player, = run.by_executable("bag_player")
    assert node.env["FASTDDS_DEFAULT_PROFILES_FILE"] == shipped
    assert "FASTDDS_DEFAULT_PROFILES_FILE" not in player.env
    assert "FASTDDS_DEFAULT_PROFILES_FILE" not in run.environment


def test_launch_never_overrides_a_users_dds_setting(standin):
    def node_env(environment, **given):
        node, = standin.run(arguments=given, environment=environment).by_executable("depth_node")
        return {k: v for k, v in node.env.items() if k.startswith(("FASTDDS", "RMW"))}
    shipped = str(ROOT / "config" / "fastdds.xml")
    assert node_env({}) == {"FASTDDS_DEFAULT_PROFILES_FILE": shipped}
    assert node_env({}, use_fastdds_profile="false") == {}
    for var in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS"):
        assert node_env({var: "x"}) == {var: "x"}
    assert node_env({"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}) == {
        "RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}
    # a parent's SetEnvironmentVariable is the user's choice too
    sl = launch_standin
    run = standin.run(sl.LaunchDescription([
        sl.SetEnvironmentVariable("FASTDDS_BUILTIN_TRANSPORTS", "UDPv4"), _include()]))
    node, = run.by_executable("depth_node")
    assert node.env["FASTDDS_BUILTIN_TRANSPORTS"] == "UDPv4"
    assert "FASTDDS_DEFAULT_PROFILES_FILE" not in node.env


def test_multi_camera_launch_includes_one_node_per_camera(standin):
    run = standin.run(MULTI, {"cameras": "front, rear ,left", "model": "fastdepth",
                              "namespace": "robot1"})
    assert run.returncode == 0, run.text
    nodes = run.by_executable("depth_node")
    assert [n.namespace for n in nodes] == ["/robot1/front", "/robot1/rear", "/robot1/left"]
    for n in nodes:
        assert n.parameters == [str(ROOT / "config" / "depth.yaml"), {"model": "fastdepth"}]
    assert run.by_executable("rviz2") == []


def test_standin_mirrors_launch_ros(standin, tmp_path):
    """The stand-in's own rules, as launch / launch_ros have them: a relative namespace goes under
    the pushed one and an absolute one does not; a params file that is not a file is only warned
    about; SetEnvironmentVariable reaches every later process (scoped by GroupAction),
    additional_env one process; an exception is exit code 1 with the processes started before
    it left running."""
    sl = launch_standin
    run = standin.run(sl.LaunchDescription([
        sl.GroupAction([
            sl.PushRosNamespace("a"), sl.PushRosNamespace("b"),
            sl.SetEnvironmentVariable("SCOPED", "1"),
            sl.Node(package="mono_depth_ros", executable="x", namespace="rel",
                    parameters=[str(tmp_path / "missing.yaml")], additional_env={"ONLY": "1"}),
            sl.Node(package="mono_depth_ros", executable="y", namespace="/abs"),
            sl.Node(package="mono_depth_ros", executable="z")]),
        sl.Node(package="mono_depth_ros", executable="w", namespace=""),
        sl.Node(package="rviz2", executable="rviz2"),
        sl.Node(package="mono_depth_ros", executable="never")]), index=("mono_depth_ros",))
    assert run.returncode == 1
    assert [(p.executable, p.namespace) for p in run.processes] == [
        ("x", "/a/b/rel"), ("y", "/abs"), ("z", "/a/b"), ("w", "/")]
    x, y, z, w = run.processes
    assert x.parameters == [] and "Parameter file path is not a file" in run.text
    assert x.env["ONLY"] == "1" and "ONLY" not in y.env
    assert y.env["SCOPED"] == "1" and "SCOPED" not in w.env
    assert "package 'rviz2' not found" in run.log[-1]


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
    assert node_namespace("", "camera") == "camera"  # relative: a pushed namespace composes
    assert node_namespace("robot1", "front") == "robot1/front"
    assert node_namespace("/robot1/", "front") == "/robot1/front"  # absolute when written so
    assert node_namespace("", "/front") == "/front"
    assert camera_list("[a, b]") == ["a", "b"]
    for bad in ("", "a,a"):
        with pytest.raises(ValueError):
            camera_list(bad)


def test_launch_support_namespace_params_and_rviz_helpers(monkeypatch, tmp_path):
    from mono_depth_ros.tools import launch_support as ls
    sl = launch_standin
    # resolved_namespace is launch_ros's prefix_namespace + make_namespace_absolute
    for pushed, ns in [(None, "camera"), ("/robot2", "front"), ("/robot2", "/abs/x"), ("/", "a"),
                       ("/r", ""), (None, ""), ("/r/", "a/b/")]:
        assert ls.resolved_namespace(pushed, ns) == sl.prefix_namespace(pushed, ns), (pushed, ns)
    assert ls.check_params_file("") is None
    params = _params(tmp_path)
    assert ls.check_params_file(params) == params
    assert ls.check_params_file("mine.yaml", cwd=str(tmp_path)) == params
    with pytest.raises(ls.LaunchSetupError, match="nonexistent.yaml"):
        ls.check_params_file(str(tmp_path / "nonexistent.yaml"))
    with pytest.raises(ls.LaunchSetupError):
        ls.check_params_file(str(tmp_path))  # a folder is not a params file
    assert ls.rviz_config_path("/robot2/front", {"ROS_HOME": "/rh"}) == Path(
        "/rh/mono_depth_ros/rviz/robot2/front/depth.rviz")
    assert ls.rviz_config_path("/", {"HOME": "/home/u"}) == Path(
        "/home/u/.ros/mono_depth_ros/rviz/depth.rviz")
    monkeypatch.setitem(sys.modules, "ament_index_python", None)  # no ROS: nothing is found
    monkeypatch.setitem(sys.modules, "ament_index_python.packages", None)
    assert not ls.package_found("rviz2")
    launch_standin.install(monkeypatch, index=("mono_depth_ros", "rviz2"))
    assert ls.package_found("rviz2") and not ls.package_found("rqt")
