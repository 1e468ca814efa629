"""Mixed training sets, focal normalisation with the zoom augmentation, several validation sets
and resuming (``training.trainer``), on a few generated rooms (no real data needed)."""

import csv

import numpy as np
import pytest
import torch

pytest.importorskip("pybullet")

from mono_depth_ros.tools import synth  # noqa: E402
from mono_depth_ros.training.losses import create_loss  # noqa: E402
from mono_depth_ros.training.trainer import (MixedPacks, Pack, TrainConfig, depth_objective,  # noqa: E402
                                             train)

SIZE = (48, 64)


@pytest.fixture(scope="module")
def rooms(tmp_path_factory):
    """Two sets of generated rooms (different seeds, so different focal lengths)."""
    d = tmp_path_factory.mktemp("rooms")
    synth.generate(d / "a", 4, seed=1, width=64, height=48, scene="indoor", sequence_length=2, photos=[])
    synth.generate(d / "b", 2, seed=2, width=64, height=48, scene="indoor", sequence_length=1, photos=[])
    return d


def test_pack_keeps_each_frames_focal_and_the_batch_normalises_depth(rooms):
    from mono_depth_ros.data import open_dataset
    ds = open_dataset(rooms / "a")
    pack = Pack(str(rooms / "a"), SIZE)
    expect = np.array([ds[i].K[0, 0] / ds[i].rgb.shape[1] for i in range(len(ds))])
    np.testing.assert_allclose(pack.fxn, expect)
    assert len(set(np.round(expect, 6))) == 2  # two rooms, two lenses
    rng = np.random.default_rng(0)
    b = pack.batch(np.arange(4), rng, False, ref_focal=0.9)
    np.testing.assert_allclose(b["focal_scale"].numpy(), 0.9 / expect, rtol=1e-6)
    # zoom: fx / W grows by W / (crop width), between 1 and 1 / zoom_min
    z = pack.batch(np.arange(4), rng, True, zoom_min=0.5, zoom_prob=1.0, ref_focal=0.9)
    ratio = z["fx_w"].numpy() / expect
    assert (ratio > 1.0).all() and (ratio <= 2.0 + 1e-9).all()
    np.testing.assert_allclose(z["focal_scale"].numpy(), 0.9 / z["fx_w"].numpy(), rtol=1e-6)


def test_depth_objective_trains_the_canonical_depth():
    from mono_depth_ros.models import create_model
    model = create_model("fastdepth", encoder="mobilenetv2")
    batch = {"rgb": torch.zeros(2, 64, 64, 3, dtype=torch.uint8),
             "depth": torch.full((2, 1, 64, 64), 2.0), "focal_scale": torch.tensor([1.0, 0.5])}
    ones = lambda x: torch.ones(x.shape[0], 1, *x.shape[-2:])  # noqa: E731
    loss = depth_objective(ones, model.spec, batch, torch.device("cpu"), create_loss("l1"))
    # targets 2 m and 1 m against a prediction of 1 m: mean |error| = 0.5
    assert float(loss) == pytest.approx(0.5)
    del batch["focal_scale"]
    assert float(depth_objective(ones, model.spec, batch, torch.device("cpu"), create_loss("l1"))) == \
        pytest.approx(1.0)


def test_mixed_packs_share_and_rank_slices(rooms):
    a, b = Pack(str(rooms / "a"), SIZE), Pack(str(rooms / "b"), SIZE)
    mixed = MixedPacks([a, b], [0.3, 0.7])
    rng = np.random.default_rng(0)
    counts = np.array([mixed.counts(8, rng) for _ in range(2000)])
    assert (counts.sum(1) == 8).all()
    np.testing.assert_allclose(counts.mean(0), [2.4, 5.6], atol=0.05)
    assert list(MixedPacks([a, b]).weights) == pytest.approx([4 / 6, 2 / 6])  # by size
    r0 = MixedPacks([a, b], [0.5, 0.5]).plan(2, 2, 0, np.random.default_rng(5))
    r1 = MixedPacks([a, b], [0.5, 0.5]).plan(2, 2, 1, np.random.default_rng(5))
    for (k0, i0), (k1, i1) in zip(r0, r1):
        assert k0 == k1 and not set(i0) & set(i1)  # each rank its own frames
    batch = mixed.batch(mixed.plan(4, 1, 0, rng), rng, True, rotate_deg=5.0)
    assert batch["rgb"].shape == (4, *SIZE, 3) and batch["depth"].shape == (4, 1, *SIZE)
    with pytest.raises(ValueError):
        MixedPacks([a, b], [1.0])


def test_mixed_run_with_two_val_sets_resumes_with_the_same_schedule(rooms, tmp_path):
    base = dict(model="fastdepth", pretrained=False, model_kwargs={"encoder": "mobilenetv2"},
                train=[str(rooms / "a"), str(rooms / "b")], mix=[0.5, 0.5],
                val=[str(rooms / "a") + "@0:2", str(rooms / "b")], out=str(tmp_path), device="cpu",
                batch_size=2, epoch_steps=1, max_steps=2, loss="silog_image+berhu", focal_norm=True,
                ref_focal=0.9, zoom_min=0.7, photometric=True, num_threads=2)
    train(TrainConfig(**base, epochs=1), progress=False)
    first = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=False)
    assert first["step"] == 1 and first["total_steps"] == 2 and first["spec"]["train_focal"] == 0.9
    for k in ("val0_abs_rel", "val1_abs_rel", "abs_rel"):
        assert np.isfinite(first["metrics"][k])
    assert first["metrics"]["abs_rel"] == pytest.approx(
        (first["metrics"]["val0_abs_rel"] + first["metrics"]["val1_abs_rel"]) / 2)
    train(TrainConfig(**base, epochs=2), resume=str(tmp_path / "last.pt"), progress=False)
    last = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=False)
    assert last["step"] == 2 and last["total_steps"] == 2 and last["epoch"] == 1
    assert last["elapsed_s"] > first["elapsed_s"]
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2] and "val1_delta1" in rows[0]


def test_zoom_needs_focal_normalisation(rooms, tmp_path):
    cfg = TrainConfig(model="fastdepth", pretrained=False, model_kwargs={"encoder": "mobilenetv2"},
                      train=str(rooms / "a"), val=str(rooms / "b"), out=str(tmp_path), device="cpu",
                      max_steps=1, zoom_min=0.7)
    with pytest.raises(ValueError, match="focal_norm"):
        train(cfg, progress=False)
