"""core/malloc_tuning.py: glibc thresholds for frame-sized buffers."""

import pytest


def test_keep_large_buffers_sets_glibc_thresholds_unless_the_user_did(monkeypatch):
    """core/malloc_tuning: on glibc both mallopt calls succeed; a user's MALLOC_* variable wins."""
    import ctypes.util

    from mono_depth_ros.core import malloc_tuning
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert malloc_tuning.keep_large_buffers() is False
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    if ctypes.util.find_library("c") is None:
        pytest.skip("no C library found")
    assert malloc_tuning.keep_large_buffers() is True
