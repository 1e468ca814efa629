"""Synthetic SYNTHIA-style streets (``mono_depth_ros.tools.synth``): depth conversion, intrinsics,
classes, determinism, the on-disk layout read back by ``Synthia``, stereo geometry.

Light on purpose (2 shared CPU cores): a handful of 320x192 frames, one 20-frame sequence
shared by the street tests.
"""

import math

import cv2
import numpy as np
import pytest

p = pytest.importorskip("pybullet")

from mono_depth_ros.tools import synth  # noqa: E402
from mono_depth_ros.tools.synth.render import _view_matrix as view_matrix  # noqa: E402
from synth_helpers import quat, render_frame  # noqa: E402

W, H = 320, 192




@pytest.fixture
def client():
    cid = p.connect(p.DIRECT)
    yield cid
    p.disconnect(cid)


def _plate(cid, pose, center_cam, half_xy, rgba=(0, 1, 0, 1)):
    """A thin plate facing the camera of ``pose``, centred at ``center_cam`` (camera frame, m),
    edges along the image axes; returns its body id."""
    R = pose[:3, :3]
    box_R = np.stack([R[:, 2], R[:, 0], R[:, 1]], axis=1)  # box x = optical axis (thin)
    centre = pose[:3, :3] @ np.asarray(center_cam, float) + pose[:3, 3]
    vs = p.createVisualShape(p.GEOM_BOX, halfExtents=[0.001, half_xy[0], half_xy[1]],
                             rgbaColor=list(rgba), physicsClientId=cid)
    return p.createMultiBody(0, -1, vs, basePosition=centre.tolist(), baseOrientation=quat(box_R),
                             physicsClientId=cid)


def _render(cid, pose, fov_y, w=W, h=H, flags=0):
    proj = p.computeProjectionMatrixFOV(fov_y, w / h, synth.NEAR, synth.FAR)
    _, _, rgba, buf, seg = p.getCameraImage(w, h, view_matrix(pose), proj, flags=flags,
                                            renderer=p.ER_TINY_RENDERER, physicsClientId=cid)
    return (np.asarray(rgba, np.uint8).reshape(h, w, 4), np.asarray(buf, np.float32).reshape(h, w),
            np.asarray(seg).reshape(h, w), proj)


# ----------------------------------------------------------------------------- geometry
def test_opengl_depth_formula():
    near, far = 0.2, 1000.0
    b = np.array([0.0, 1.0, 0.5])
    z = synth.opengl_depth_to_metric(b, near, far)
    assert z.dtype == np.float32
    assert z[0] == pytest.approx(near) and z[1] == pytest.approx(far)
    # round trip through the forward OpenGL mapping
    zs = np.array([0.5, 7.5, 42.0, 300.0])
    bs = far / (far - near) * (1.0 - near / zs)
    np.testing.assert_allclose(synth.opengl_depth_to_metric(bs, near, far), zs, rtol=1e-5)
    with pytest.raises(ValueError):
        synth.opengl_depth_to_metric(b, 1.0, 1.0)


def test_depth_of_plane_at_7p5_m(client):
    pose = synth.camera_pose((0.0, 0.0, 1.5))  # looking along +x
    vs = p.createVisualShape(p.GEOM_BOX, halfExtents=[0.5, 20, 20], rgbaColor=[1, 0, 0, 1],
                             physicsClientId=client)
    body = p.createMultiBody(0, -1, vs, basePosition=[8.0, 0, 1.5], physicsClientId=client)
    _, buf, seg, _ = _render(client, pose, 60.0)
    on = seg == body
    assert on.mean() > 0.99
    z = synth.opengl_depth_to_metric(buf[on], synth.NEAR, synth.FAR)
    assert np.abs(z - 7.5).max() < 1e-3


