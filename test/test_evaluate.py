"""The evaluator: every valid-GT pixel scored, coverage, and the constant baseline beside it."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from mono_depth_ros.core.metrics import format_appendix_a
from mono_depth_ros.tools.evaluate import (ALIGNED_LABEL, Evaluation, evaluate_bags,
                                           evaluate_model, format_frames, format_table,
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


def test_median_scaled_row_is_scaled(tmp_path):
    """A prediction of exactly 2x the truth: AbsRel 1 and δ1 0 as is, AbsRel 0 and δ1 1 once
    median-scaled (factor 0.5), in the frame's row and in the means."""
    gt = np.random.default_rng(2).uniform(1.0, 4.0, (10, 12)).astype(np.float32)
    ev = Evaluation(tmp_path, 0.1, 10.0, panels=0, baseline=None)
    ev.add("x2", 2.0 * gt, gt)
    row = ev.rows[0]
    assert row["abs_rel"] == pytest.approx(1.0) and row["delta1"] == 0.0
    scaled = row["median_scaled"]
    assert scaled["abs_rel"] == pytest.approx(0.0, abs=1e-6) and scaled["delta1"] == 1.0
    assert scaled["scale"] == pytest.approx(0.5)
    summary = ev.summary()
    assert summary["mean"]["abs_rel"] == pytest.approx(1.0)
    assert summary["mean_median_scaled"]["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert summary["mean_median_scaled"]["delta1"] == 1.0


class _Relative:
    """A relative model: inverse depth of the truth up to scale 3 and shift 0.1."""

    name, checkpoint = "rel", None

    def __init__(self, samples):
        self.truth = {id(s.rgb): s.depth for s in samples}
        self.spec = SimpleNamespace(is_relative=True, output_kind="relative_inverse")

    def predict(self, rgb, K):
        inv = 1.0 / np.nan_to_num(self.truth[id(rgb)], nan=3.0)
        return SimpleNamespace(depth=None, unmasked=None, relative=(inv - 0.1) / 3.0)


def test_relative_model_row_is_labelled_aligned_not_metric(tmp_path):
    samples = _samples()
    summary = evaluate_model(_Relative(samples), samples, tmp_path, 0.1, 10.0, panels=0,
                             progress=False, baseline="constant:3.0")
    assert summary["mean_label"] == ALIGNED_LABEL
    assert summary["mean"]["abs_rel"] == pytest.approx(0.0, abs=1e-4)  # aligned to the answer
    for table in (format_table(summary), format_appendix_a(summary)):
        labels = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
        assert labels[0] == ALIGNED_LABEL and "metric" not in labels, table
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["mean_label"] == ALIGNED_LABEL
    metric = evaluate_model(_Model(samples), samples, tmp_path / "m", 0.1, 10.0, panels=0,
                            progress=False, baseline="none")
    assert metric["mean_label"] == "metric"
    assert format_table(metric).splitlines()[2].startswith("| metric |")
    counts = (metric["frames_expected"], metric["frames_scored"], metric["frames_missing"])
    assert counts == (3, 3, 0)


def test_bag_frames_the_node_did_not_publish_are_counted_missing(tmp_path):
    """Ground truth at 5 stamps, predictions at 3 of them (the node dropped two) and one
    stamp without ground truth: expected 5, scored 3, missing 2 (named), unmatched 1."""
    pytest.importorskip("rosbags")
    from mono_depth_ros.data.bag import IMAGE_TYPE, McapWriter, image_message
    gt = np.random.default_rng(4).uniform(1.0, 4.0, (8, 10)).astype(np.float32)
    stamps = [10**9 * (100 + i) for i in range(5)]
    with McapWriter(tmp_path / "gt") as w:
        for st in stamps:
            w.write("/gt", image_message(gt, "32FC1", st, "cam"), IMAGE_TYPE, st)
    with McapWriter(tmp_path / "pred") as w:
        for st in (stamps[0], stamps[2], stamps[4], stamps[4] + 1):
            w.write("/depth", image_message(gt, "32FC1", st, "cam"), IMAGE_TYPE, st)
    summary = evaluate_bags(tmp_path / "pred", tmp_path / "gt", tmp_path / "eval", "/depth",
                            "/gt", min_depth=0.1, max_depth=10.0, panels=0, baseline="none")
    assert (summary["frames_expected"], summary["frames_scored"],
            summary["frames_missing"]) == (5, 3, 2)
    assert summary["missing_stamps"] == [stamps[1], stamps[3]]
    assert summary["unmatched"] == 1 and summary["frames"] == 3
    assert summary["mean"]["abs_rel"] == 0.0
    line = format_frames(summary)
    assert "expected 5, scored 3, missing 2" in line and "dropped or skipped" in line
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["frames_missing"] == 2 and saved["missing_stamps"] == summary["missing_stamps"]
