"""Joint geometric augmentations (mono_depth_ros.data.augment): K, depth, labels and the stereo
partner stay consistent with the pixels."""

import dataclasses

import numpy as np
import pytest

from mono_depth_ros.data import AugmentConfig, JointAugment, Sample, SevenScenes
from mono_depth_ros.data.augment import IGNORE_LABEL, adjust_brightness, crop, hflip, rotate, rotation_matrix

H, W = 48, 64


def _sample(stereo=False, seed=0, cx=(W - 1) / 2, cy=(H - 1) / 2) -> Sample:
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:H, 0:W]
    depth = (1.0 + 0.01 * u + 0.02 * v).astype(np.float32)
    depth[5, 7] = np.nan
    pose = np.eye(4)
    pose[:3, 3] = [1.0, 2.0, 3.0]
    return Sample(rgb=rng.integers(0, 256, (H, W, 3), dtype=np.uint8), depth=depth,
                  K=np.array([[60.0, 0.0, cx], [0.0, 55.0, cy], [0.0, 0.0, 1.0]]), stamp_ns=7, name="s",
                  pose=pose, labels=rng.integers(0, 14, (H, W), dtype=np.uint8),
                  rgb_right=rng.integers(0, 256, (H, W, 3), dtype=np.uint8) if stereo else None,
                  baseline=0.54 if stereo else None)


def _project(K, X):
    p = K @ X
    return p[:2] / p[2]


def _assert_same(a: Sample, b: Sample):
    for f in dataclasses.fields(Sample):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if f.name in ("K", "pose") and x is not None and y is not None:
                np.testing.assert_allclose(x, y, rtol=0, atol=1e-12, err_msg=f.name)  # cx round trip
            else:
                np.testing.assert_array_equal(x, y, err_msg=f.name)
        else:
            assert x == y, f.name


# --------------------------------------------------------------------------- flip

def test_flip_twice_is_identity():
    s = _sample(cx=30.2, cy=20.0)
    f = hflip(s)
    assert not np.array_equal(f.rgb, s.rgb)
    np.testing.assert_array_equal(f.rgb[:, 0], s.rgb[:, -1])
    np.testing.assert_array_equal(f.depth[:, ::-1], s.depth)
    assert f.K[0, 2] == pytest.approx(W - 1 - 30.2) and f.K[1, 2] == 20.0
    _assert_same(hflip(f), s)


def test_flip_k_projects_the_mirrored_point_onto_the_same_content():
    s = _sample(cx=30.2)
    f = hflip(s)
    u, v = 10, 17
    z = s.depth[v, u]
    X = z * np.linalg.inv(s.K) @ [u, v, 1.0]
    uf, vf = _project(f.K, X * [-1, 1, 1])  # the mirrored world
    assert (uf, vf) == pytest.approx((W - 1 - u, v))
    assert f.depth[int(round(vf)), int(round(uf))] == z
    np.testing.assert_array_equal(f.rgb[v, W - 1 - u], s.rgb[v, u])
    # the mirrored pose maps the flipped camera's point to the same world point
    np.testing.assert_allclose(f.pose @ np.r_[X * [-1, 1, 1], 1], s.pose @ np.r_[X, 1])


def test_stereo_flip_swaps_left_and_right():
    s = _sample(stereo=True)
    f = hflip(s)  # default "swap" (Godard et al.)
    np.testing.assert_array_equal(f.rgb, s.rgb_right[:, ::-1])
    np.testing.assert_array_equal(f.rgb_right, s.rgb[:, ::-1])
    assert f.baseline == s.baseline  # the partner is still to the right
    assert f.depth is None and f.labels is None and f.pose is None  # they belonged to the old left
    ff = hflip(f)
    np.testing.assert_array_equal(ff.rgb, s.rgb)
    np.testing.assert_array_equal(ff.rgb_right, s.rgb_right)
    np.testing.assert_array_equal(ff.K, s.K)
    m = hflip(s, stereo="mirror")
    np.testing.assert_array_equal(m.rgb, s.rgb[:, ::-1])
    np.testing.assert_array_equal(m.depth, s.depth[:, ::-1])
    assert m.baseline == -s.baseline
    _assert_same(hflip(m, stereo="mirror"), s)
    with pytest.raises(ValueError):
        hflip(s, stereo="nope")


