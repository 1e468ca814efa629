"""A stand-in for ``launch`` 3.7 / ``launch_ros`` 0.28, which have no wheel (they come with a ROS
install), strict where the launch files' behaviour depends on them.

It *executes* a launch description the way ``ros2 launch`` does, in order, and records the
processes it would start instead of starting them. What it mirrors of the real packages (each
point written from their sources, not from the code under test):

* launch configurations: command-line arguments first, ``DeclareLaunchArgument`` defaults only
  for the missing ones (a missing one without default is an error), ``IncludeLaunchDescription``
  sets its ``launch_arguments`` in the *current* scope (it does not scope), ``GroupAction``
  (``scoped=True``) saves and restores both the launch configurations and the environment;
* ``PushRosNamespace`` sets the ``ros_namespace`` configuration to the pushed namespace under the
  previous one; a ``Node``'s namespace is ``prefix_namespace(ros_namespace, namespace)`` made
  absolute: a relative namespace is appended to the pushed one, an absolute one ignores it;
* a ``Node`` resolves its package in the ament index when it executes (``package 'rviz2' not
  found`` is an exception at that point, after the earlier actions ran); a params file path that
  is not a file only logs ``Parameter file path is not a file: ...`` and is skipped;
* ``SetEnvironmentVariable`` changes the launch's environment, which every later process gets;
  a ``Node``'s ``additional_env`` goes to that process only;
* an exception anywhere: ``Caught exception in launch (see debug for traceback): <message>``
  and exit code 1; processes started before it are *not* stopped (they are in ``processes``).

:func:`install` puts the fake modules (``launch``, ``launch_ros``, ``ament_index_python``) in
``sys.modules`` through pytest's ``monkeypatch``; :func:`launch` runs a file or a description.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
#: Where the fake ament index puts every package (only mono_depth_ros has real files: ROOT).
FAKE_PREFIX = "/opt/ros/standin"


class PackageNotFoundError(KeyError):
    """As ``ament_index_python.packages.PackageNotFoundError`` (a KeyError)."""


class SubstitutionFailure(RuntimeError):
    """As ``launch.substitutions.SubstitutionFailure``."""


def _perform(context, value) -> str:
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "".join(_perform(context, v) for v in value)
    return value.perform(context)


# ---- launch_ros.utilities, written after launch_ros 0.28's namespace_utils
def prefix_namespace(base_ns: Optional[str], ns: Optional[str]) -> Optional[str]:
    if base_ns is None and ns is None:
        return None
    if ns is None:
        combined = base_ns
    elif not base_ns or ns.startswith("/"):
        combined = ns
    else:
        combined = ("" if base_ns == "/" else base_ns) + "/" + ns
    if combined != "/":
        combined = combined.rstrip("/")
    return combined if combined.startswith("/") else "/" + combined


@dataclass
class Process:
    """A process the launch started: what its command line and environment would hold."""
    package: str
    executable: str
    name: Optional[str]
    namespace: str  # absolute, as launch_ros passes it in -r __ns:=
    parameters: list  # params file paths (str) and dicts, files that exist only
    remappings: list
    arguments: list
    env: Dict[str, str]


@dataclass
class LaunchRun:
    returncode: int
    processes: List[Process] = field(default_factory=list)
    log: List[str] = field(default_factory=list)
    environment: Dict[str, str] = field(default_factory=dict)  # the launch's, at the end

    def by_executable(self, executable: str) -> List[Process]:
        return [p for p in self.processes if p.executable == executable]

    @property
    def text(self) -> str:
        return "\n".join(self.log)


class Context:
    """``launch.LaunchContext``: launch configurations, environment, scoping stacks."""

    def __init__(self, arguments, environment, index):
        self.launch_configurations = dict(arguments)
        self.environment = dict(environment)
        self.index = set(index)
        self.processes: List[Process] = []
        self.log: List[str] = []
        self._stack = []

    def push(self):
        self._stack.append((dict(self.launch_configurations), dict(self.environment)))

    def pop(self):
        self.launch_configurations, self.environment = self._stack.pop()


class Entity:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def execute(self, context) -> Optional[list]:  # pragma: no cover - overridden
        raise NotImplementedError


class LaunchDescription(Entity):
    def __init__(self, entities=()):
        super().__init__(list(entities))
        self.entities = list(entities)

    def execute(self, context):
        return self.entities


class DeclareLaunchArgument(Entity):
    def __init__(self, name, default_value=None, description="", **kwargs):
        super().__init__(name, default_value=default_value, description=description, **kwargs)
        self.name, self.default_value = name, default_value

    def execute(self, context):
        if self.name not in context.launch_configurations:
            if self.default_value is None:
                raise RuntimeError(f"Required launch argument '{self.name}' was not provided")
            context.launch_configurations[self.name] = _perform(context, self.default_value)


class SetLaunchConfiguration(Entity):
    def execute(self, context):
        name, value = self.args
        context.launch_configurations[_perform(context, name)] = _perform(context, value)


class _Push(Entity):
    def execute(self, context):
        context.push()


class _Pop(Entity):
    def execute(self, context):
        context.pop()


class GroupAction(Entity):
    def __init__(self, actions, scoped=True, **kwargs):
        super().__init__(actions, scoped=scoped, **kwargs)
        self.actions, self.scoped = list(actions), scoped

    def execute(self, context):
        return [_Push(), *self.actions, _Pop()] if self.scoped else self.actions


class PushRosNamespace(Entity):
    def execute(self, context):
        pushed = _perform(context, self.args[0] if self.args else self.kwargs["namespace"])
        previous = context.launch_configurations.get("ros_namespace")
        context.launch_configurations["ros_namespace"] = prefix_namespace(previous, pushed)


class SetEnvironmentVariable(Entity):
    def execute(self, context):
        name, value = (self.args + (None, None))[:2]
        name = _perform(context, name if name is not None else self.kwargs["name"])
        context.environment[name] = _perform(context, value if value is not None
                                             else self.kwargs["value"])


class OpaqueFunction(Entity):
    def execute(self, context):
        fn = self.kwargs["function"]
        return fn(context, *self.kwargs.get("args", []), **self.kwargs.get("kwargs", {})) or []


class PythonLaunchDescriptionSource(Entity):
    def location(self, context) -> str:
        return _perform(context, self.args[0] if self.args else self.kwargs["launch_file_path"])


class IncludeLaunchDescription(Entity):
    def execute(self, context):
        source = self.args[0] if self.args else self.kwargs["launch_description_source"]
        description = load_description(source.location(context))
        sets = [SetLaunchConfiguration(n, v)
                for n, v in (self.kwargs.get("launch_arguments") or ())]
        return [*sets, description]


class Node(Entity):
    def execute(self, context):
        kw = self.kwargs
        package = _perform(context, kw["package"])
        if package not in context.index:
            raise PackageNotFoundError(
                f"package '{package}' not found, searching: ['{FAKE_PREFIX}']")
        ns = kw.get("namespace")
        ns = None if ns is None else _perform(context, ns)
        namespace = prefix_namespace(context.launch_configurations.get("ros_namespace"), ns) \
            or "/"
        params = []
        for p in kw.get("parameters") or []:
            if isinstance(p, dict):
                params.append(p)
                continue
            path = _perform(context, p)
            if not os.path.isfile(path):
                context.log.append(f"[WARNING] [launch_ros.actions.node]: Parameter file path "
                                   f"is not a file: {path}")
                continue
            params.append(path)
        env = dict(context.environment)
        env.update({_perform(context, k): _perform(context, v)
                    for k, v in (kw.get("additional_env") or {}).items()})
        context.processes.append(Process(
            package=package, executable=_perform(context, kw["executable"]),
            name=_perform(context, kw.get("name")), namespace=namespace, parameters=params,
            remappings=[(_perform(context, a), _perform(context, b))
                        for a, b in kw.get("remappings") or []],
            arguments=[_perform(context, a) for a in kw.get("arguments") or []], env=env))


class LaunchConfiguration:
    def __init__(self, name, default=None):
        self.name, self.default = name, default

    def perform(self, context):
        if self.name in context.launch_configurations:
            return context.launch_configurations[self.name]
        if self.default is not None:
            return _perform(context, self.default)
        raise SubstitutionFailure(f"launch configuration '{self.name}' does not exist")


class FindPackageShare:
    def __init__(self, package):
        self.package = package

    def perform(self, context):
        if self.package not in context.index:
            raise PackageNotFoundError(f"package '{self.package}' not found, searching: "
                                       f"['{FAKE_PREFIX}']")
        return str(ROOT) if self.package == "mono_depth_ros" else \
            f"{FAKE_PREFIX}/share/{self.package}"


class PathJoinSubstitution:
    def __init__(self, parts):
        self.parts = parts

    def perform(self, context):
        return os.path.join(*[_perform(context, p) for p in self.parts])


_INDEX: set = set()


def _get_package_prefix(package):
    if package not in _INDEX:
        raise PackageNotFoundError(f"package '{package}' not found, searching: "
                                   f"['{FAKE_PREFIX}']")
    return str(ROOT) if package == "mono_depth_ros" else FAKE_PREFIX


def install(monkeypatch, index=("mono_depth_ros",)) -> None:
    """Put the fake ``launch``, ``launch_ros`` and ``ament_index_python`` in ``sys.modules``;
    ``index``: the packages the ament index holds."""
    mods = {name: types.ModuleType(name) for name in (
        "launch", "launch.actions", "launch.substitutions", "launch.launch_description_sources",
        "launch_ros", "launch_ros.actions", "launch_ros.substitutions",
        "ament_index_python", "ament_index_python.packages")}
    mods["launch"].LaunchDescription = LaunchDescription
    for cls in (DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable,
                IncludeLaunchDescription, GroupAction, SetLaunchConfiguration):
        setattr(mods["launch.actions"], cls.__name__, cls)
    mods["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    mods["launch.substitutions"].PathJoinSubstitution = PathJoinSubstitution
    mods["launch.substitutions"].SubstitutionFailure = SubstitutionFailure
    mods["launch.launch_description_sources"].PythonLaunchDescriptionSource = \
        PythonLaunchDescriptionSource
    mods["launch_ros.actions"].Node = Node
    mods["launch_ros.actions"].PushRosNamespace = PushRosNamespace
    mods["launch_ros.actions"].PushROSNamespace = PushRosNamespace
    mods["launch_ros.substitutions"].FindPackageShare = FindPackageShare
    mods["ament_index_python.packages"].PackageNotFoundError = PackageNotFoundError
    mods["ament_index_python.packages"].get_package_prefix = _get_package_prefix
    mods["ament_index_python"].packages = mods["ament_index_python.packages"]
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(sys.modules[__name__], "_INDEX", set(index))


def load_description(path) -> LaunchDescription:
    """``generate_launch_description()`` of the Python launch file ``path``."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.generate_launch_description()


def launch(what, arguments=None, environment=None) -> LaunchRun:
    """``ros2 launch`` of ``what`` (a launch file path or a :class:`LaunchDescription`) with the
    command-line ``arguments`` in ``environment``; :func:`install` first."""
    context = Context(arguments or {}, environment or {}, _INDEX)
    todo = [what]
    try:
        while todo:
            entity = todo.pop(0)
            if isinstance(entity, (str, os.PathLike)):
                entity = load_description(entity)
            todo[:0] = entity.execute(context) or []
        code = 0
    except Exception as exc:  # noqa: BLE001 - what LaunchService does with any exception
        context.log.append(f"[ERROR] [launch]: Caught exception in launch (see debug for "
                           f"traceback): {exc}")
        code = 1
    return LaunchRun(code, context.processes, context.log, context.environment)