@pytest.mark.parametrize("fov_y,w,h", [(40.0, W, H), (62.0, W, H), (55.0, 65, 49)])
def test_K_predicts_rendered_pixels(client, fov_y, w, h):
    """Plates at known camera-frame positions cover exactly the pixels K predicts
    (TinyRenderer samples at integer pixel positions: ceil(lo) .. floor(hi))."""
    pose = synth.camera_pose((1.0, -2.0, 1.6), yaw_deg=12.0, pitch_deg=-7.0)
    f = (h / 2) / math.tan(math.radians(fov_y) / 2)
    K_expected = np.array([[f, 0, w / 2], [0, f, h / 2 - 1], [0, 0, 1]])
    proj = p.computeProjectionMatrixFOV(fov_y, w / h, synth.NEAR, synth.FAR)
    K = synth.projection_to_K(proj, w, h)
    np.testing.assert_allclose(K, K_expected, rtol=1e-5)
    checked = 0
    for center in ([0.37, 0.21, 3.0], [-0.7, -0.4, 4.3], [1.1, 0.5, 6.2], [-0.05, 0.33, 2.5]):
        p.resetSimulation(physicsClientId=client)
        half = (0.25, 0.2)
        body = _plate(client, pose, center, half)
        _, _, seg, _ = _render(client, pose, fov_y, w, h)
        ys, xs = np.nonzero(seg == body)
        assert xs.size > 0
        Z = center[2] - 0.001  # the plate's front face
        u = K[0, 0] * (center[0] + np.array([-half[0], half[0]])) / Z + K[0, 2]
        v = K[1, 1] * (center[1] + np.array([-half[1], half[1]])) / Z + K[1, 2]
        edges = np.concatenate([u, v])
        if np.any(np.abs(edges - np.round(edges)) < 0.02):
            continue  # an edge on a sample position: coverage there is a tie
        assert (xs.min(), xs.max()) == (math.ceil(u[0]), math.floor(u[1]))
        assert (ys.min(), ys.max()) == (math.ceil(v[0]), math.floor(v[1]))
        checked += 1
    assert checked >= 3


def test_stereo_pose_disparity_on_marker(client):
    """The right camera (stereo_pose) sees a point at depth Z shifted left by fx B / Z."""
    pose = synth.camera_pose((0.0, -1.7, 1.5), yaw_deg=3.0, pitch_deg=-4.0)
    right = synth.stereo_pose(pose, synth.STEREO_BASELINE)
    np.testing.assert_allclose(right[:3, 3] - pose[:3, 3], synth.STEREO_BASELINE * pose[:3, 0])
    fov_y = 45.0
    K = synth.projection_to_K(p.computeProjectionMatrixFOV(fov_y, W / H, synth.NEAR, synth.FAR), W, H)
    half = 0.29
    checked = 0
    for Z in (4.0, 5.3, 7.1, 11.7):
        p.resetSimulation(physicsClientId=client)
        body = _plate(client, pose, [0.37, 0.1, Z], (half, half))
        _, _, seg_l, _ = _render(client, pose, fov_y)
        _, _, seg_r, _ = _render(client, right, fov_y)
        Zf = Z - 0.001  # front face
        u_left = K[0, 0] * (0.37 + np.array([-half, half])) / Zf + K[0, 2]
        u_right = u_left - K[0, 0] * synth.STEREO_BASELINE / Zf  # shifted by the disparity
        yl, xl = np.nonzero(seg_l == body)
        yr, xr = np.nonzero(seg_r == body)
        assert (yl.min(), yl.max()) == (yr.min(), yr.max())  # rectified: same rows
        edges = np.concatenate([u_left, u_right])
        if np.any(np.abs(edges - np.round(edges)) < 0.02):
            continue
        assert (xl.min(), xl.max()) == (math.ceil(u_left[0]), math.floor(u_left[1]))
        assert (xr.min(), xr.max()) == (math.ceil(u_right[0]), math.floor(u_right[1]))
        checked += 1
    assert checked >= 3


def test_class_table_matches_valdez():
    valdez = pytest.importorskip("mono_depth_ros.models.valdez")
    assert synth.CLASS_NAMES == tuple(valdez.SYNTHIA_CLASSES)
    assert synth.SKY == valdez.SYNTHIA_CLASSES.index("Sky")