# --------------------------------------------------------------------------- crop

def test_crop_k_shift_projects_a_point_to_the_same_content():
    s = _sample()
    top, left, h, w = 5, 9, 30, 40
    c = crop(s, top, left, h, w)
    assert c.rgb.shape == (h, w, 3) and c.depth.shape == (h, w) and c.labels.shape == (h, w)
    np.testing.assert_array_equal(c.K[:, :2], s.K[:, :2])
    u, v = 31, 22
    X = s.depth[v, u] * np.linalg.inv(s.K) @ [u, v, 1.0]  # a 3-D point seen at (u, v)
    uc, vc = _project(c.K, X)
    assert (uc, vc) == pytest.approx((u - left, v - top))
    iu, iv = int(round(uc)), int(round(vc))
    np.testing.assert_array_equal(c.rgb[iv, iu], s.rgb[v, u])
    assert c.depth[iv, iu] == s.depth[v, u] and c.labels[iv, iu] == s.labels[v, u]
    np.testing.assert_array_equal(s.K[0, 2], (W - 1) / 2)  # the input is untouched
    for bad in ((0, 0, H + 1, W), (-1, 0, 4, 4), (0, W - 3, 4, 4), (0, 0, 0, 4)):
        with pytest.raises(ValueError):
            crop(s, *bad)


# --------------------------------------------------------------------------- rotation

def test_rotation_keeps_centre_and_marks_corners_invalid():
    s = _sample()
    r = rotate(s, 5.0)
    np.testing.assert_array_equal(r.K, s.K)
    cy, cx = (H - 1) // 2, (W - 1) // 2
    s_c = _sample(cx=cx, cy=cy)  # principal point on a pixel centre
    rc = rotate(s_c, 5.0)
    np.testing.assert_array_equal(rc.rgb[cy, cx], s_c.rgb[cy, cx])
    assert rc.depth[cy, cx] == s_c.depth[cy, cx] and rc.labels[cy, cx] == s_c.labels[cy, cx]
    for angle in (5.0, -5.0):
        r = rotate(s, angle)
        for y, x in ((0, 0), (0, W - 1), (H - 1, 0), (H - 1, W - 1)):
            assert np.isnan(r.depth[y, x]) and r.labels[y, x] == IGNORE_LABEL
            assert (r.rgb[y, x] == 0).all()
        assert 0.5 < np.isfinite(r.depth).mean() < 1.0
    assert r.depth.dtype == np.float32 and r.labels.dtype == np.uint8


def test_rotation_is_a_camera_roll():
    """Rotated pixel p' shows the 3-D point of the source pixel, at the same depth (z)."""
    s = _sample(cx=30.0, cy=21.0)
    angle = 4.0
    r = rotate(s, angle)
    A, Rz = rotation_matrix(s.K, angle)
    Ainv = np.linalg.inv(np.vstack([A, [0, 0, 1]]))
    hits = total = 0
    for v in range(8, H - 8, 3):
        for u in range(8, W - 8, 3):
            su, sv, _ = Ainv @ [u, v, 1.0]
            iu, iv = int(round(su)), int(round(sv))
            if abs(su - iu) > 0.45 or abs(sv - iv) > 0.45 or not np.isfinite(s.depth[iv, iu]):
                continue
            total += 1
            hits += r.depth[v, u] == s.depth[iv, iu] and r.labels[v, u] == s.labels[iv, iu]
            # the camera-frame point of the source pixel, rolled, projects back onto (u, v)
            X = s.depth[iv, iu] * np.linalg.inv(s.K) @ [su, sv, 1.0]
            assert _project(r.K, Rz @ X) == pytest.approx((u, v), abs=1e-6)
            # and the new pose still maps it to the same world point
            np.testing.assert_allclose(r.pose @ np.r_[Rz @ X, 1], s.pose @ np.r_[X, 1], atol=1e-9)
    assert total > 50 and hits == total


# --------------------------------------------------------------------------- brightness

