"""The evaluator: every valid-GT pixel scored, coverage, and the constant baseline beside it."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from mono_depth_ros.tools.evaluate import (Evaluation, evaluate_model, format_table,
                                           parse_baseline, resolve_baseline)


def _samples():
    rng = np.random.default_rng(0)
    out = []
    for i in range(3):
        depth = rng.uniform(1.0, 5.0, (12, 16)).astype(np.float32)
        depth[0, :4] = np.nan  # holes in the ground truth are not scored
        out.append(SimpleNamespace(name=f"f{i}", rgb=np.zeros((12, 16, 3), np.uint8), depth=depth,
                                   K=np.array([[10.0, 0, 7.5], [0, 10.0, 5.5], [0, 0, 1]])))
    return out


class _Model:
    """Predicts the truth x 2 on the left half and nothing (inf, out of its range) on the right."""

    name, checkpoint = "fake", None

    def __init__(self, samples, train_median=None):
        self.truth = {id(s.rgb): s.depth for s in samples}
        self.spec = SimpleNamespace(train_median_depth=train_median)

    def predict(self, rgb, K):
        d = np.nan_to_num(self.truth[id(rgb)], nan=3.0) * 2.0
        d[:, 8:] = np.inf
        return SimpleNamespace(depth=np.where(np.isfinite(d), d, np.nan), unmasked=d)


def test_parse_baseline():
    assert parse_baseline("constant") == ("constant", None)
    assert parse_baseline("constant:2.5") == ("constant", 2.5)
    assert parse_baseline("none") == (None, None)
    for bad in ("mean", "constant:-1", "constant:abc"):
        with pytest.raises(ValueError):
            parse_baseline(bad)


def test_baseline_value_sources():
    s = _samples()
    assert resolve_baseline("constant:2.0", s, 0.1, 10).source == "given"
    b = resolve_baseline("constant", s, 0.1, 10, train_median=1.8)
    assert (b.value, b.source) == (1.8, "median training depth (checkpoint)")
    oracle = resolve_baseline("constant", s, 0.1, 10)
    assert oracle.source.startswith("oracle")
    valid = np.concatenate([x.depth[::4, ::4][np.isfinite(x.depth[::4, ::4])] for x in s])
    assert oracle.value == pytest.approx(float(np.median(valid)))
    assert resolve_baseline("none", s, 0.1, 10) is None


def test_evaluate_model_scores_every_pixel_and_the_baseline(tmp_path):
    samples = _samples()
    summary = evaluate_model(_Model(samples, train_median=3.0), samples, tmp_path, 0.1, 10.0,
                             panels=0, progress=False)
    mean = summary["mean"]
    # left half: x2 -> AbsRel 1; right half: inf -> clipped to 10 m
    gt = np.stack([s.depth for s in samples])
    right = gt[:, :, 8:]
    expected_right = np.nanmean(np.abs(10.0 - right) / right)
    n_left, n_right = np.isfinite(gt[:, :, :8]).sum(), np.isfinite(right).sum()
    assert mean["abs_rel"] == pytest.approx((n_left * 1.0 + n_right * expected_right)
                                            / (n_left + n_right), rel=0.02)
    assert mean["coverage"] == pytest.approx(n_left / (n_left + n_right), rel=0.02)
    base = summary["baseline"]
    assert base["value_m"] == 3.0 and base["source"] == "median training depth (checkpoint)"
    exp_base = np.nanmean(np.abs(3.0 - gt) / gt)
    assert base["mean"]["abs_rel"] == pytest.approx(exp_base, rel=0.02)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["baseline"]["mean"]["abs_rel"] == pytest.approx(base["mean"]["abs_rel"])
    table = format_table(summary)
    assert "constant 3 m (median training depth (checkpoint))" in table and "coverage" in table


def test_no_baseline_when_asked():
    ev = Evaluation("/tmp/_mdr_eval_none", panels=0)
    ev.add("a", np.ones((2, 2), np.float32), np.ones((2, 2), np.float32))
    assert "baseline" not in ev.summary()
