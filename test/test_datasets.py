"""Dataset readers on the real sample data (../shared/data) and on tiny synthetic folders."""

import cv2
import numpy as np
import pytest

from mono_depth_ros.data import (DatasetError, KittiFrame, NYUTest, SevenScenes, open_dataset,
                                 parse_frames)
from mono_depth_ros.data.datasets import NYU_INTRINSICS, STAMP_ORIGIN_NS, depth_from_u16

FRAME_NS = 1e9 / 30.0


# --------------------------------------------------------------------------- 7-Scenes

def test_seven_scenes_index_and_intrinsics(seven_scenes_dir):
    ds = SevenScenes(seven_scenes_dir)
    assert len(ds) == 1000
    np.testing.assert_array_equal(ds.K, [[585, 0, 320], [0, 585, 240], [0, 0, 1]])
    assert ds.K.dtype == np.float64
    assert ds.frame_id == "camera_optical_frame" and ds.rate_hz == 30.0
    val = SevenScenes(seven_scenes_dir, frames=slice(800, 1000))
    assert len(val) == 200
    assert val[0].name == "frame-000800"
    assert val[-1].name == "frame-000999"
    assert val[0].stamp_ns == STAMP_ORIGIN_NS + round(800 * FRAME_NS)
    with pytest.raises(IndexError):
        val[200]


def test_seven_scenes_frame0_matches_raw_files(seven_scenes_dir):
    ds = SevenScenes(seven_scenes_dir)
    s0, s1 = ds[0], ds[1]
    raw = cv2.imread(str(seven_scenes_dir / "frame-000000.depth.png"), cv2.IMREAD_UNCHANGED)
    bgr = cv2.imread(str(seven_scenes_dir / "frame-000000.color.jpg"), cv2.IMREAD_COLOR)
    assert s0.name == "frame-000000"
    assert s0.rgb.shape == (480, 640, 3) and s0.rgb.dtype == np.uint8
    np.testing.assert_array_equal(s0.rgb, bgr[..., ::-1])  # RGB order
    assert s0.depth.shape == (480, 640) and s0.depth.dtype == np.float32
    invalid = (raw == 0) | (raw == 65535)
    assert invalid.any()
    np.testing.assert_array_equal(np.isnan(s0.depth), invalid)
    np.testing.assert_allclose(s0.depth[~invalid], raw[~invalid].astype(np.float64) / 1000.0,
                               rtol=1e-6)
    assert 0.85 < np.isfinite(s0.depth).mean() < 0.95  # ~11 % holes
    np.testing.assert_array_equal(s0.K, ds.K)
    # pose: 4x4 camera-to-world from the pose file, a rigid transform
    pose = np.loadtxt(seven_scenes_dir / "frame-000000.pose.txt")
    assert s0.pose.shape == (4, 4)
    np.testing.assert_array_equal(s0.pose, pose)
    np.testing.assert_allclose(s0.pose[:3, :3] @ s0.pose[:3, :3].T, np.eye(3), atol=1e-3)  # near-rigid (KinectFusion)
    np.testing.assert_array_equal(s0.pose[3], [0, 0, 0, 1])
    # 30 Hz stamps starting at the (non-zero) origin
    assert s0.stamp_ns == STAMP_ORIGIN_NS
    assert abs((s1.stamp_ns - s0.stamp_ns) - FRAME_NS) <= 1
    assert abs((ds[2].stamp_ns - s0.stamp_ns) - 2 * FRAME_NS) <= 1


def test_seven_scenes_65535_is_invalid(seven_scenes_dir):
    s = SevenScenes(seven_scenes_dir, frames=slice(33, 34))[0]  # frame 33 has saturated pixels
    raw = cv2.imread(str(seven_scenes_dir / "frame-000033.depth.png"), cv2.IMREAD_UNCHANGED)
    assert (raw == 65535).any()
    assert np.isnan(s.depth[raw == 65535]).all()
    assert np.nanmax(s.depth) < 10.0


def test_seven_scenes_synthetic_folder(tmp_path):
    """A two-frame folder without camera-intrinsics.txt: nominal K, codes 0/65535 invalid."""
    ok, jpg = cv2.imencode(".jpg", np.full((4, 6, 3), (0, 0, 255), np.uint8))  # BGR red
    for i in range(2):
        (tmp_path / f"frame-{i:06d}.color.jpg").write_bytes(jpg.tobytes())
    depth = np.array([[0, 65535, 1234, 500, 1000, 2000]] * 4, dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "frame-000000.depth.png"), depth)
    ds = SevenScenes(tmp_path)
    assert len(ds) == 2
    np.testing.assert_array_equal(ds.K, [[585, 0, 320], [0, 585, 240], [0, 0, 1]])
    s = ds[0]
    assert np.isnan(s.depth[:, :2]).all()
    np.testing.assert_allclose(s.depth[0, 2:], [1.234, 0.5, 1.0, 2.0], rtol=1e-6)
    assert s.pose is None
    assert s.rgb[0, 0, 0] > 200 and s.rgb[0, 0, 2] < 50  # red in RGB order
    assert ds[1].depth is None  # no depth file for frame 1


