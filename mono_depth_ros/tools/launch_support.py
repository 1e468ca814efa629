"""What the launch files compute, without ROS (launch_ros cannot be installed here, so this is
the part the tests run).

* :func:`node_overrides`: parameters a launch argument sets *only when it was given*; an empty
  argument leaves the value of the user's params file (which the node reads first) alone.
* :func:`node_namespace`: ``<namespace>/<camera>``, relative, so that a namespace pushed by a
  parent launch file (``PushRosNamespace``) comes in front; :func:`resolved_namespace` is what
  launch_ros makes of it.
* :func:`check_params_file`: a params file that does not exist stops the launch (launch_ros
  itself only warns and starts the node on its built-in defaults).
* :func:`package_found`: whether ``ros2 launch`` can start an executable of a package (rviz2).
* :func:`rviz_config_for` / :func:`write_rviz_config`: ``config/depth.rviz`` with its
  ``/camera`` topics moved to the camera's namespace, written to one fixed file per namespace
  (:func:`rviz_config_path`), so repeated launches leave no temporary files behind.
* :func:`camera_list`: the cameras of ``multi_camera.launch.py``.

:class:`LaunchSetupError` is what the launch files raise for a launch that must not start:
``ros2 launch`` prints ``Caught exception in launch ...: <message>`` and exits 1, before any
process of that launch file has started.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional

import yaml


class LaunchSetupError(RuntimeError):
    """A launch argument that makes the launch fail before anything starts (the message says
    which argument and what to do)."""


#: Launch argument -> parameter type (launch arguments are strings).
OVERRIDABLE = {"model": str, "device": str, "use_sim_time": bool}


def _as(kind, name: str, text: str):
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError(f"launch argument {name} must be true or false, got {text!r}")
        return text.lower() == "true"
    return kind(text)


def node_overrides(args: Mapping[str, str], lifecycle: bool = False,
                   autostart: str = "true") -> Dict[str, object]:
    """Parameter overrides from launch arguments: only the non-empty ones of
    :data:`OVERRIDABLE`, typed; with ``lifecycle`` also ``autostart``.

    Raises:
        ValueError: a boolean argument that is not true/false.
    """
    out = {name: _as(kind, name, args[name]) for name, kind in OVERRIDABLE.items()
           if args.get(name, "") != ""}
    if lifecycle:
        out["autostart"] = _as(bool, "autostart", autostart)
    return out


def node_namespace(namespace: str, camera: str) -> str:
    """The node's namespace ``<namespace>/<camera>`` without empty parts.

    Relative (``"robot1", "front"`` -> ``robot1/front``) so that a namespace pushed by a parent
    launch file is put in front of it (``/robot2/robot1/front``); absolute only when the user
    writes it so (``namespace:=/robot1`` -> ``/robot1/front``), which, as everywhere in
    launch_ros, ignores a pushed namespace. An empty result means "the pushed namespace, or /".
    """
    parts = [p for p in (*namespace.split("/"), *camera.split("/")) if p]
    absolute = (namespace if namespace.strip("/") else camera).startswith("/")
    return ("/" if absolute else "") + "/".join(parts)


def resolved_namespace(pushed: Optional[str], namespace: str) -> str:
    """The absolute namespace launch_ros gives a node with ``namespace`` under the pushed
    ``ros_namespace`` launch configuration ``pushed`` (None: nothing pushed): ``namespace``
    itself when absolute, else ``pushed/namespace`` (``launch_ros.utilities.prefix_namespace``
    then ``make_namespace_absolute``)."""
    if namespace.startswith("/") or not pushed:
        combined = namespace
    else:
        combined = ("" if pushed == "/" else pushed) + "/" + namespace
    if combined != "/":
        combined = combined.rstrip("/")
    return combined if combined.startswith("/") else "/" + combined


def check_params_file(path: str, cwd: Optional[str] = None) -> Optional[str]:
    """The absolute path of the params file to give the node; None for an empty argument
    (``params_file:=''``: the node's built-in defaults).

    Raises:
        LaunchSetupError: ``path`` is not an existing file (launch_ros would only warn and start
            the node without it).
    """
    if not path:
        return None
    full = os.path.abspath(os.path.join(cwd or os.getcwd(), os.path.expanduser(path)))
    if not os.path.isfile(full):
        raise LaunchSetupError(
            f"params_file {path!r} is not a file{'' if full == path else f' ({full})'}: give an "
            "existing YAML file (/**: ros__parameters: ...), or params_file:='' for the node's "
            "built-in defaults; nothing was started")
    return full


def package_found(package: str) -> bool:
    """Whether ``package`` is in the ament index, where ``ros2 launch`` looks up the executable
    of a ``Node`` action (False also without ament_index_python, i.e. without ROS)."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    except ImportError:
        return False
    try:
        get_package_prefix(package)
    except (PackageNotFoundError, ValueError):
        return False
    return True


def camera_list(text: str) -> List[str]:
    """Camera namespaces from ``"front, rear"`` or ``"[front, rear]"``.

    Raises:
        ValueError: no camera, or a camera named twice.
    """
    names = [c.strip() for c in text.strip().strip("[]").split(",") if c.strip()]
    if not names:
        raise ValueError("cameras must name at least one camera namespace")
    if len(set(names)) != len(names):
        raise ValueError(f"a camera is named twice in {names}")
    return names


def rviz_config_for(template: str, namespace: str, old: str = "/camera",
                    fixed_frame: Optional[str] = None) -> str:
    """RViz config text ``template`` with every display topic under ``old`` moved to
    ``namespace`` (and the fixed frame replaced when ``fixed_frame`` is given)."""
    cfg = yaml.safe_load(template)
    vm = cfg["Visualization Manager"]
    for display in vm.get("Displays", []):
        topic = display.get("Topic")
        if isinstance(topic, dict) and str(topic.get("Value", "")).startswith(old + "/"):
            topic["Value"] = namespace.rstrip("/") + topic["Value"][len(old):]
    if fixed_frame:
        vm["Global Options"]["Fixed Frame"] = fixed_frame
    return yaml.safe_dump(cfg, sort_keys=False)


def rviz_config_path(namespace: str, environ: Optional[Mapping[str, str]] = None) -> Path:
    """Where the RViz config of the absolute ``namespace`` is written: one fixed file per
    namespace, ``$ROS_HOME/mono_depth_ros/rviz/<namespace>/depth.rviz`` (``~/.ros`` without
    ROS_HOME, the system temporary folder when there is no home), overwritten by every launch."""
    env = os.environ if environ is None else environ
    home = env.get("ROS_HOME") or (os.path.join(env["HOME"], ".ros") if env.get("HOME")
                                   else os.path.join(tempfile.gettempdir(), "ros"))
    return Path(home, "mono_depth_ros", "rviz", *[p for p in namespace.split("/") if p],
                "depth.rviz")


def write_rviz_config(template_path: str, namespace: str,
                      environ: Optional[Mapping[str, str]] = None) -> str:
    """Write :func:`rviz_config_for` of ``template_path`` for the absolute ``namespace`` to
    :func:`rviz_config_path` (replaced atomically: a running RViz never reads half a file);
    returns the path."""
    with open(template_path) as f:
        text = rviz_config_for(f.read(), namespace)
    path = rviz_config_path(namespace, environ)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return str(path)
