"""``python3 -m mono_depth_ros COMMAND``: sets up ``.venv`` on first use, then runs the CLI in it."""

import sys

from .bootstrap import in_project_venv, reexec_in_venv

if __name__ == "__main__":
    if not in_project_venv() and sys.argv[1:2] != ["--no-venv"]:
        reexec_in_venv(sys.argv[1:])
    from .cli import main

    main([a for a in sys.argv[1:] if a != "--no-venv"])
