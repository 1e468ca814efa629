"""The layout's rules, checked: ROS only in ``ros/``, no import cycles, tools apart.

* Every module outside ``mono_depth_ros/ros/`` imports in a fresh interpreter in which importing
  ROS (``rclpy``, message packages, ``launch*``) fails, and the ROS-free CLI commands print
  their help there.
* Module-level imports between the package's modules form no cycle (read with ``ast``, so a
  lazy import inside a function, the way tools reach optional ROS features, does not count).
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "mono_depth_ros"
#: Top-level names whose import must fail in the ROS-free interpreter.
ROS_MODULES = ("rclpy", "sensor_msgs", "std_msgs", "rcl_interfaces", "diagnostic_msgs",
               "lifecycle_msgs", "geometry_msgs", "builtin_interfaces", "rosidl_runtime_py",
               "tf2_ros", "ament_index_python")

BLOCKER = f"""
import sys
BLOCKED = {ROS_MODULES!r}
class _NoRos:
    def find_spec(self, name, path=None, target=None):
        root = name.split(".")[0]
        if root in BLOCKED or root.startswith("launch"):
            raise ImportError(f"ROS module {{name}} is blocked in this test")
        return None
sys.meta_path.insert(0, _NoRos())
"""


def _modules():
    """Dotted names of every module of the package, with their files."""
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _run(code: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + code], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_blocker_really_blocks_ros():
    res = _run("import rclpy")
    assert res.returncode != 0 and "blocked" in res.stderr


def test_every_module_outside_ros_imports_without_ros():
    names = [n for n in _modules() if not n.startswith("mono_depth_ros.ros") and n != "mono_depth_ros.__main__"]
    code = ("import importlib, json\nfailed = {}\n"
            f"for name in {names!r}:\n"
            "    try:\n        importlib.import_module(name)\n"
            "    except Exception as exc:\n        failed[name] = f'{type(exc).__name__}: {exc}'\n"
            "print(json.dumps(failed))\n")
    res = _run(code)
    assert res.returncode == 0, res.stderr[-3000:]
    failed = json.loads(res.stdout.strip().splitlines()[-1])
    assert failed == {}, failed
    assert len(names) > 40  # the walk really covered the package


def test_ros_modules_exist_and_need_ros():
    """The check above is not vacuous: ros/ modules do import ROS at module level."""
    res = _run("import mono_depth_ros.ros.depth_node")
    assert res.returncode != 0 and "blocked" in res.stderr


@pytest.mark.parametrize("command", ["models", "train", "evaluate", "bench", "synth", "export"])
def test_cli_help_without_ros(command):
    res = _run(f"from mono_depth_ros.tools.cli import main\nmain([{command!r}, '--help'])", timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"usage: mono-depth-ros {command}" in res.stdout


def _module_level_imports(name: str, path: Path, modules) -> set:
    """Package modules imported at module level (not inside functions) by ``name``."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rsplit(".", 1)[0]
    found = set()

    def resolve(level, mod):
        if level == 0:
            return mod
        base = package.split(".")
        base = base[: len(base) - (level - 1)]
        return ".".join(base + ([mod] if mod else []))

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue  # lazy imports inside functions are allowed
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name in modules)
            elif isinstance(child, ast.ImportFrom):
                target = resolve(child.level, child.module)
                for alias in child.names:
                    sub = f"{target}.{alias.name}"
                    if sub in modules:
                        found.add(sub)
                    elif target in modules:
                        found.add(target)
            else:
                visit(child)

    visit(tree)
    found.discard(name)
    return found


def _find_cycle(graph):
    state, stack = {}, []

    def dfs(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                cyc = dfs(m)
                if cyc:
                    return cyc
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            cyc = dfs(n)
            if cyc:
                return cyc
    return None


def test_no_import_cycles():
    modules = _modules()
    graph = {n: _module_level_imports(n, p, modules) for n, p in modules.items()}
    assert sum(len(v) for v in graph.values()) > 50  # the parser sees the imports
    assert _find_cycle(graph) is None, " -> ".join(_find_cycle(graph))


def test_cycle_finder_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_module_level_ros_imports_only_in_ros_folder():
    modules = _modules()
    offenders = []
    for name, path in modules.items():
        if name.startswith("mono_depth_ros.ros"):
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            offenders += [f"{name}: {n}" for n in names
                          if n.split(".")[0] in ROS_MODULES or n.startswith("launch")]
    assert offenders == []


def test_setup_code_is_not_in_the_installed_package(tmp_path):
    """Set-up lives in scripts/ of the checkout; an installed copy of the package (no scripts/,
    no requirements.txt beside it, as in a colcon install) runs the CLI directly."""
    assert not (PKG / "bootstrap.py").exists()
    assert (ROOT / "scripts" / "bootstrap.py").is_file()
    import shutil
    shutil.copytree(PKG, tmp_path / "mono_depth_ros", ignore=shutil.ignore_patterns("__pycache__"))
    res = subprocess.run([sys.executable, "-m", "mono_depth_ros", "models"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "fastdepth" in res.stdout and "creating virtual environment" not in res.stdout + res.stderr


def test_documented_code_layout_matches_the_tree():
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Code layout", 1)[1].split("```", 2)[1]
    listed = {line.split()[0].rstrip("/") for line in section.strip().splitlines()
              if line.startswith("mono_depth_ros/")}
    actual = {f"mono_depth_ros/{d.name}" for d in PKG.iterdir()
              if d.is_dir() and (d / "__init__.py").is_file()}
    assert listed == actual
