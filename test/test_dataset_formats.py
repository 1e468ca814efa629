"""Readers for the published dataset layouts (mono_depth_ros.data): real sample files from
../shared/data where the format is there, tiny files written here for the others."""

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from mono_depth_ros.data import (BagDataset, Cityscapes, DatasetError, ImageDepthFolder, KittiFrame,
                                 KittiRaw, NYULabeled, NYUSync, Sample, SevenScenes, Synthia,
                                 open_dataset, project_velodyne, read_intrinsics, readers)
from mono_depth_ros.data.bag import (IMAGE_TYPE, INFO_TYPE, McapWriter, camera_info_message,
                                     image_message, write_dataset_bag)
from mono_depth_ros.data.cityscapes import disparity_to_depth
from mono_depth_ros.data.datasets import NYU_INTRINSICS, STAMP_ORIGIN_NS, kitti_stereo_baseline, read_kitti_calib
from mono_depth_ros.data.kitti import parse_kitti_timestamp, parse_split_line, read_velodyne
from mono_depth_ros.data.nyu import load_label_mapping
from mono_depth_ros.data.synthia import SYNTHIA_SEQS_TO_CLASSES

DRIVE = "2011_09_26_drive_0001_sync"


def _png(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), arr)
    return path


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src, dst)


def _rgb_pattern(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- Sample

def test_sample_new_fields_default_to_none():
    s = Sample(np.zeros((2, 2, 3), np.uint8), None, np.eye(3), 1, "x")
    assert s.rgb_right is None and s.baseline is None and s.labels is None and s.pose is None


# --------------------------------------------------------------------------- KITTI

def test_project_velodyne_matches_depth_completion_raw(kitti_dir):
    """The devkit projection of the real scan agrees with the benchmark's velodyne_raw image."""
    scan = read_velodyne(kitti_dir / "raw" / "lidar_data.bin")
    assert scan.shape == (121948, 4)
    for cam in (2, 3):
        depth = project_velodyne(scan, kitti_dir / "raw" / "calib_velo_to_cam.txt",
                                 kitti_dir / "raw" / "calib_cam_to_cam.txt", cam=cam)
        assert depth.shape == (375, 1242) and depth.dtype == np.float32
        raw = cv2.imread(str(kitti_dir / "depth_completion" / f"velodyne_raw_image_0{cam}.png"),
                         cv2.IMREAD_UNCHANGED)
        ref = np.where(raw > 0, raw / 256.0, np.nan)
        ours, theirs = np.isfinite(depth).mean(), np.isfinite(ref).mean()
        assert 0.035 < ours < 0.047 and abs(ours - theirs) / theirs < 0.02  # ~4.1 % both
        both = np.isfinite(depth) & np.isfinite(ref)
        assert both.sum() > 0.25 * np.isfinite(ref).sum()
        assert np.median(np.abs(depth[both] - ref[both])) < 0.1
        assert np.nanmin(depth) > 0 and np.nanmax(depth) < 120


def test_project_velodyne_geometry():
    """Identity calibration: pixel = round(K x / z); nearest point wins; behind is dropped."""
    vc = {"R": np.eye(3).ravel(), "T": np.zeros(3)}
    P = np.array([[100.0, 0, 5, 0], [0, 100, 4, 0], [0, 0, 1, 0]])
    cc = {"R_rect_00": np.eye(3).ravel(), "P_rect_02": P.ravel(), "S_rect_02": np.array([10.0, 8.0])}
    pts = np.array([[0, 0, 2.0], [0, 0, 3.0],          # same pixel (5, 4): nearest (2 m) wins
                    [0.02, 0.01, 1.0],                 # -> (7, 5)
                    [0.0149, 0, 1.0],                  # u = 6.49 -> column 6
                    [0, 0, -1.0],                      # behind the camera
                    [1.0, 0, 1.0]])                    # outside the image
    d = project_velodyne(pts, vc, cc)
    assert d.shape == (8, 10)
    assert d[4, 5] == pytest.approx(2.0) and d[5, 7] == pytest.approx(1.0) and d[4, 6] == pytest.approx(1.0)
    assert np.isfinite(d).sum() == 3
    with pytest.raises(ValueError):
        project_velodyne(np.zeros((3, 2)), vc, cc)


def test_kitti_frame_stereo(kitti_dir):
    ds = KittiFrame(kitti_dir, stereo=True)
    s = ds[0]
    right = cv2.imread(str(kitti_dir / "raw" / "sync_rect" / "cam_03.png"))[..., ::-1]
    np.testing.assert_array_equal(s.rgb_right, right)
    assert s.baseline == pytest.approx(0.54, abs=0.02)
    assert s.baseline == pytest.approx((44.85728 + 339.5242) / 721.5377, rel=1e-6)
    assert KittiFrame(kitti_dir)[0].rgb_right is None  # mono by default, as before


def _kitti_drive(kitti_dir: Path, root: Path, gt_in_drive: bool = False) -> Path:
    """The real frame laid out as a KITTI raw drive (symlinks)."""
    date = root / "2011_09_26"
    drive = date / DRIVE
    _link(kitti_dir / "raw" / "sync_rect" / "cam_02.png", drive / "image_02" / "data" / "0000000005.png")
    _link(kitti_dir / "raw" / "sync_rect" / "cam_03.png", drive / "image_03" / "data" / "0000000005.png")
    _link(kitti_dir / "raw" / "lidar_data.bin", drive / "velodyne_points" / "data" / "0000000005.bin")
    for c in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt"):
        _link(kitti_dir / "raw" / c, date / c)
    if gt_in_drive:
        _link(kitti_dir / "depth_completion" / "groundtruth_image_02.png",
              drive / "proj_depth" / "groundtruth" / "image_02" / "0000000005.png")
    return drive


def test_kitti_raw_drive_velodyne_and_groundtruth(kitti_dir, tmp_path):
    drive = _kitti_drive(kitti_dir, tmp_path)
    (drive / "image_02" / "timestamps.txt").write_text(
        "\n".join(f"2011-09-26 13:02:25.{i:09d}" for i in range(6)) + "\n")
    for root in (tmp_path, tmp_path / "2011_09_26", drive):  # raw root, date folder, drive folder
        ds = open_dataset(root)
        assert isinstance(ds, KittiRaw) and len(ds) == 1
    s = ds[0]
    assert s.name == f"{DRIVE}/image_02/0000000005"
    np.testing.assert_allclose(s.K, [[721.5377, 0, 609.5593], [0, 721.5377, 172.854], [0, 0, 1]])
    assert s.stamp_ns == parse_kitti_timestamp("2011-09-26 13:02:25.000000005")
    assert s.rgb_right is None and s.baseline is None
    # no annotation -> the Velodyne projection into camera 2
    expected = project_velodyne(read_velodyne(kitti_dir / "raw" / "lidar_data.bin"),
                                kitti_dir / "raw" / "calib_velo_to_cam.txt",
                                kitti_dir / "raw" / "calib_cam_to_cam.txt")
    np.testing.assert_array_equal(np.isnan(s.depth), np.isnan(expected))
    assert KittiRaw(tmp_path, depth="groundtruth")[0].depth is None
    assert KittiRaw(tmp_path, depth="none")[0].depth is None
    # the annotated depth, from a separate gt_root as distributed ...
    gt_root = tmp_path / "data_depth_annotated"
    _link(kitti_dir / "depth_completion" / "groundtruth_image_02.png",
          gt_root / "train" / DRIVE / "proj_depth" / "groundtruth" / "image_02" / "0000000005.png")
    raw = cv2.imread(str(kitti_dir / "depth_completion" / "groundtruth_image_02.png"), cv2.IMREAD_UNCHANGED)
    s_gt = KittiRaw(tmp_path, gt_root=gt_root)[0]
    np.testing.assert_array_equal(np.isfinite(s_gt.depth), raw > 0)
    np.testing.assert_allclose(s_gt.depth[raw > 0], raw[raw > 0] / 256.0, rtol=1e-6)
    # ... unless velodyne is asked for
    v = KittiRaw(tmp_path, gt_root=gt_root, depth="velodyne")[0]
    np.testing.assert_array_equal(np.isnan(v.depth), np.isnan(expected))


def test_kitti_raw_gt_in_drive_and_stereo(kitti_dir, tmp_path):
    _kitti_drive(kitti_dir, tmp_path, gt_in_drive=True)
    s = KittiRaw(tmp_path, stereo=True)[0]
    assert 0.17 < np.isfinite(s.depth).mean() < 0.21  # the annotated depth (~19 %)
    np.testing.assert_array_equal(s.rgb, KittiFrame(kitti_dir)[0].rgb)
    np.testing.assert_array_equal(s.rgb_right, KittiFrame(kitti_dir, stereo=True)[0].rgb_right)
    assert s.baseline == pytest.approx(0.5327, abs=1e-3)
    assert s.stamp_ns == STAMP_ORIGIN_NS + 5 * 10**8  # 10 Hz from the frame index


def test_kitti_eigen_split_files(kitti_dir, tmp_path):
    _kitti_drive(kitti_dir, tmp_path, gt_in_drive=True)
    split = tmp_path / "eigen_test_files.txt"
    split.write_text(
        "# monodepth2 style\n"
        f"2011_09_26/{DRIVE} 5 l\n"
        f"2011_09_26/{DRIVE} 0000000005 r\n"
        "\n"
        f"2011_09_26/{DRIVE}/image_02/data/0000000005.png 2011_09_26/{DRIVE}/image_03/data/0000000005.png\n"
        f"/2011_09_26/{DRIVE}/image_02/data/0000000005.png {DRIVE}/proj_depth/groundtruth/image_02/0000000005.png 721.5377\n")
    ds = KittiRaw(tmp_path, files=split, stereo=True)
    assert len(ds) == 4
    left, right = ds[0], ds[1]
    assert left.name.endswith("image_02/0000000005") and right.name.endswith("image_03/0000000005")
    assert left.baseline == pytest.approx(-right.baseline) and left.baseline > 0.5
    np.testing.assert_array_equal(right.rgb, left.rgb_right)  # the pair, seen from the other side
    np.testing.assert_array_equal(right.rgb_right, left.rgb)
    assert np.isfinite(right.depth).mean() == pytest.approx(0.041, abs=0.005)  # image_03: Velodyne
    assert len(KittiRaw(tmp_path, frames=slice(2, 4), files=split)) == 2
    bad = tmp_path / "bad.txt"
    bad.write_text(f"2011_09_26/{DRIVE} 6 l\n")  # frame 6 does not exist
    with pytest.raises(DatasetError):
        KittiRaw(tmp_path, files=bad)


def test_parse_split_line():
    d = f"2011_09_26/{DRIVE}"
    assert parse_split_line(f"{d} 69 l") == (d, "0000000069", "l", None)
    assert parse_split_line(f"{d} 0000000069 r") == (d, "0000000069", "r", None)
    assert parse_split_line(f"{d}/image_03/data/0000000069.jpg") == (d, "0000000069", "r", None)
    gt = f"{DRIVE}/proj_depth/groundtruth/image_02/0000000069.png"
    assert parse_split_line(f"{d}/image_02/data/0000000069.png {gt} 721.5377") == (d, "0000000069", "l", gt)
    assert parse_split_line(f"{d}/image_02/data/0000000069.png None 721.5377")[3] is None
    assert parse_split_line("  ") is None and parse_split_line("# comment") is None
    for bad in ("garbage", f"{d} 69 x"):
        with pytest.raises(DatasetError):
            parse_split_line(bad)


def test_kitti_stereo_baseline_from_calib(kitti_dir):
    cc = read_kitti_calib(kitti_dir / "raw" / "calib_cam_to_cam.txt")
    assert kitti_stereo_baseline(cc, 2, 3) == pytest.approx(0.5327, abs=1e-3)
    assert kitti_stereo_baseline(cc, 3, 2) == pytest.approx(-kitti_stereo_baseline(cc, 2, 3))


# --------------------------------------------------------------------------- NYU sync (BTS)

def test_nyu_sync_from_real_frames(nyu_dir, tmp_path):
    root = tmp_path / "sync"
    for i, scene in ((0, "kitchen_0028b"), (1, "kitchen_0028b"), (2, "bathroom_0001")):
        _png(root / scene / f"rgb_{i + 1:05d}.jpg", cv2.imread(str(nyu_dir / f"image_{i}.png")))
        _link(nyu_dir / f"depth_{i}.png", root / scene / f"sync_depth_{i + 1:05d}.png")
    ds = open_dataset(root)
    assert isinstance(ds, NYUSync) and len(ds) == 3
    assert [s.name for s in ds] == ["bathroom_0001/rgb_00003", "kitchen_0028b/rgb_00001",
                                    "kitchen_0028b/rgb_00002"]
    s = ds[1]
    raw = cv2.imread(str(nyu_dir / "depth_0.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_allclose(s.depth, raw / 1000.0, rtol=1e-6)
    img = cv2.imread(str(nyu_dir / "image_0.png"))[..., ::-1].astype(int)
    assert s.rgb.shape == (480, 640, 3) and np.abs(s.rgb.astype(int) - img).mean() < 4  # JPEG
    np.testing.assert_allclose(s.K, [[518.8579, 0, 325.5824], [0, 519.4696, 253.7362], [0, 0, 1]])
    # one scene folder on its own
    assert len(NYUSync(root / "kitchen_0028b")) == 2
    # BTS file list: paths relative to root, fx in the third column, None = no depth
    lst = tmp_path / "nyudepthv2_train_files_with_gt.txt"
    lst.write_text("/kitchen_0028b/rgb_00002.jpg /kitchen_0028b/sync_depth_00002.png 518.8579\n"
                   "bathroom_0001/rgb_00003.jpg None 500.0\n")
    ds = NYUSync(root, files=lst)
    assert len(ds) == 2 and ds[0].name == "kitchen_0028b/rgb_00002"
    assert ds[0].K[0, 0] == ds[0].K[1, 1] == pytest.approx(518.8579)
    assert ds[1].depth is None and ds[1].K[0, 0] == 500.0
    lst.write_text("/missing/rgb_00001.jpg /missing/sync_depth_00001.png 518.8579\n")
    with pytest.raises(DatasetError):
        NYUSync(root, files=lst)


# --------------------------------------------------------------------------- NYU labelled .mat

def _write_labeled_mat(path: Path, images, depths, labels):
    """As MATLAB v7.3 stores H x W x C x N arrays: HDF5 sees them transposed."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        f["images"] = np.stack([im.transpose(2, 1, 0) for im in images])  # N x 3 x W x H
        f["depths"] = np.stack([d.T for d in depths])                     # N x W x H
        f["labels"] = np.stack([l.T for l in labels])                     # N x W x H


def test_nyu_labeled_mat(tmp_path):
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (4, 5, 3), dtype=np.uint8) for _ in range(3)]
    depths = [rng.uniform(0.5, 9.0, (4, 5)).astype(np.float32) for _ in range(3)]
    depths[0][0, 0] = 0.0
    labels = [rng.integers(0, 895, (4, 5)).astype(np.uint16) for _ in range(3)]
    mat = tmp_path / "nyu_depth_v2_labeled.mat"
    _write_labeled_mat(mat, images, depths, labels)
    for root in (mat, tmp_path):
        ds = open_dataset(root)
        assert isinstance(ds, NYULabeled) and len(ds) == 3
    s = ds[0]
    np.testing.assert_array_equal(s.rgb, images[0])
    assert s.rgb.shape == (4, 5, 3) and s.rgb.dtype == np.uint8
    assert np.isnan(s.depth[0, 0])
    np.testing.assert_allclose(s.depth.ravel()[1:], depths[0].ravel()[1:])
    np.testing.assert_array_equal(s.labels, labels[0])  # raw ids without a mapping
    assert s.labels.dtype == np.uint16 and s.name == "nyu_labeled_0000"
    np.testing.assert_allclose(s.K[0], [NYU_INTRINSICS[0], 0, NYU_INTRINSICS[2]])
    # 894 -> 40 mapping (as classMapping40.mat stores it: 894 entries for ids 1..894)
    table = (np.arange(1, 895) % 40 + 1).astype(np.float64)
    np.save(tmp_path / "map40.npy", table)
    for mapping in (tmp_path / "map40.npy", table, table[None, :]):
        mapped = NYULabeled(mat, label_mapping=mapping, indices=[2])[0]
        expect = np.where(labels[2] == 0, 0, labels[2] % 40 + 1)
        np.testing.assert_array_equal(mapped.labels, expect)
        assert mapped.labels.dtype == np.uint8 and mapped.name == "nyu_labeled_0002"
    with pytest.raises(DatasetError):
        load_label_mapping(np.arange(10))
    with pytest.raises(DatasetError):
        NYULabeled(mat, indices=[3])
    (tmp_path / "fake.mat").write_bytes(b"MATLAB 5.0 MAT-file, not HDF5")
    with pytest.raises(DatasetError):
        NYULabeled(tmp_path / "fake.mat")


# --------------------------------------------------------------------------- SYNTHIA

def test_synthia_layout(tmp_path):
    seq = tmp_path / "SYNTHIA-AL" / "train_01"
    rgb = _rgb_pattern(3, 4)
    _png(seq / "RGB" / "000000.png", rgb[..., ::-1])
    _png(seq / "RGB" / "000001.png", rgb[..., ::-1])
    cm = np.array([[0, 100, 250, 1000]] * 3, np.uint16)
    _png(seq / "Depth" / "000000.png", np.dstack([cm, cm, cm]))  # 3 identical 16-bit channels
    lab_r = np.array([[0, 1, 3, 15]] * 3, np.uint16)
    _png(seq / "Labels" / "000000.png", np.dstack([np.full_like(lab_r, 7), np.full_like(lab_r, 9), lab_r]))  # BGR: R = class
    (seq / "intrinsics.txt").write_text("532.7403 640 380\n")
    seq2 = tmp_path / "SYNTHIA-AL" / "test_01"
    _png(seq2 / "RGB" / "000005.png", rgb[..., ::-1])
    _png(seq2 / "Depth" / "000005.png", cm)
    (seq2 / "RGB" / "000005.K.txt").write_text("1 0 2\n0 1 1\n0 0 1\n")

    ds = open_dataset(tmp_path / "SYNTHIA-AL")
    assert isinstance(ds, Synthia) and len(ds) == 3
    assert [x.name for x in ds] == ["test_01/000005", "train_01/000000", "train_01/000001"]
    s0 = ds[1]
    np.testing.assert_array_equal(s0.rgb, rgb)
    assert np.isnan(s0.depth[0, 0])
    np.testing.assert_allclose(s0.depth[0, 1:], [1.0, 2.5, 10.0])  # centimetres -> metres
    np.testing.assert_array_equal(s0.labels, lab_r.astype(np.uint8))
    np.testing.assert_allclose(s0.K, [[532.7403, 0, 640], [0, 532.7403, 380], [0, 0, 1]])
    assert ds[0].K[0, 2] == 2 and ds[0].labels is None and ds[0].stamp_ns == STAMP_ORIGIN_NS + round(5e9 / 30)
    assert ds[2].depth is None
    # one sequence, published ids mapped to SYNTHIA_CLASSES, another depth scale
    one = Synthia(seq, label_map=SYNTHIA_SEQS_TO_CLASSES, depth_scale=0.001)
    s = one[0]
    assert s.name == "000000"
    np.testing.assert_array_equal(s.labels[0], [0, 1, 3, 13])  # traffic light 15 -> 13
    np.testing.assert_allclose(s.depth[0, 1:], [0.1, 0.25, 1.0])
    assert SYNTHIA_SEQS_TO_CLASSES.max() == 13  # 14 classes
    # no intrinsics at all
    (seq / "intrinsics.txt").unlink()
    with pytest.raises(DatasetError):
        Synthia(seq)
    assert Synthia(seq, K=np.eye(3))[0].K[0, 0] == 1.0


# --------------------------------------------------------------------------- Cityscapes

def test_cityscapes_layout(tmp_path):
    name = "aachen_000000_000019"
    city = tmp_path / "leftImg8bit" / "train" / "aachen"
    rgb = _rgb_pattern(2, 3, 2)
    _png(city / f"{name}_leftImg8bit.png", rgb[..., ::-1])
    _png(tmp_path / "rightImg8bit" / "train" / "aachen" / f"{name}_rightImg8bit.png", rgb)
    # p = 0 invalid, 1 -> zero disparity (invalid), 257 -> d = 1 px, 2561 -> d = 10 px, 513 -> 2 px
    disp = np.array([[0, 1, 257], [2561, 513, 65535]], np.uint16)
    _png(tmp_path / "disparity" / "train" / "aachen" / f"{name}_disparity.png", disp)
    cam = {"extrinsic": {"baseline": 0.2, "pitch": 0.04, "roll": 0, "yaw": 0, "x": 1.7, "y": 0.1, "z": 1.2},
           "intrinsic": {"fx": 2000.0, "fy": 2001.0, "u0": 1000.0, "v0": 500.0}}
    cpath = tmp_path / "camera" / "train" / "aachen" / f"{name}_camera.json"
    cpath.parent.mkdir(parents=True)
    cpath.write_text(json.dumps(cam))
    _png(tmp_path / "gtFine" / "train" / "aachen" / f"{name}_gtFine_labelIds.png",
         np.array([[7, 8, 26], [0, 11, 24]], np.uint8))
    # a val frame without camera file is skipped
    _png(tmp_path / "leftImg8bit" / "val" / "lindau" / "lindau_000000_000019_leftImg8bit.png", rgb)

    ds = open_dataset(tmp_path)
    assert isinstance(ds, Cityscapes) and len(ds) == 1
    s = ds[0]
    assert s.name == f"train/aachen/{name}"
    np.testing.assert_array_equal(s.rgb, rgb)
    # depth = baseline * fx / d = 400 / d
    expect = [[np.nan, np.nan, 400.0], [40.0, 200.0, 400.0 / ((65535 - 1) / 256.0)]]
    np.testing.assert_allclose(s.depth, expect, rtol=1e-6)
    np.testing.assert_allclose(s.K, [[2000, 0, 1000], [0, 2001, 500], [0, 0, 1]])
    np.testing.assert_array_equal(s.labels, [[7, 8, 26], [0, 11, 24]])
    assert s.rgb_right is None
    st = Cityscapes(tmp_path, split="train", stereo=True, labels=None)[0]
    assert st.baseline == 0.2 and st.labels is None
    np.testing.assert_array_equal(st.rgb_right, rgb[..., ::-1])
    with pytest.raises(DatasetError):
        Cityscapes(tmp_path, split="val")
    np.testing.assert_allclose(disparity_to_depth(np.array([[257]], np.uint16), 0.5, 100.0), [[50.0]])


# --------------------------------------------------------------------------- generic folder

def test_generic_folder_real_nyu_frames(nyu_dir, tmp_path):
    for i in range(2):
        _link(nyu_dir / f"image_{i}.png", tmp_path / "rgb" / f"{i:04d}.png")
        _link(nyu_dir / f"depth_{i}.png", tmp_path / "depth" / f"{i:04d}.png")
    (tmp_path / "intrinsics.txt").write_text(" ".join(map(str, NYU_INTRINSICS)))
    ds = open_dataset(tmp_path)
    assert isinstance(ds, ImageDepthFolder) and len(ds) == 2
    ref = open_dataset(nyu_dir)
    for i in range(2):
        a, b = ds[i], ref[[s.name for s in ref].index(f"image_{i}")]
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_array_equal(a.depth, b.depth)
        np.testing.assert_allclose(a.K, b.K)
    assert ds[1].stamp_ns - ds[0].stamp_ns == round(1e9 / 30)


def test_generic_folder_npy_labels_and_errors(tmp_path):
    rgb = _rgb_pattern(2, 3)
    _png(tmp_path / "image" / "a.jpg", rgb)
    _png(tmp_path / "image" / "b.png", rgb[..., ::-1])
    (tmp_path / "depth").mkdir()
    d = np.array([[1.5, np.nan, -1.0], [0.0, 2.0, np.inf]], np.float32)
    np.save(tmp_path / "depth" / "b.npy", d)
    _png(tmp_path / "labels" / "b.png", np.array([[1, 2, 3], [4, 5, 6]], np.uint8))
    with pytest.raises(DatasetError):  # no intrinsics
        ImageDepthFolder(tmp_path)
    K = np.array([[10.0, 0, 1], [0, 10, 1], [0, 0, 1]])
    ds = ImageDepthFolder(tmp_path, K=K)
    assert [s.name for s in ds] == ["a", "b"]
    assert ds[0].depth is None
    b = ds[1]
    np.testing.assert_array_equal(b.rgb, rgb)
    np.testing.assert_array_equal(np.isfinite(b.depth), [[1, 0, 0], [0, 1, 0]])
    assert b.depth[0, 0] == 1.5 and b.labels[1, 2] == 6
    np.testing.assert_array_equal(b.K, K)
    # uint16 PNG with a scale
    _png(tmp_path / "depth" / "a.png", np.array([[0, 256, 512], [1, 2, 3]], np.uint16))
    a = ImageDepthFolder(tmp_path, K=K, depth_scale=1 / 256)[0]
    np.testing.assert_allclose(a.depth[0], [np.nan, 1.0, 2.0])


def test_generic_folder_is_not_taken_for_other_layouts(tmp_path):
    """rgb_*.jpg names (NYU sync style) and case do not make a generic folder NYU or SYNTHIA."""
    _png(tmp_path / "rgb" / "rgb_00001.jpg", _rgb_pattern(2, 3))
    _png(tmp_path / "depth" / "rgb_00001.png", np.full((2, 3), 1000, np.uint16))
    (tmp_path / "intrinsics.txt").write_text("1 1 1 1")
    ds = open_dataset(tmp_path)
    assert isinstance(ds, ImageDepthFolder)
    np.testing.assert_allclose(ds[0].depth, 1.0)  # millimetres, not SYNTHIA centimetres


def test_read_intrinsics_formats(tmp_path):
    p = tmp_path / "k.txt"
    for text, fx, cy in (("1 0 3\n0 2 4\n0 0 1", 1, 4), ("1 2 3 4", 1, 4), ("5, 6, 7", 5, 7)):
        p.write_text(text)
        K = read_intrinsics(p)
        assert K.shape == (3, 3) and K[0, 0] == fx and K[1, 2] == cy and K[2, 2] == 1
    p.write_text("1 2")
    with pytest.raises(DatasetError):
        read_intrinsics(p)


# --------------------------------------------------------------------------- ROS 2 bag

def test_bag_dataset_equals_original_frames(seven_scenes_dir, tmp_path):
    originals = list(SevenScenes(seven_scenes_dir, frames=slice(0, 3)))
    bag = tmp_path / "bag"
    write_dataset_bag(originals, bag)
    ds = open_dataset(bag)
    assert isinstance(ds, BagDataset) and len(ds) == 3
    assert ds.frame_id == "camera_optical_frame"
    got = list(ds)
    for a, b in zip(got, originals):
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_array_equal(a.depth, b.depth)  # NaN where the original is NaN
        np.testing.assert_array_equal(a.K, b.K)
        assert a.stamp_ns == b.stamp_ns and a.name == str(b.stamp_ns)
    np.testing.assert_array_equal(ds[-1].rgb, originals[-1].rgb)  # random access
    assert len(BagDataset(bag, frames=slice(1, None))) == 2


def test_bag_dataset_custom_topics(tmp_path):
    """Own topic names, bgr8, one camera_info at its own stamp, no depth."""
    bag = tmp_path / "bag"
    K = np.array([[50.0, 0, 3], [0, 50, 2], [0, 0, 1]])
    rgb = _rgb_pattern(4, 6)
    t0 = STAMP_ORIGIN_NS
    with McapWriter(bag) as w:
        w.write("/cam/camera_info", camera_info_message(K, 6, 4, t0 - 5, "cam"), INFO_TYPE, t0 - 5)
        for i in range(2):
            msg = image_message(np.ascontiguousarray(rgb[..., ::-1]), "bgr8", t0 + i * 100, "cam")
            w.write("/cam/image_color", msg, IMAGE_TYPE, t0 + i * 100 + 7)  # log time != stamp
        w.write("/cam/depth/image", image_message(np.ones((4, 6), np.float32), "32FC1", t0, "cam"),
                IMAGE_TYPE, t0)
    ds = BagDataset(bag)  # image topic: the only non-depth Image topic
    assert ds.image_topic == "/cam/image_color" and ds.info_topic == "/cam/camera_info"
    assert ds.depth_topic is None and ds.frame_id == "cam"
    s = ds[1]
    np.testing.assert_array_equal(s.rgb, rgb)
    np.testing.assert_array_equal(s.K, K)
    assert s.stamp_ns == t0 + 100 and s.depth is None
    d = BagDataset(bag, depth_topic="/cam/depth/image")
    assert d[0].depth is not None and np.all(d[0].depth == 1.0) and d[1].depth is None
    with pytest.raises(DatasetError):
        BagDataset(bag, image_topic="/nope")


def test_bag_dataset_scales_K_to_the_image(tmp_path):
    """camera_info for 12x8 with a 6x4 image: K is the image's (halved), not the camera_info's."""
    bag = tmp_path / "bag"
    K = np.array([[50.0, 0, 5.5], [0, 50, 3.5], [0, 0, 1]])
    t0 = STAMP_ORIGIN_NS
    with McapWriter(bag) as w:
        w.write("/cam/camera_info", camera_info_message(K, 12, 8, t0, "cam"), INFO_TYPE, t0)
        w.write("/cam/image_raw", image_message(_rgb_pattern(4, 6), "rgb8", t0, "cam"), IMAGE_TYPE, t0)
    np.testing.assert_allclose(BagDataset(bag)[0].K, [[25.0, 0, 2.5], [0, 25, 1.5], [0, 0, 1]])


# --------------------------------------------------------------------------- open_dataset

def test_open_dataset_lists_every_reader(tmp_path):
    with pytest.raises(DatasetError) as exc:
        open_dataset(tmp_path)
    for reader in readers():
        assert reader.__name__ in str(exc.value)
    with pytest.raises(DatasetError):
        open_dataset(tmp_path / "missing.mat")


def test_existing_layouts_still_detected_first(seven_scenes_dir, nyu_dir, kitti_dir):
    assert type(open_dataset(seven_scenes_dir, slice(0, 1))) is SevenScenes
    assert type(open_dataset(kitti_dir)) is KittiFrame
    assert readers()[:3] == (SevenScenes, type(open_dataset(nyu_dir)), KittiFrame)
