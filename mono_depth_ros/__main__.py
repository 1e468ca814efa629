"""``python3 -m mono_depth_ros COMMAND``: the CLI, after setting up ``.venv`` in a source checkout.

Set-up is not part of the installed package: in a source checkout (``scripts/bootstrap.py``
and ``requirements.txt`` beside the package) the first run creates ``.venv`` and re-runs itself
there; in an installed package (colcon, pip) the CLI runs in the current interpreter, and a
missing dependency is reported with how to install it.
"""

import importlib.util
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
BOOTSTRAP = CHECKOUT / "scripts" / "bootstrap.py"


def _bootstrap_module():
    """``scripts/bootstrap.py`` of the source checkout, or None in an installed package."""
    if not (BOOTSTRAP.is_file() and (CHECKOUT / "requirements.txt").is_file()):
        return None
    spec = importlib.util.spec_from_file_location("mono_depth_ros_bootstrap", BOOTSTRAP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv) -> None:
    """Set up (checkout only) and run ``mono-depth-ros argv``."""
    no_venv = "--no-venv" in argv
    argv = [a for a in argv if a != "--no-venv"]
    boot = None if no_venv else _bootstrap_module()
    if boot is not None and not boot.in_project_venv():
        boot.reexec_in_venv(argv)
    try:
        from .tools.cli import main as cli_main
    except ImportError as exc:
        sys.exit(f"mono_depth_ros: {exc}. Set-up (.venv with every requirement) runs from a "
                 "source checkout: `python3 -m mono_depth_ros test` there. In a ROS 2 workspace "
                 "install the Python requirements with `pip install -r requirements-core.txt`.")
    cli_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
