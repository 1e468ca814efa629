"""Indoor rooms (``synth --scene indoor``, ``tools/synth/indoor.py``): determinism, exact depth on
a plane, intrinsics, the on-disk layout (millimetre depth read back by ``Synthia``) and the
training-split rule for photo textures.

Light on purpose (2 shared CPU cores): tiny images, a handful of frames.
"""

import json
import math

import cv2
import numpy as np
import pytest

p = pytest.importorskip("pybullet")

from mono_depth_ros.tools import synth  # noqa: E402
from synth_helpers import quat  # noqa: E402
from mono_depth_ros.tools.synth.indoor import IndoorScene, photo_files  # noqa: E402

W, H = 96, 72


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Two fake training photographs (frames 3 and 799) and one evaluation frame (800)."""
    d = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for n in (3, 799, 800):
        cv2.imwrite(str(d / f"frame-{n:06d}.color.jpg"), rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
        cv2.imwrite(str(d / f"frame-{n:06d}.depth.png"), np.ones((60, 80), np.uint16))
    return d


def test_photo_textures_come_from_the_training_split_only(photos):
    names = [f.name for f in photo_files(photos, (0, 800))]
    assert names == ["frame-000003.color.jpg", "frame-000799.color.jpg"]
    assert photo_files(None) == []


def test_same_seed_same_room_and_views(photos):
    files = photo_files(photos)
    with IndoorScene(4, W, H, photos=files) as a, IndoorScene(4, W, H, photos=files) as b:
        assert (a.width, a.height) == (b.width, b.height)
        np.testing.assert_array_equal(a.K, b.K)
        pa, pb = a.view(3)[0], b.view(3)[0]
        np.testing.assert_array_equal(pa, pb)
        ra, rb = a.render(pa), b.render(pb)
        for x, y in zip(ra, rb):
            np.testing.assert_array_equal(x, y)
        assert a.describe() == b.describe()
    with IndoorScene(5, W, H, photos=files) as c:
        assert c.room != a.room


def test_views_respect_the_camera_ranges():
    with IndoorScene(2, W, H, photos=[]) as s:
        room = s.room
        for t in range(6):
            pose, cam = s.view(t)
            assert synth.INDOOR_HEIGHT_RANGE[0] <= cam["height_m"] <= synth.INDOOR_HEIGHT_RANGE[1]
            assert 0 < pose[0, 3] < room["length_m"] and 0 < pose[1, 3] < room["width_m"]
            np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-9)
        assert synth.INDOOR_FOV_RANGE[0] <= s.camera["fov_h_deg"] <= synth.INDOOR_FOV_RANGE[1]




def _plate(cid, pose, center_cam, half_xy, half_z=0.001):
    """A thin box facing the camera of ``pose`` at camera-frame ``center_cam`` (m)."""
    R = pose[:3, :3]
    box_R = np.stack([R[:, 2], R[:, 0], R[:, 1]], axis=1)  # box x = optical axis
    q = quat(box_R)
    centre = R @ np.asarray(center_cam, float) + pose[:3, 3]
    vs = p.createVisualShape(p.GEOM_BOX, halfExtents=[half_z, half_xy[0], half_xy[1]],
                             rgbaColor=[0, 1, 0, 1], physicsClientId=cid)
    return p.createMultiBody(0, -1, vs, basePosition=centre.tolist(), baseOrientation=q,
                             physicsClientId=cid)


def test_depth_is_exact_on_a_plane_and_K_predicts_pixels():
    """A plate 0.1 m in front of a room view fills the frame at exactly 0.1 m z-depth; a small
    marker 2 m away covers the pixels K predicts."""
    with IndoorScene(6, W, H, photos=[]) as s:
        pose = s.view(0)[0]
        body = _plate(s.client, pose, [0.0, 0.0, 0.101], (1.0, 1.0))
        _, depth, _, K = s.render(pose)
        np.testing.assert_allclose(depth, 0.1, atol=2e-4)
        np.testing.assert_allclose(K, synth.projection_to_K(s.projection, s.width, s.height), rtol=1e-5)
        p.removeBody(body, physicsClientId=s.client)
        # marker at a known camera-frame position, seen against a plate behind it
        back = _plate(s.client, pose, [0.0, 0.0, 0.3], (2.0, 2.0))
        center, half = np.array([0.037, -0.021, 0.2]), (0.02, 0.015)
        marker = _plate(s.client, pose, center, half)
        rgb, depth, labels, K = s.render(pose)
        _, _, rgba, _, seg = p.getCameraImage(s.width, s.height, synth.render._view_matrix(pose),
                                              s.projection, renderer=p.ER_TINY_RENDERER,
                                              physicsClientId=s.client)
        seg = np.asarray(seg).reshape(s.height, s.width)
        ys, xs = np.nonzero(seg == marker)
        Z = center[2] - 0.001
        u = K[0, 0] * (center[0] + np.array([-half[0], half[0]])) / Z + K[0, 2]
        v = K[1, 1] * (center[1] + np.array([-half[1], half[1]])) / Z + K[1, 2]
        assert abs(xs.min() - math.ceil(u[0])) <= 1 and abs(xs.max() - math.floor(u[1])) <= 1
        assert abs(ys.min() - math.ceil(v[0])) <= 1 and abs(ys.max() - math.floor(v[1])) <= 1
        # the front face; silhouette pixels may show the 2 mm thick sides
        assert np.median(depth[seg == marker]) == pytest.approx(Z, abs=1e-4)
        np.testing.assert_allclose(depth[seg == marker], Z, atol=2.5e-3)
        assert np.median(depth[seg == back]) == pytest.approx(0.299, abs=1e-4)


def test_generate_writes_mm_depth_that_synthia_reads_back(tmp_path, photos):
    from mono_depth_ros.data import Synthia, open_dataset
    res = synth.generate(tmp_path / "a", 4, seed=3, width=W, height=H, scene="indoor",
                         sequence_length=2, photos=photos)
    assert res["scene"] == "indoor" and res["photos"] == 2 and res["sequences"] == 2
    assert res["generator_version"] == synth.INDOOR_GENERATOR_VERSION
    assert set(res["class_frames"]) == set(synth.INDOOR_CLASS_NAMES)
    info = json.loads((tmp_path / "a" / "seq_0001" / "scene.json").read_text())
    assert info["generator"] == "indoor" and info["depth_scale"] == 0.001
    assert info["generator_version"] == synth.INDOOR_GENERATOR_VERSION and info["run_seed"] == 3
    ds = open_dataset(tmp_path / "a")
    assert isinstance(ds, Synthia) and len(ds) == 4
    s = ds[3]
    with IndoorScene(synth.scene_seed(3, 1), W, H, photos=photo_files(photos)) as scene:
        rgb, depth, labels, K = scene.render(scene.view(1)[0])
    np.testing.assert_array_equal(s.rgb, rgb)
    np.testing.assert_allclose(s.K, K)
    ok = np.isfinite(depth)
    np.testing.assert_allclose(s.depth[ok], depth[ok], atol=0.0006)  # millimetres, not centimetres
    np.testing.assert_array_equal(s.labels, labels)
    # byte-identical for the same seed
    synth.generate(tmp_path / "b", 4, seed=3, width=W, height=H, scene="indoor", sequence_length=2,
                   photos=photos)
    for f in sorted((tmp_path / "a").rglob("*.png")):
        assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes(), f


def test_encode_depth_marks_missing_depth_invalid():
    d = np.array([[0.5, np.nan], [np.inf, 70.0]], np.float32)
    np.testing.assert_array_equal(synth.encode_depth(d, 0.001), [[500, 0], [0, 65535]])
    np.testing.assert_array_equal(synth.encode_depth(np.array([0.0, 1.234])), [1, 123])  # street: cm


def test_bad_scene_and_photo_folder(tmp_path):
    with pytest.raises(ValueError, match="unknown scene"):
        synth.generate(tmp_path / "x", 1, scene="moon")
    with pytest.raises(ValueError, match="photo folder"):
        synth.generate(tmp_path / "x", 1, scene="indoor", photos=tmp_path / "missing")


def test_cli_synth_indoor(tmp_path, capsys, photos):
    from mono_depth_ros.tools import cli
    with pytest.raises(SystemExit) as exc:
        cli.main(["synth", str(tmp_path / "o"), "--scene", "indoor", "--frames", "2", "--width", "64",
                  "--height", "48", "--photos", str(photos)])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "scene indoor, generator version" in text and "2 photo(s)" in text and "frames/s" in text
    assert len(list((tmp_path / "o" / "seq_0000" / "Depth").glob("*.png"))) == 2


def test_windows_have_the_depth_of_their_pane_not_of_the_view_outside():
    """Generator v2: a Kinect-like sensor sees a window's pane, not the backdrop 3-12 m outside
    (v1 taught the backdrop). Every window-backdrop pixel back-projects to a point at most the
    deepest reveal (0.25 m) outside the room's walls; room 1 view 0 looks at a window."""
    with IndoorScene(1, 160, 120, photos=[], size_jitter=False) as s:
        pose = s.view(0)[0]
        _, depth, _, K = s.render(pose)
        body = s._raw(pose, seg=True)[2] & synth.render._MASK24
        backdrop = np.isin(body, list(s._glass))
        assert backdrop.sum() > 100
        assert np.isfinite(depth[backdrop]).mean() > 0.95
        vs, us = np.nonzero(backdrop & np.isfinite(depth))
        z = depth[vs, us].astype(float)
        cam = np.stack([(us - K[0, 2]) / K[0, 0] * z, (vs - K[1, 2]) / K[1, 1] * z, z])
        world = pose[:3, :3] @ cam + pose[:3, 3:4]
        L, D = s.room["length_m"], s.room["width_m"]
        outside = np.maximum.reduce([-world[0], world[0] - L, -world[1], world[1] - D])
        assert outside.max() <= 0.25 + 0.01
        assert outside.min() >= 0.0 - 0.01  # on the outer side of the wall plane, in the reveal