# --------------------------------------------------------------------------- NYU

def test_nyu_test_frames(nyu_dir):
    ds = NYUTest(nyu_dir)
    assert len(ds) == 10
    fx, fy, cx, cy = NYU_INTRINSICS
    np.testing.assert_allclose(ds.K, [[518.8579, 0, 325.5824], [0, 519.4696, 253.7362], [0, 0, 1]])
    assert (fx, fy, cx, cy) == pytest.approx((518.86, 519.47, 325.58, 253.74), abs=0.01)
    names = []
    for s in ds:
        names.append(s.name)
        assert s.rgb.shape == (480, 640, 3)
        assert s.depth.shape == (480, 640)
        assert np.isfinite(s.depth).all()  # hole-filled: 100 % valid
        assert 0.5 <= s.depth.min() and s.depth.max() <= 10.0
    assert sorted(names) == sorted(f"image_{i}" for i in range(10))
    raw = cv2.imread(str(nyu_dir / "depth_0.png"), cv2.IMREAD_UNCHANGED)
    s0 = ds[0]
    assert s0.name == "image_0"
    np.testing.assert_allclose(s0.depth, raw.astype(np.float64) / 1000.0, rtol=1e-6)
    assert s0.pose is None
    assert len(NYUTest(nyu_dir, frames=slice(2, 5))) == 3


# --------------------------------------------------------------------------- KITTI

def test_kitti_frame(kitti_dir):
    ds = KittiFrame(kitti_dir)
    assert len(ds) == 1
    s = ds[0]
    assert s.rgb.shape == (375, 1242, 3)
    assert s.depth.shape == (375, 1242)
    np.testing.assert_allclose(ds.K, [[721.5377, 0, 609.5593], [0, 721.5377, 172.854], [0, 0, 1]])
    valid = np.isfinite(s.depth)
    assert 0.17 < valid.mean() < 0.21  # ~19 % annotated
    raw = cv2.imread(str(kitti_dir / "depth_completion" / "groundtruth_image_02.png"),
                     cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(valid, raw > 0)
    np.testing.assert_allclose(s.depth[valid], raw[raw > 0] / 256.0, rtol=1e-6)
    assert 1.0 < np.nanmin(s.depth) and np.nanmax(s.depth) < 100.0
    assert ds.rate_hz == 10.0
    assert ds.frame_id == "camera_color_left_optical_frame"
    assert ds.eval_range == (1e-3, 80.0)


# --------------------------------------------------------------------------- open_dataset

def test_open_dataset_autodetects(seven_scenes_dir, nyu_dir, kitti_dir):
    ds = open_dataset(seven_scenes_dir, slice(0, 5))
    assert isinstance(ds, SevenScenes) and len(ds) == 5
    assert isinstance(open_dataset(nyu_dir), NYUTest)
    assert isinstance(open_dataset(str(kitti_dir)), KittiFrame)


def test_open_dataset_error_lists_readers(tmp_path):
    with pytest.raises(DatasetError) as exc:
        open_dataset(tmp_path)
    msg = str(exc.value)
    for name in ("SevenScenes", "NYUTest", "KittiFrame"):
        assert name in msg
    assert str(tmp_path) in msg
    with pytest.raises(DatasetError):
        open_dataset(tmp_path / "does-not-exist")
    with pytest.raises(ValueError):  # DatasetError is a ValueError
        SevenScenes(tmp_path)


def test_depth_from_u16():
    raw = np.array([[0, 256, 512, 65535]], np.uint16)
    out = depth_from_u16(raw, 1 / 256, invalid=(0, 65535))
    assert np.isnan(out[0, [0, 3]]).all()
    np.testing.assert_allclose(out[0, 1:3], [1.0, 2.0])


# --------------------------------------------------------------------------- parse_frames

@pytest.mark.parametrize("spec, expected", [
    (None, None),
    ("", None),
    ("800:1000", slice(800, 1000)),
    ("0:4", slice(0, 4)),
    (":10", slice(None, 10)),
    ("5:", slice(5, None)),
    ("0:100:10", slice(0, 100, 10)),
    ("-10:", slice(-10, None)),
    ("7", slice(7, 8)),
])
def test_parse_frames(spec, expected):
    assert parse_frames(spec) == expected


def test_parse_frames_single_index_selects_that_frame():
    frames = list(range(20))
    assert frames[parse_frames("7")] == [7]
    assert frames[parse_frames("0")] == [0]
    assert frames[parse_frames("-1")] == [19]  # the last frame, not an empty selection
    assert frames[parse_frames("-3")] == [17]


@pytest.mark.parametrize("spec", ["a:b", "1:2:3:4", "1.5:3", "-", "1;2"])
def test_parse_frames_rejects(spec):
    with pytest.raises(ValueError):
        parse_frames(spec)
