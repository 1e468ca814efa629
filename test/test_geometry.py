"""Camera geometry: back-projection, organized clouds, PointCloud2 layout, intrinsics scaling."""

import math

import cv2
import numpy as np
import pytest

from mono_depth_ros.core import geometry
from mono_depth_ros.core.geometry import (CloudBuilder, InvalidCameraInfo, intrinsics_from_camera_info,
                                          scale_intrinsics)

# Deliberately asymmetric: fx != fy and (cx, cy) off the image centre, so swapped axes show up.
H, W = 48, 64
FX, FY, CX, CY = 50.0, 55.0, 30.25, 21.75
K = np.array([[FX, 0, CX], [0, FY, CY], [0, 0, 1]], dtype=np.float64)



def backproject(depth, K):
    """Reference pinhole back-projection (x = (u - cx) z / fx, y = (v - cy) z / fy), the oracle
    the cloud builder is checked against: ``H x W x 3`` float32."""
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    z = depth.astype(np.float32)
    rx = ((u - K[0, 2]) / K[0, 0]).astype(np.float32)
    ry = ((v - K[1, 2]) / K[1, 1]).astype(np.float32)
    return np.stack([z * rx, z * ry, z], axis=-1)


def pack_rgb(rgb):
    """Reference PCL rgb packing: uint8 RGB -> float32 whose bits are 0x00RRGGBB."""
    c = rgb.astype(np.uint32)
    return ((c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]).view(np.float32)

