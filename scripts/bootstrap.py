"""Create the project's virtual environment on first use (standard library only).

``python3 -m mono_depth_ros demo`` and ``python3 -m mono_depth_ros test`` work on a fresh
machine without ROS: they create ``.venv`` in the repository (a venv, since ``pip --target``
breaks the ROS 2 wheels), install the pinned ``requirements.txt`` and the package in editable
mode, then re-run themselves inside it. A marker file holding the requirements' hash makes
later runs skip the install.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
MARKER = VENV / ".mono_depth_ros-requirements.sha256"


def venv_python() -> Path:
    """Path of the venv's interpreter."""
    return VENV / "bin" / "python"


def _requirements_hash() -> str:
    h = hashlib.sha256()
    for name in ("requirements.txt", "requirements-core.txt", "setup.py"):
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def in_project_venv() -> bool:
    """True when running on the project's venv interpreter."""
    return Path(sys.prefix).resolve() == VENV.resolve()


def ensure_venv(quiet: bool = False) -> Path:
    """Create / update ``.venv`` when missing or when requirements changed, and import the
    third-party weights beside the checkout (:func:`import_shared_weights`); returns its python.

    Raises:
        subprocess.CalledProcessError: pip failed (its output says why).
    """
    want = _requirements_hash()
    if venv_python().exists() and MARKER.is_file() and MARKER.read_text() == want:
        import_shared_weights()
        return venv_python()
    if not venv_python().exists():
        print(f"[mono_depth_ros] creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("[mono_depth_ros] installing pinned requirements (first run: a few minutes)", flush=True)
    pip = [str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check"]
    if quiet:
        pip.append("-q")
    subprocess.run(pip + ["-r", str(ROOT / "requirements.txt")], check=True)
    subprocess.run(pip + ["--no-deps", "-e", str(ROOT)], check=True)
    MARKER.write_text(want)
    import_shared_weights()
    return venv_python()


#: Third-party weights beside the checkout that set-up imports (never copied into git).
SHARED_WEIGHTS = ROOT.parent / "shared" / "weights" / "fastdepth-nyu" / "fastdepth_224_float32.onnx"


def import_shared_weights() -> None:
    """Convert ``../shared/weights``' FastDepth NYU network for ``model:=fastdepth_nyu`` when
    that file exists and no import is there yet (``mono-depth-ros import-weights``; a failure
    is reported and set-up goes on: only that model needs it)."""
    from mono_depth_ros.core.paths import imported_weights_dir  # standard library only
    if not SHARED_WEIGHTS.is_file() or (imported_weights_dir() / "fastdepth_nyu.pt").is_file():
        return
    print(f"[mono_depth_ros] importing {SHARED_WEIGHTS} for model fastdepth_nyu", flush=True)
    done = subprocess.run([str(venv_python()), "-m", "mono_depth_ros.tools.cli", "import-weights",
                           str(SHARED_WEIGHTS)], check=False)
    if done.returncode:
        print("[mono_depth_ros] import failed: model fastdepth_nyu will ask for its weights",
              flush=True)


def reexec_in_venv(argv: list) -> None:
    """Ensure the venv and replace this process with ``.venv/bin/python -m mono_depth_ros argv``."""
    py = ensure_venv()
    os.execv(str(py), [str(py), "-m", "mono_depth_ros", *argv])
