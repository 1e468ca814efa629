"""fx is the horizontal focal, fy the vertical one, wherever a focal length is used: the metric
conversion of the network output (host and device paths), the projection of references into
the image and the floor's back-projection. Every camera here has fx != fy, so an fy used where
fx belongs (or the reverse) changes the result. The camera model's binning (binning_x !=
binning_y) and the node's cloud and depth/camera_info are checked in test_camera.py and
test_depth_node_outputs.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mono_depth_ros.core.scale import ground_plane_scale, points_to_sparse_depth
from net_helpers import register_const_model

W, H = 64, 48
FX, FY = 0.75 * W, 1.1 * W  # deliberately different
K = np.array([[FX, 0, W / 2 - 3.0], [0, FY, H / 2 + 2.0], [0, 0, 1]])


@pytest.mark.parametrize("device_path", ["off", "on"])
@pytest.mark.parametrize("kind,raw,expected", [
    # Z = fx * B / (d * W): the stereo baseline over the horizontal disparity
    ("disparity", 0.05, (FX / W) * 0.54 / 0.05),
    # Depth Pro: (fx / W) / output
    ("canonical_inverse_depth", 0.25, (FX / W) / 0.25),
    # learnt at fx / W = 0.5: rescaled by (fx / W) / 0.5
    ("metric_depth", 2.0, 2.0 * (FX / W) / 0.5),
])
def test_metric_conversion_uses_fx(monkeypatch, device_path, kind, raw, expected):
    from mono_depth_ros.inference.estimator import DepthEstimator
    from mono_depth_ros.models.spec import ModelSpec
    spec = ModelSpec(name=f"fxfy_{kind}", input_size=(32, 32), output_kind=kind, citation="test",
                     description="test", depth_range=(0.1, 100.0), train_focal=0.5,
                     rescale_by_focal=True,
                     stereo_baseline=0.54 if kind == "disparity" else None)
    register_const_model(monkeypatch, spec, raw)
    est = DepthEstimator(spec.name, device="cpu", device_path=device_path)
    pred = est.predict(np.zeros((H, W, 3), np.uint8), K)
    np.testing.assert_allclose(pred.unmasked, expected, rtol=1e-5)


def test_reference_points_project_with_fx_on_u_and_fy_on_v():
    pts = np.array([[0.4, -0.3, 2.0], [-0.5, 0.2, 4.0]])
    ref = points_to_sparse_depth(pts, K, (H, W))
    for x, y, z in pts:
        u = int(round(FX * x / z + K[0, 2]))
        v = int(round(FY * y / z + K[1, 2]))
        assert ref[v, u] == pytest.approx(z)
    assert np.isfinite(ref).sum() == len(pts)


def test_floor_back_projects_with_fy_on_rows():
    """A level camera 1.3 m above a floor: depth Z = h * fy / (v - cy) below the horizon. The
    floor fit recovers 1.3 m (scale 1) only when rows are back-projected with fy."""
    h = 1.3
    v = np.arange(H, dtype=np.float64)[:, None] - K[1, 2]
    depth = np.where(v > 0.5, h * FY / np.maximum(v, 1e-9), np.nan) * np.ones((1, W))
    fit, plane = ground_plane_scale(depth.astype(np.float32), K, camera_height=h,
                                    region=0.45, min_support=20)
    assert fit.ok, fit.reason
    assert fit.scale == pytest.approx(1.0, rel=1e-3)