def _rays(h=H, w=W, K=K):
    """Per-pixel ray (X/Z, Y/Z, 1), computed independently of the module."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)


def _plane_depth(n, d, h=H, w=W, K=K):
    """Depth z(u, v) of the plane n . X = d: X = z * r  =>  z = d / (n . r)."""
    r = _rays(h, w, K)
    return (d / (r @ np.asarray(n, dtype=np.float64))).astype(np.float32)


# --------------------------------------------------------------------------- back-projection

def test_backproject_fronto_parallel_plane():
    depth = np.full((H, W), 2.0, dtype=np.float32)
    pts = backproject(depth, K)
    assert pts.shape == (H, W, 3) and pts.dtype == np.float32
    # every point on z = 2
    np.testing.assert_allclose(pts[..., 2], 2.0, atol=1e-6)
    # hand-computed corner and centre-ish pixels: X = z (u - cx) / fx, Y = z (v - cy) / fy
    for v, u in [(0, 0), (H - 1, W - 1), (10, 40), (30, 5)]:
        np.testing.assert_allclose(pts[v, u], [2.0 * (u - CX) / FX, 2.0 * (v - CY) / FY, 2.0],
                                   rtol=0, atol=1e-6)


def test_backproject_tilted_plane_points_lie_on_plane():
    n = np.array([0.2, -0.3, 1.0])
    n /= np.linalg.norm(n)
    d = 2.5
    depth = _plane_depth(n, d)
    assert np.all(depth > 0)
    pts = backproject(depth, K).astype(np.float64)
    residual = pts.reshape(-1, 3) @ n - d
    assert np.abs(residual).max() < 1e-5
    # and they re-project onto the pixel they came from (pinhole model, integer pixel centres)
    v, u = np.mgrid[0:H, 0:W]
    np.testing.assert_allclose(FX * pts[..., 0] / pts[..., 2] + CX, u, atol=1e-4)
    np.testing.assert_allclose(FY * pts[..., 1] / pts[..., 2] + CY, v, atol=1e-4)


def test_backproject_rep103_axis_signs():
    depth = np.full((H, W), 3.0, dtype=np.float32)
    pts = backproject(depth, K)
    # right of cx -> x > 0, left -> x < 0; below cy -> y > 0 (y down), above -> y < 0; z forward
    assert pts[int(CY), W - 1, 0] > 0 and pts[int(CY), 0, 0] < 0
    assert pts[H - 1, int(CX), 1] > 0 and pts[0, int(CX), 1] < 0
    assert np.all(pts[..., 2] > 0)


def test_backproject_nan_depth_gives_nan_point():
    depth = np.full((H, W), 1.5, dtype=np.float32)
    depth[3, 7] = np.nan
    pts = backproject(depth, K)
    assert np.isnan(pts[3, 7]).all()
    assert np.isfinite(np.delete(pts.reshape(-1, 3), 3 * W + 7, axis=0)).all()


# --------------------------------------------------------------------------- CloudBuilder

def _random_depth(seed=0, h=H, w=W):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 5.0, (h, w)).astype(np.float32)
    depth[rng.random((h, w)) < 0.1] = np.nan
    return depth


def test_cloud_builder_matches_backproject_xyz_only():
    depth = _random_depth()
    cloud = CloudBuilder(decimation=1, with_rgb=False).build(depth, K)
    assert cloud.points.shape == (H, W, 3)
    np.testing.assert_array_equal(cloud.points, backproject(depth, K))
    assert [f.name for f in cloud.fields] == ["x", "y", "z"]
    assert cloud.point_step == 12 and cloud.row_step == 12 * W


def test_cloud_builder_matches_backproject_with_rgb():
    depth = _random_depth(1)
    rgb = np.random.default_rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8)
    cloud = CloudBuilder(decimation=1, with_rgb=True).build(depth, K, rgb)
    np.testing.assert_array_equal(cloud.points[..., :3], backproject(depth, K))
    packed = cloud.points[..., 3].view(np.uint32)
    expect = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    np.testing.assert_array_equal(packed, expect)
    np.testing.assert_array_equal(packed, pack_rgb(rgb).view(np.uint32))


def test_cloud_builder_decimation_picks_every_dth_pixel():
    d = 3
    h, w = 10, 14
    k = np.array([[20.0, 0, 6.5], [0, 22.0, 4.25], [0, 0, 1]])
    depth = np.arange(h * w, dtype=np.float32).reshape(h, w) * 0.01 + 1.0
    cloud = CloudBuilder(decimation=d, with_rgb=False).build(depth, k)
    assert cloud.points.shape == (math.ceil(h / d), math.ceil(w / d), 3) == (4, 5, 3)
    for i in range(4):
        for j in range(5):
            v, u = d * i, d * j  # pixels 0, d, 2d, ...
            z = 1.0 + 0.01 * (v * w + u)
            np.testing.assert_allclose(cloud.points[i, j],
                                       [z * (u - 6.5) / 20.0, z * (v - 4.25) / 22.0, z],
                                       rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(cloud.points, backproject(depth, k)[::d, ::d])


def test_cloud_builder_nan_depth_gives_nan_xyz_and_keeps_colour():
    depth = np.full((4, 6), 2.0, dtype=np.float32)
    depth[1, 2] = np.nan
    rgb = np.full((4, 6, 3), 7, dtype=np.uint8)
    cloud = CloudBuilder(with_rgb=True).build(depth, K, rgb)
    assert np.isnan(cloud.points[1, 2, :3]).all()
    assert cloud.points[1, 2, 3:].view(np.uint32)[0] == 0x070707
    assert np.isfinite(cloud.points[0, 0, :3]).all()


def test_cloud_builder_reuses_buffer_with_correct_values():
    builder = CloudBuilder(decimation=2, with_rgb=False)
    d1, d2 = _random_depth(3), _random_depth(4)
    c1 = builder.build(d1, K)
    first = c1.points
    c2 = builder.build(d2, K)
    assert c2.points is first  # same buffer object, no reallocation
    np.testing.assert_array_equal(c2.points, backproject(d2, K)[::2, ::2])
    # a new K invalidates the cached rays
    K2 = K.copy()
    K2[0, 0] = 80.0
    c3 = builder.build(d2, K2)
    np.testing.assert_array_equal(c3.points, backproject(d2, K2)[::2, ::2])


def test_cloud_builder_rejects_bad_arguments():
    with pytest.raises(ValueError):
        CloudBuilder(decimation=0)
    with pytest.raises(ValueError):
        CloudBuilder(with_rgb=True).build(np.ones((4, 4), np.float32), K, None)
    with pytest.raises(ValueError):
        CloudBuilder(with_rgb=True).build(np.ones((4, 4), np.float32), K,
                                          np.zeros((3, 4, 3), np.uint8))


# --------------------------------------------------------------------------- PointCloud2 bytes


def test_cloud_builder_rgb_bits():
    px = np.array([[[255, 128, 1], [0, 0, 0], [1, 2, 3]]], dtype=np.uint8)
    cloud = CloudBuilder(with_rgb=True).build(np.ones((1, 3), np.float32), K, px)
    assert cloud.points[..., 3].view(np.uint32).ravel().tolist() == [0x00FF8001, 0, 0x00010203]


@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_pack_rgb_into_a_strided_field_both_code_paths(monkeypatch, byteorder):
    # the OpenCV path (little-endian hosts) and the shift path must give the same bits, also
    # for a decimated (strided) image, a strided destination and a scratch full of garbage
    class _Sys:
        pass
    fake = _Sys()
    fake.byteorder = byteorder
    monkeypatch.setattr(geometry, "sys", fake)
    rgb = np.random.default_rng(5).integers(0, 256, (30, 41, 3), dtype=np.uint8)[::2, ::3]
    buf = np.full((15, 14, 4), np.nan, dtype=np.float32)
    scratch = np.full((15, 14, 4), 255, dtype=np.uint8)
    out = geometry.pack_rgb(rgb, buf[..., 3].view(np.uint32), scratch)
    np.testing.assert_array_equal(out, pack_rgb(rgb).view(np.uint32))
    np.testing.assert_array_equal(buf[..., 3].view(np.uint32), pack_rgb(rgb).view(np.uint32))
    assert np.isnan(buf[..., :3]).all()  # x, y, z untouched
    with pytest.raises(ValueError, match="does not match"):
        geometry.pack_rgb(rgb[:3], buf[..., 3].view(np.uint32))


def test_cloud_builder_decimated_rgb_cloud_packs_the_kept_pixels():
    depth = _random_depth(6)
    rgb = np.random.default_rng(7).integers(0, 256, (H, W, 3), dtype=np.uint8)
    builder = CloudBuilder(decimation=3, with_rgb=True)
    for frame in (rgb, rgb[::-1].copy()):  # the second frame reuses buffer and scratch
        cloud = builder.build(depth, K, frame)
        np.testing.assert_array_equal(cloud.points[..., :3], backproject(depth, K)[::3, ::3])
        np.testing.assert_array_equal(cloud.points[..., 3].view(np.uint32),
                                      pack_rgb(frame[::3, ::3]).view(np.uint32))


# --------------------------------------------------------------------------- intrinsics

def test_scale_intrinsics_half_maps_pixel_centres():
    K640 = np.array([[585.0, 0, 320.0], [0, 585.0, 240.0], [0, 0, 1]])
    Kh = scale_intrinsics(K640, 0.5, 0.5)
    assert Kh[0, 0] == pytest.approx(292.5)
    assert Kh[1, 1] == pytest.approx(292.5)
    assert Kh[0, 2] == pytest.approx((320.0 + 0.5) * 0.5 - 0.5)  # 159.75
    assert Kh[1, 2] == pytest.approx((240.0 + 0.5) * 0.5 - 0.5)  # 119.75
    np.testing.assert_array_equal(Kh[2], [0, 0, 1])
    # a 3-D point lands on the matching pixel centre: u' = (u + 0.5) * s - 0.5
    X = np.array([0.3, -0.2, 1.7])
    u, v = (K640 @ X)[:2] / X[2]
    u2, v2 = (Kh @ X)[:2] / X[2]
    assert u2 == pytest.approx((u + 0.5) * 0.5 - 0.5)
    assert v2 == pytest.approx((v + 0.5) * 0.5 - 0.5)


def test_scale_intrinsics_matches_cv2_resize_pixel_centres():
    # An image whose value is the ray x-coordinate (u - cx) / fx: a linear function, so
    # INTER_AREA halving (2x2 box average) is exact and must equal the ray from the scaled K.
    w, h = 64, 48
    u = np.arange(w, dtype=np.float32)
    img = np.tile((u - CX) / FX, (h, 1)).astype(np.float32)
    small = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    Kh = scale_intrinsics(K, 0.5, 0.5)
    u2 = np.arange(w // 2)
    np.testing.assert_allclose(small[0], (u2 - Kh[0, 2]) / Kh[0, 0], atol=1e-5)


def test_scale_intrinsics_round_trip_and_projection_matrix():
    Kx2 = scale_intrinsics(K, 2.0, 2.0)
    np.testing.assert_allclose(scale_intrinsics(Kx2, 0.5, 0.5), K, atol=1e-12)
    np.testing.assert_allclose(scale_intrinsics(scale_intrinsics(K, 0.25, 0.75), 4.0, 4 / 3), K,
                               atol=1e-12)
    P = np.array([[721.5377, 0, 609.5593, 44.85728],
                  [0, 721.5377, 172.854, 0.2163791],
                  [0, 0, 1, 0.002745884]])
    sx, sy = 0.5, 0.25
    Ps = scale_intrinsics(P, sx, sy)
    assert Ps.shape == (3, 4)
    np.testing.assert_allclose(Ps[:, :3], scale_intrinsics(P[:, :3], sx, sy))
    np.testing.assert_array_equal(Ps[2], P[2])
    assert P[0, 0] == 721.5377  # input untouched
    # 4th column: fx*Tx scales with s, plus the centre shift times P[2, 3] (KITTI's Tz != 0)
    assert Ps[0, 3] == pytest.approx(44.85728 * sx + (0.5 * sx - 0.5) * 0.002745884, rel=1e-12)
    assert Ps[1, 3] == pytest.approx(0.2163791 * sy + (0.5 * sy - 0.5) * 0.002745884, rel=1e-12)
    # the defining property: every 3-D point lands on the matching pixel centre
    Xh = np.array([[1.2, -0.4, 7.5, 1.0], [-3.0, 1.1, 25.0, 1.0], [0.0, 0.0, 2.0, 1.0]])
    for X in Xh:
        u, v, z = P @ X
        u2, v2, z2 = Ps @ X
        assert u2 / z2 == pytest.approx((u / z + 0.5) * sx - 0.5, abs=1e-9)
        assert v2 / z2 == pytest.approx((v / z + 0.5) * sy - 0.5, abs=1e-9)
    # a standard ROS P ([K | 0] with row 2 = [0, 0, 1, 0]) keeps a zero 4th column
    P0 = np.hstack([K, np.zeros((3, 1))])
    np.testing.assert_array_equal(scale_intrinsics(P0, 0.5, 0.5)[:, 3], 0)


def test_intrinsics_from_camera_info_valid():
    k = [585.0, 0, 320.0, 0, 585.0, 240.0, 0, 0, 1]
    out = intrinsics_from_camera_info(k, 640, 480)
    assert out.shape == (3, 3) and out.dtype == np.float64
    np.testing.assert_array_equal(out.ravel(), k)


@pytest.mark.parametrize("k, width, height, reason", [
    ([0.0] * 9, 640, 480, "zero_intrinsics"),
    ([585.0, 0, 320.0, 0, 585.0, 240.0, 0, 0, 1], 0, 480, "zero_size"),
    ([585.0, 0, 320.0, 0, 585.0, 240.0, 0, 0, 1], 640, 0, "zero_size"),
    ([float("nan"), 0, 320.0, 0, 585.0, 240.0, 0, 0, 1], 640, 480, "zero_intrinsics"),
    ([585.0, 0, float("nan"), 0, 585.0, 240.0, 0, 0, 1], 640, 480, "nonfinite_intrinsics"),  # a NaN cx is named as such
    ([585.0, 0, 320.0, 0, float("inf"), 240.0, 0, 0, 1], 640, 480, "zero_intrinsics"),
    ([-585.0, 0, 320.0, 0, 585.0, 240.0, 0, 0, 1], 640, 480, "zero_intrinsics"),
])
def test_intrinsics_from_camera_info_rejects(k, width, height, reason):
    with pytest.raises(InvalidCameraInfo) as exc:
        intrinsics_from_camera_info(k, width, height)
    assert exc.value.reason == reason
    assert isinstance(exc.value, ValueError)
