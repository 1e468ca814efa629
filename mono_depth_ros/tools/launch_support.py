"""What the launch files compute, without ROS (launch_ros cannot be installed here, so this is
the part the tests run).

* :func:`node_overrides`: parameters a launch argument sets *only when it was given*; an empty
  argument leaves the value of the user's params file (which the node reads first) alone.
* :func:`node_namespace`: ``<namespace>/<camera>``.
* :func:`rviz_config_for`: ``config/depth.rviz`` with its ``/camera`` topics moved to the
  camera's namespace.
* :func:`camera_list`: the cameras of ``multi_camera.launch.py``.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional

import yaml

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
    """``/<namespace>/<camera>`` without empty parts (``""`` + ``camera`` -> ``/camera``)."""
    parts = [p for p in (*namespace.split("/"), *camera.split("/")) if p]
    return "/" + "/".join(parts)


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
