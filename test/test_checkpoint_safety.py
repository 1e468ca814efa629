"""Checkpoints are data, not code: a crafted pickle is refused without running, shipped files
load with ``weights_only=True``."""

from pathlib import Path

import pytest
import torch

from mono_depth_ros.inference.estimator import DepthEstimator
from mono_depth_ros.models import create_model, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


class _Payload:
    """Unpickling this calls ``open(marker, "w")``: the side effect shows whether code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _crafted(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    # a valid-looking checkpoint whose spec entry executes code when unpickled
    torch.save({"model": "fastdepth", "state_dict": {}, "spec": _Payload(marker)}, path)
    return path, marker


def test_the_payload_really_runs_code_when_unpickled_unsafely(tmp_path):
    path, marker = _crafted(tmp_path)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_crafted_pickle_is_refused_without_running(tmp_path):
    path, marker = _crafted(tmp_path)
    with pytest.raises(ValueError, match="refused"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match="refused"):
        create_model("fastdepth", checkpoint=path)
    with pytest.raises(ValueError, match="refused"):
        DepthEstimator("fastdepth", checkpoint=str(path), device="cpu")
    assert not marker.exists()


def test_garbage_and_wrong_type_files_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="refused"):
        load_checkpoint(junk)
    lst = tmp_path / "list.pt"
    torch.save([1, 2, 3], lst)
    with pytest.raises(ValueError, match="not a dict"):
        load_checkpoint(lst)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "models").glob("*.pt")))
def test_shipped_weights_are_plain_data(name):
    ck = torch.load(ROOT / "models" / name, map_location="cpu", weights_only=True)
    assert isinstance(ck["model"], str) and isinstance(ck["spec"], dict)
    assert all(isinstance(v, torch.Tensor) for v in ck["state_dict"].values())


def test_pickle_module_is_not_used_by_the_package():
    """No module of the package unpickles arbitrary data."""
    pkg = ROOT / "mono_depth_ros"
    offenders = [str(p.relative_to(ROOT)) for p in pkg.rglob("*.py")
                 if "pickle.load" in p.read_text() or "weights_only=False" in p.read_text()]
    assert offenders == []
