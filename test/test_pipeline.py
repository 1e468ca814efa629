"""The ROS-free frame pipeline: every output, the wanted set, settings and buffer ownership."""

from types import SimpleNamespace

import numpy as np
import pytest

from mono_depth_ros.core.pipeline import OUTPUTS, FramePipeline, PipelineConfig

H, W = 12, 16
K = np.array([[20.0, 0, 7.5], [0, 20.0, 5.5], [0, 0, 1]])
CLASSES = ["Miscellaneous", "Sky", "Road", "Sidewalk", "Lanemark"]


class FakeEstimator:
    """Deterministic stand-in for DepthEstimator: depth 2 m (NaN in one corner), labels by row."""

    def __init__(self, segmentation=True):
        self.segmentation = segmentation
        self.palette = [[0, 0, 0], [255, 0, 0], [0, 255, 0]] if segmentation else None

    def segmentation_info(self, key):
        return CLASSES if self.segmentation and key == "classes" else None

    def predict(self, rgb, K):
        depth = np.full(rgb.shape[:2], 2.0, np.float32)
        depth[0, 0] = np.nan
        labels = None
        if self.segmentation:
            labels = np.zeros(rgb.shape[:2], np.uint8)
            labels[: H // 3] = 1   # sky on top
            labels[-H // 3:] = 2   # road at the bottom
        return SimpleNamespace(depth=depth, labels=labels,
                               timings={"preprocess": 0.1, "inference": 0.2, "postprocess": 0.3})


def _rgb():
    return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


def test_every_output_and_timings():
    res = FramePipeline(FakeEstimator()).process(_rgb(), K)
    assert res.depth.shape == (H, W) and res.depth.dtype == np.float32 and np.isnan(res.depth[0, 0])
    assert res.colored.shape == (H, W, 3) and res.colored.dtype == np.uint8
    assert res.points.points.shape == (H, W, 4)
    np.testing.assert_allclose(res.points.points[5, 9, :3], [2.0 * (9 - 7.5) / 20, 2.0 * (5 - 5.5) / 20, 2.0], rtol=1e-6)
    assert res.labels.shape == (H, W) and res.seg_colored.shape == (H, W, 3)
    assert res.seg_colored[0, 0].tolist() == [0, 0, 255]  # RGB palette red, published as BGR
    obs = res.obstacles.points
    assert np.isnan(obs[0, 5, 2]) and np.isnan(obs[-1, 5, 2])  # sky and road excluded
    assert obs[H // 2, 5, 2] == 2.0
    assert set(res.timings) >= {"preprocess", "inference", "postprocess", "colorize", "cloud"}
    assert res.warnings == []


@pytest.mark.parametrize("wanted", [(), ("depth",), ("points",), ("colored", "labels"),
                                    ("obstacles",), ("seg_colored",)])
def test_only_wanted_outputs_are_computed(wanted):
    res = FramePipeline(FakeEstimator()).process(_rgb(), K, wanted)
    for name in OUTPUTS[1:]:
        assert (getattr(res, name) is not None) == (name in wanted), name
    assert res.depth is not None  # always


def test_points_and_obstacles_do_not_share_a_buffer():
    res = FramePipeline(FakeEstimator()).process(_rgb(), K, ("points", "obstacles"))
    assert not np.shares_memory(res.points.points, res.obstacles.points)
    assert res.points.points[0, 5, 2] == 2.0 and np.isnan(res.obstacles.points[0, 5, 2])


def test_model_without_segmentation_gives_no_segmentation_outputs():
    res = FramePipeline(FakeEstimator(segmentation=False)).process(_rgb(), K, OUTPUTS)
    assert res.labels is None and res.seg_colored is None and res.obstacles is None
    assert res.points is not None


def test_configure_decimation_rgb_and_colour_range():
    pipe = FramePipeline(FakeEstimator(), PipelineConfig(cloud_decimation=4, cloud_rgb=False,
                                                         colored_range=(0.0, 4.0)))
    res = pipe.process(_rgb(), K, ("points", "colored"))
    assert res.points.points.shape == (3, 4, 3)
    auto = FramePipeline(FakeEstimator()).process(_rgb(), K, ("colored",)).colored
    assert not np.array_equal(res.colored, auto)  # fixed range colours 2 m differently
    pipe.configure(PipelineConfig(cloud_decimation=1))
    assert pipe.process(_rgb(), K, ("points",)).points.points.shape == (H, W, 4)


def test_unknown_exclude_class_is_a_warning_not_an_error():
    pipe = FramePipeline(FakeEstimator(), PipelineConfig(obstacle_exclude_classes=("Sky", "Tree")))
    res = pipe.process(_rgb(), K, ("obstacles",))
    assert [r for r, _ in res.warnings] == ["unknown_class"] and "Tree" in res.warnings[0][1]
    assert np.isnan(res.obstacles.points[0, 5, 2]) and res.obstacles.points[-1, 5, 2] == 2.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown outputs"):
        FramePipeline(FakeEstimator()).process(_rgb(), K, ("depth", "normals"))
    with pytest.raises(ValueError, match="cloud_decimation"):
        PipelineConfig(cloud_decimation=0)


def test_real_estimator_through_the_pipeline():
    from mono_depth_ros.inference.estimator import DepthEstimator
    est = DepthEstimator("fastdepth", device="cpu")
    rgb = np.random.default_rng(1).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    K2 = np.array([[110.0, 0, 64.0], [0, 110.0, 48.0], [0, 0, 1]])
    res = FramePipeline(est).process(rgb, K2, ("depth", "points"))
    valid = np.isfinite(res.depth)
    assert valid.any()
    assert np.all((res.depth[valid] >= est.min_depth) & (res.depth[valid] <= est.max_depth))
    np.testing.assert_array_equal(res.points.points[..., 2][valid], res.depth[valid])


class _Scaler:
    """Records the depth it was given and returns it unscaled (ScaledDepth-like)."""

    def __call__(self, depth, K, t, kind, reference, valid_range):
        self.seen = depth.copy()
        return SimpleNamespace(depth=depth * 2.0, state=SimpleNamespace(status="fitted"),
                               warnings=[])


def _valid_mask():
    valid = np.ones((H, W), bool)
    valid[:2, :] = valid[:, :3] = False  # the border rectification filled with black
    return valid


def test_pixels_without_image_content_are_nan_in_every_output():
    """Rectification's black fill (valid False) is never published as depth: NaN in the depth,
    the clouds and the relative output, and the scaler never fits on it."""
    valid = _valid_mask()
    scaler = _Scaler()
    res = FramePipeline(FakeEstimator(), scaler=scaler).process(_rgb(), K, OUTPUTS, valid=valid)
    assert np.isnan(res.depth[~valid]).all() and (res.depth[valid] == 4.0).all()
    assert np.isnan(scaler.seen[~valid]).all()
    for cloud in (res.points.points, res.obstacles.points):
        assert np.isnan(cloud[~valid][:, :3]).all()
    assert (res.points.points[valid][:, 2] == 4.0).all()
    rel = FramePipeline(_RelativeEstimator()).process(_rgb(), K, OUTPUTS, valid=valid).relative
    assert np.isnan(rel[~valid]).all() and (rel[valid] == 0.5).all()
    with pytest.raises(ValueError, match="valid mask"):
        FramePipeline(FakeEstimator()).process(_rgb(), K, valid=valid[1:])


class _RelativeEstimator(FakeEstimator):
    def predict(self, rgb, K):
        return SimpleNamespace(depth=None, labels=None, relative=np.full(rgb.shape[:2], 0.5,
                                                                          np.float32), timings={})


class _DeviceCloudEstimator(FakeEstimator):
    """Builds the cloud itself (the device path): xyz of depth 2 m, every pixel finite."""

    builds_clouds = True

    def predict(self, rgb, K, cloud_decimation=1, cloud_rgb=True):
        pred = super().predict(rgb, K)
        d = cloud_decimation
        pred.points = np.full((-(-H // d), -(-W // d), 4), 2.0, np.float32)
        return pred


@pytest.mark.parametrize("decimation", [1, 2])
def test_device_cloud_is_masked_like_the_depth(decimation):
    valid = _valid_mask()
    pipe = FramePipeline(_DeviceCloudEstimator(), PipelineConfig(cloud_decimation=decimation))
    res = pipe.process(_rgb(), K, ("depth", "points"), valid=valid)
    pts = res.points.points
    assert np.isnan(pts[~valid[::decimation, ::decimation]][:, :3]).all()
    assert (pts[valid[::decimation, ::decimation]][:, 2] == 2.0).all()