def test_trajectory_is_a_smooth_30hz_drive():
    with synth.StreetScene(5, 64, 48, length=60.0) as scene:
        poses = np.stack(scene.trajectory(40))
        assert 50 <= scene.camera["fov_h_deg"] <= 90
    pos = poses[:, :3, 3]
    step = np.linalg.norm(np.diff(pos, axis=0), axis=1)
    assert np.all((step > 0.25) & (step < 0.56))
    assert np.all((pos[:, 2] >= 1.19) & (pos[:, 2] <= 2.02))
    fwd = poses[:, :3, 2]
    pitch = np.degrees(np.arcsin(fwd[:, 2]))
    assert np.all((pitch >= -10.001) & (pitch <= 5.001))
    assert np.abs(np.diff(pitch)).max() < 0.5  # slow drift, no jumps
    for T in poses:  # proper rotations
        np.testing.assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-9)
        assert np.linalg.det(T[:3, :3]) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- streets
N_FRAMES = 20


@pytest.fixture(scope="module")
def street(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "streets"
    res = synth.generate(out, N_FRAMES, seed=0, width=W, height=H, stereo=True,
                         sequence_length=N_FRAMES)
    return out, res


def test_generate_reports(street):
    out, res = street
    assert res["frames"] == N_FRAMES and res["sequences"] == 1
    assert res["paths"] == [str(out / "seq_0000")]
    assert res["fps"] > 0 and res["render_fps"] > 0
    seq = out / "seq_0000"
    for d in ("RGB", "Depth", "Labels", "RGB_right", "Pose"):
        assert len(list((seq / d).glob("*.png" if d != "Pose" else "*.txt"))) == N_FRAMES, d
    assert len(list((seq / "RGB").glob("*.K.txt"))) == N_FRAMES
    assert float((seq / "baseline.txt").read_text()) == pytest.approx(0.54)


def test_all_14_classes_and_label_range(street):
    out, res = street
    seen = np.zeros(14, bool)
    for f in sorted((out / "seq_0000" / "Labels").glob("*.png")):
        lab = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        assert lab.dtype == np.uint8 and lab.ndim == 2 and lab.shape == (H, W)
        assert lab.max() <= 13
        seen[np.unique(lab)] = True
        depth = cv2.imread(str(f).replace("Labels", "Depth"), cv2.IMREAD_UNCHANGED)
        assert depth.dtype == np.uint16 and depth.shape == (H, W)
        assert depth.min() > 50  # > 0.5 m: the camera never drives into an object
        np.testing.assert_array_equal(lab == synth.SKY, depth == 65535)  # sky <=> far plane
    missing = [synth.CLASS_NAMES[i] for i in np.nonzero(~seen)[0]]
    assert not missing, f"classes never visible: {missing}"
    assert all(v > 0 for v in res["class_frames"].values())


def test_folder_loads_as_synthia_and_matches_render(street):
    from mono_depth_ros.data import Synthia, open_dataset
    out, _ = street
    ds = open_dataset(out)
    assert isinstance(ds, Synthia) and len(ds) == N_FRAMES
    for i in (0, 13):
        s = ds[i]
        ref = render_frame(seed=0, index=i, width=W, height=H, sequence_length=N_FRAMES)
        assert s.name == f"seq_0000/{i:06d}"
        np.testing.assert_array_equal(s.rgb, ref["rgb"])
        np.testing.assert_array_equal(s.labels, ref["labels"])
        np.testing.assert_allclose(s.K, ref["K"], rtol=1e-9)
        assert not np.isnan(s.depth).any()  # 0 (invalid) is never written
        np.testing.assert_allclose(s.depth, ref["depth"], atol=0.005 + 1e-4)
        pose = np.loadtxt(out / "seq_0000" / "Pose" / f"{i:06d}.txt")
        np.testing.assert_allclose(pose, ref["pose"], atol=1e-8)
        # sky: the Sky class, exactly at the far-plane depth clipped to the encoding
        sky = s.labels == synth.SKY
        assert sky.any()
        assert np.all(ref["depth"][sky] == np.float32(synth.SKY_DEPTH))
        np.testing.assert_allclose(s.depth[sky], 655.35, atol=1e-3)
        assert ref["depth"][~sky].max() <= synth.MAX_GEOMETRY_DEPTH + 1e-3
        assert ref["depth"][~sky].min() >= synth.NEAR


def test_stereo_right_image_matches_disparity(street):
    """Warping the right image by fx B / Z onto the left one explains it much better than no
    shift (and than the wrong direction)."""
    from mono_depth_ros.data import open_dataset
    out, _ = street
    s = open_dataset(out)[5]
    right = cv2.imread(str(out / "seq_0000" / "RGB_right" / "000005.png"))[..., ::-1]
    B = float((out / "seq_0000" / "baseline.txt").read_text())
    vv, uu = np.mgrid[0:H, 0:W]
    near = (s.depth < 40) & (s.labels != synth.SKY)
    disp = s.K[0, 0] * B / s.depth

    def err(sign):
        ur = np.round(uu - sign * disp).astype(int)
        ok = near & (ur >= 0) & (ur < W)
        diff = np.abs(s.rgb[ok].astype(int) - right[vv[ok], ur[ok]].astype(int)).sum(1)
        return float(np.median(diff)), float(np.mean(diff < 20))

    e_true, frac_true = err(+1)
    e_zero, _ = err(0)
    e_wrong, _ = err(-1)
    assert frac_true > 0.8
    assert e_true < 0.5 * e_zero and e_true < 0.5 * e_wrong


def test_same_seed_byte_identical(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    synth.generate(a, 2, seed=7, width=96, height=64, sequence_length=2, stereo=True)
    synth.generate(b, 2, seed=7, width=96, height=64, sequence_length=2, stereo=True)
    files_a = sorted(f.relative_to(a) for f in a.rglob("*") if f.is_file())
    files_b = sorted(f.relative_to(b) for f in b.rglob("*") if f.is_file())
    assert files_a == files_b and len(files_a) == 1 + 1 + 1 + 2 * 6  # json, K, baseline, frames
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    c = tmp_path / "c"
    synth.generate(c, 1, seed=8, width=96, height=64, sequence_length=2)
    assert (c / "seq_0000/RGB/000000.png").read_bytes() != (a / "seq_0000/RGB/000000.png").read_bytes()


def test_cli_synth(tmp_path, capsys):
    from mono_depth_ros.tools import cli
    with pytest.raises(SystemExit) as exc:
        cli.main(["synth", str(tmp_path / "o"), "--frames", "2", "--seed", "1", "--width", "96",
                  "--height", "64", "--sequence-length", "2"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "wrote 2 frames in 1 sequence(s) at 96x64" in text
    assert "frames/s" in text
    assert len(list((tmp_path / "o" / "seq_0000" / "Depth").glob("*.png"))) == 2


def test_bad_arguments():
    with pytest.raises(ValueError):
        synth.generate("/nonexistent/never", 0)
    with pytest.raises(ValueError):
        synth.projection_to_K([0.0] * 15, W, H)


def test_stereo_sequence_loads_as_pairs(tmp_path):
    """`synth --stereo` output reads back with rgb_right and the signed baseline."""
    from mono_depth_ros.data import open_dataset
    from mono_depth_ros.tools.synth import generate
    generate(tmp_path / "st", frames=2, seed=3, width=160, height=96, stereo=True, sequence_length=2)
    ds = open_dataset(tmp_path / "st", stereo=True)
    s = ds[0]
    assert s.rgb_right is not None and s.rgb_right.shape == s.rgb.shape
    assert abs(s.baseline - 0.54) < 1e-9 and s.pose is not None and s.pose.shape == (4, 4)
    assert not np.array_equal(s.rgb, s.rgb_right)