def test_brightness_changes_only_the_images():
    s = _sample(stereo=True)
    b = adjust_brightness(s, 1.2)
    np.testing.assert_array_equal(b.depth, s.depth)
    np.testing.assert_array_equal(b.labels, s.labels)
    np.testing.assert_array_equal(b.K, s.K)
    expect = np.clip(np.rint(s.rgb * np.float32(1.2)), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(b.rgb, expect)
    assert b.rgb.dtype == np.uint8 and b.rgb.max() == 255
    np.testing.assert_array_equal(b.rgb_right, np.clip(np.rint(s.rgb_right * np.float32(1.2)), 0, 255))
    np.testing.assert_array_equal(adjust_brightness(s, 1.0).rgb, s.rgb)


# --------------------------------------------------------------------------- JointAugment

def test_joint_augment_seeded_and_pure():
    s = _sample()
    before = dataclasses.replace(s, **{f.name: getattr(s, f.name).copy() for f in dataclasses.fields(Sample)
                                       if isinstance(getattr(s, f.name), np.ndarray)})
    cfg = AugmentConfig(crop_size=(32, 40))
    a = [JointAugment(cfg, seed=3)(s) for _ in range(2)]
    _assert_same(a[0], a[1])
    _assert_same(s, before)  # the input is untouched
    aug = JointAugment(cfg, seed=np.random.default_rng(0))
    outs = [aug(s) for _ in range(8)]
    assert all(o.rgb.shape == (32, 40, 3) and o.depth.shape == (32, 40) for o in outs)
    assert len({o.rgb.tobytes() for o in outs}) == 8  # different draws
    assert all(o.K[0, 1] == 0 and o.K[0, 0] == s.K[0, 0] for o in outs)
    with pytest.raises(ValueError):
        JointAugment(AugmentConfig(crop_size=(H + 1, W)), seed=0)(s)


def test_joint_augment_identity_config_and_validation():
    s = _sample()
    off = AugmentConfig(flip_prob=0.0, rotate_deg=0.0, brightness=None)
    _assert_same(JointAugment(off, seed=0)(s), s)
    only_flip = AugmentConfig(flip_prob=1.0, rotate_deg=0.0, brightness=None)
    _assert_same(JointAugment(only_flip, seed=0)(s), hflip(s))
    for bad in (dict(flip_prob=1.5), dict(rotate_deg=-1), dict(brightness=(1.2, 0.8)),
                dict(stereo_flip="x"), dict(crop_size=(0, 4))):
        with pytest.raises(ValueError):
            AugmentConfig(**bad)


def test_joint_augment_does_not_rotate_stereo_pairs_by_default():
    s = _sample(stereo=True)
    cfg = AugmentConfig(flip_prob=0.0, rotate_deg=5.0, brightness=None)
    _assert_same(JointAugment(cfg, seed=0)(s), s)
    r = JointAugment(dataclasses.replace(cfg, rotate_stereo=True), seed=0)(s)
    assert (r.rgb_right[0, 0] == 0).all() and np.isnan(r.depth[0, 0])


def test_joint_augment_on_a_real_frame(seven_scenes_dir):
    s = SevenScenes(seven_scenes_dir, frames=slice(0, 1))[0]
    aug = JointAugment(AugmentConfig(flip_prob=1.0, rotate_deg=5.0, crop_size=(416, 544)), seed=1)
    o = aug(s)
    assert o.rgb.shape == (416, 544, 3) and o.depth.shape == (416, 544) and o.depth.dtype == np.float32
    # depth values are only moved, never changed
    vals = set(np.unique(s.depth[np.isfinite(s.depth)]).tolist())
    assert set(np.unique(o.depth[np.isfinite(o.depth)]).tolist()) <= vals
    assert 0.7 < np.isfinite(o.depth).mean() <= 1.0
    np.testing.assert_array_equal(o.K[:, :2], s.K[:, :2])
    assert o.K[0, 2] != s.K[0, 2] and o.pose is not None


# --------------------------------------------------------------------------- zoom (focal augmentation)

def test_zoom_k_projects_a_point_onto_the_same_content_and_keeps_depth():
    s = _sample(cx=30.2, cy=20.0)
    from mono_depth_ros.data.augment import zoom
    top, left, ch, cw = 6, 8, 32, 40  # a 40 x 32 window resized back to 64 x 48: x1.6 zoom
    z = zoom(s, top, left, ch, cw)
    assert z.rgb.shape == s.rgb.shape and z.depth.shape == s.depth.shape
    assert z.K[0, 0] / W == pytest.approx(s.K[0, 0] / cw)       # fx / W grows by W / cw
    assert z.K[1, 1] == pytest.approx(s.K[1, 1] * H / ch)
    for u, v in ((20, 15), (40, 30)):
        X = s.depth[v, u] * np.linalg.inv(s.K) @ [u, v, 1.0]
        uz, vz = _project(z.K, X)
        # the zoomed pixel centre lands on the same source pixel: same depth (nearest neighbour)
        assert z.depth[int(round(vz)), int(round(uz))] == pytest.approx(s.depth[v, u], abs=0.03)
    # depth values are only moved, never scaled
    assert set(np.unique(z.depth[np.isfinite(z.depth)])) <= set(np.unique(s.depth[np.isfinite(s.depth)]))
    with pytest.raises(ValueError):
        zoom(s, 40, 0, 20, 20)


# --------------------------------------------------------------------------- photometric

def test_color_jitter_seeded_identity_at_zero_and_changes_colours():
    from mono_depth_ros.data.augment import color_jitter
    rgb = _sample().rgb
    a = color_jitter(rgb, np.random.default_rng(1))
    np.testing.assert_array_equal(a, color_jitter(rgb, np.random.default_rng(1)))
    assert a.dtype == np.uint8 and a.shape == rgb.shape and not np.array_equal(a, rgb)
    same = color_jitter(rgb, np.random.default_rng(1), 0.0, 0.0, 0.0, 0.0)
    np.testing.assert_array_equal(same, rgb)
    with pytest.raises(ValueError):
        color_jitter(rgb.astype(np.float32), np.random.default_rng(1))


def test_sensor_noise_grows_with_the_signal():
    from mono_depth_ros.data.augment import sensor_noise
    flat = np.full((64, 64, 3), 30, np.uint8)
    flat[:, 32:] = 150
    n = sensor_noise(flat, np.random.default_rng(0), shot=0.05, read=1.0).astype(np.float32)
    dark, bright = n[:, :32].std(), n[:, 32:].std()
    assert 1.0 < dark < 0.7 * bright  # shot noise: sqrt(0.05 * 255 * 150) ~ 44 vs ~ 20
    assert abs(n[:, 32:].mean() - 150) < 3


def test_blur_and_jpeg_remove_detail():
    from mono_depth_ros.data.augment import blur, jpeg_artifacts
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    hf = lambda x: sum(np.abs(np.diff(x.astype(np.float32), axis=a)).mean() for a in (0, 1))  # noqa: E731
    for _ in range(6):
        assert hf(blur(img, rng)) < 0.85 * hf(img)
    flat = np.full((32, 32, 3), 128, np.uint8)
    np.testing.assert_allclose(blur(flat, rng), flat, atol=1)  # a flat image stays flat
    lo = jpeg_artifacts(img, np.random.default_rng(0), (10, 10))
    hi = jpeg_artifacts(img, np.random.default_rng(0), (95, 95))
    err = lambda x: np.abs(x.astype(np.float32) - img).mean()  # noqa: E731
    assert 0 < err(hi) < err(lo)


def test_photometric_augment_probabilities():
    from mono_depth_ros.data.augment import PhotometricAugment, PhotometricConfig
    rgb = _sample().rgb
    off = PhotometricAugment(PhotometricConfig(0.0, 0.0, 0.0, 0.0), seed=0)
    np.testing.assert_array_equal(off(rgb), rgb)
    on = PhotometricAugment(PhotometricConfig(1.0, 1.0, 1.0, 1.0), seed=0)
    assert not np.array_equal(on(rgb), rgb)
    a, b = PhotometricAugment(seed=3), PhotometricAugment(seed=3)
    np.testing.assert_array_equal(a(rgb), b(rgb))
    with pytest.raises(ValueError):
        PhotometricConfig(jpeg_prob=1.5)
