"""Relative (affine-invariant inverse depth) and canonical-inverse-depth outputs: spec
conversions, the per-frame alignment used by ``evaluate``, and the pipeline's relative path."""

from types import SimpleNamespace

import numpy as np
import pytest

from mono_depth_ros.core.pipeline import FramePipeline
from mono_depth_ros.core.relative import align_inverse_depth
from mono_depth_ros.models.spec import ModelSpec, Preprocessing, output_to_metric_depth


def _spec(kind, **kw):
    return ModelSpec(name="x", input_size=(32, 32), output_kind=kind, citation="c", **kw)


def test_canonical_inverse_depth_uses_fx_over_width():
    out = np.full((2, 3), 0.25, np.float32)
    depth = output_to_metric_depth(out, _spec("canonical_inverse_depth"), fx=320.0, width=640)
    np.testing.assert_allclose(depth, 0.5 / 0.25)  # (fx / W) / output
    with pytest.raises(ValueError, match="no metric scale"):
        output_to_metric_depth(out, _spec("relative_inverse"), fx=320.0, width=640)
    assert _spec("relative_inverse").is_relative and not _spec("metric_depth").is_relative


def test_spec_round_trips_through_a_dict_with_its_preprocessing():
    spec = _spec("relative_inverse", preprocessing=Preprocessing(
        resize="keep_aspect", multiple=14, interpolation="bicubic"), weights_licence="MIT")
    back = ModelSpec.from_dict(spec.to_dict())
    assert back == spec and back.preprocessing.multiple == 14
    with pytest.raises(ValueError, match="unknown ModelSpec fields"):
        ModelSpec.from_dict({**spec.to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="resize"):
        Preprocessing(resize="squash")


def test_alignment_recovers_scale_and_shift():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 5.0, (20, 30)).astype(np.float32)
    gt[0, :5] = np.nan
    relative = ((1.0 / gt) - 0.1) / 3.0  # s = 3, t = 0.1
    depth, s, t = align_inverse_depth(relative.astype(np.float32), gt, 0.1, 10.0)
    assert s == pytest.approx(3.0, rel=1e-4) and t == pytest.approx(0.1, abs=1e-4)
    ok = np.isfinite(gt)
    np.testing.assert_allclose(depth[ok], gt[ok], rtol=1e-3)
    empty, s, _ = align_inverse_depth(relative, np.full_like(gt, np.nan), 0.1, 10.0)
    assert np.isnan(empty).all() and np.isnan(s)


def test_pipeline_passes_relative_output_and_builds_no_metric_outputs():
    rel = np.linspace(0, 1, 12 * 16, dtype=np.float32).reshape(12, 16)
    est = SimpleNamespace(palette=None, segmentation_info=lambda key: None,
                          predict=lambda rgb, K: SimpleNamespace(depth=None, labels=None,
                                                                 relative=rel, timings={}))
    res = FramePipeline(est).process(np.zeros((12, 16, 3), np.uint8), np.eye(3) * 10,
                                     ("depth", "colored", "points", "relative"))
    assert res.depth is None and res.points is None and res.colored is None
    assert res.relative is rel


def test_relative_kind_is_the_one_the_scale_source_fits_in_inverse_depth():
    from mono_depth_ros.core.scale import MODE_INVERSE_AFFINE, RELATIVE_INVERSE, fit_mode
    from mono_depth_ros.models.spec import RELATIVE_KINDS
    assert RELATIVE_KINDS == (RELATIVE_INVERSE,) and fit_mode(RELATIVE_KINDS[0]) == MODE_INVERSE_AFFINE


def test_pipeline_scales_a_relative_model_when_it_has_a_scale_source():
    """With a scale source (fixed here) the relative map becomes metres (depth = scale / x) and
    the metric outputs are built; without one only ``relative`` comes out."""
    from mono_depth_ros.core.scale import MetricScaler, ScaleConfig
    rel = np.full((12, 16), 0.5, np.float32)
    est = SimpleNamespace(palette=None, segmentation_info=lambda key: None,
                          spec=SimpleNamespace(output_kind="relative_inverse"),
                          min_depth=0.1, max_depth=10.0,
                          predict=lambda rgb, K: SimpleNamespace(depth=None, labels=None,
                                                                 relative=rel, timings={}))
    rgb, K = np.zeros((12, 16, 3), np.uint8), np.array([[10.0, 0, 8], [0, 10.0, 6], [0, 0, 1]])
    scaled = FramePipeline(est, scaler=MetricScaler(ScaleConfig(source="fixed", fixed_scale=2.0)))
    res = scaled.process(rgb, K, ("depth", "points", "relative"), stamp=0.0)
    np.testing.assert_allclose(res.depth, 2.0 / 0.5)
    assert res.points is not None and res.relative is rel
    plain = FramePipeline(est, scaler=MetricScaler(ScaleConfig(source="none")))
    res = plain.process(rgb, K, ("depth", "points", "relative"), stamp=0.0)
    assert res.depth is None and res.points is None and res.relative is rel
