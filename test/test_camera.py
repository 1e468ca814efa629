"""camera_info -> the image's camera (binning, ROI, distortion) as image_geometry does it."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from mono_depth_ros.core.camera import Rectifier, camera_model, output_camera_info
from mono_depth_ros.core.geometry import InvalidCameraInfo


def _info(w=1000, h=800, fx=500.0, fy=510.0, cx=500.0, cy=400.0, d=(), model="plumb_bob",
          binning=(0, 0), roi=(0, 0, 0, 0), p=None):
    k = [fx, 0, cx, 0, fy, cy, 0, 0, 1]
    p = p if p is not None else [fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0]
    return SimpleNamespace(width=w, height=h, k=np.array(k), d=list(d), r=np.eye(3).ravel(),
                           p=np.array(p, float), distortion_model=model,
                           binning_x=binning[0], binning_y=binning[1],
                           roi=SimpleNamespace(x_offset=roi[0], y_offset=roi[1], width=roi[2],
                                               height=roi[3], do_rectify=False))


def test_full_image_keeps_K():
    cam = camera_model(_info(), 1000, 800)
    np.testing.assert_array_equal(cam.K, np.array([[500, 0, 500], [0, 510, 400], [0, 0, 1]]))
    assert not cam.needs_rectification and cam.warnings == ()


def test_roi_crop_shifts_the_principal_point_and_keeps_the_focal():
    """The review's case: a 400x300 ROI of a 1000x800 sensor. Rescaling K by the size ratio
    gave fx 200; the ROI keeps fx 500 and moves the principal point."""
    cam = camera_model(_info(roi=(100, 50, 400, 300)), 400, 300)
    assert cam.K[0, 0] == 500.0 and cam.K[1, 1] == 510.0
    assert (cam.K[0, 2], cam.K[1, 2]) == (400.0, 350.0)
    assert (cam.P[0, 2], cam.P[1, 2]) == (400.0, 350.0)


def test_binning_divides_the_intrinsics():
    cam = camera_model(_info(binning=(2, 2)), 500, 400)
    np.testing.assert_allclose(cam.K, [[250, 0, 250], [0, 255, 200], [0, 0, 1]])
    both = camera_model(_info(binning=(2, 4), roi=(100, 80, 400, 320)), 200, 80)
    np.testing.assert_allclose(both.K, [[250, 0, 200], [0, 127.5, 80], [0, 0, 1]])


def test_another_aspect_ratio_is_refused_and_a_uniform_rescale_warned():
    with pytest.raises(InvalidCameraInfo) as err:
        camera_model(_info(w=640, h=480, fx=500, fy=500, cx=320, cy=240), 640, 360)
    assert err.value.reason == "camera_info_size_mismatch"
    cam = camera_model(_info(w=640, h=480, fx=500, fy=500, cx=319.5, cy=239.5), 320, 240)
    np.testing.assert_allclose(cam.K, [[250, 0, 159.5], [0, 250, 119.5], [0, 0, 1]])
    assert [r for r, _ in cam.warnings] == ["camera_info_rescaled"]


def test_bad_intrinsics_name_the_field():
    with pytest.raises(InvalidCameraInfo) as err:
        camera_model(_info(cx=float("nan")), 1000, 800)
    assert err.value.reason == "nonfinite_intrinsics" and "cx=nan" in str(err.value)
    with pytest.raises(InvalidCameraInfo) as err:
        camera_model(_info(fx=0.0), 1000, 800)
    assert err.value.reason == "zero_intrinsics"
    with pytest.raises(InvalidCameraInfo) as err:
        camera_model(_info(d=(0.1, 0, 0, 0), model="weird_model"), 1000, 800)
    assert err.value.reason == "unsupported_distortion"


DISTORTIONS = {
    "plumb_bob": (-0.28, 0.07, 0.001, -0.0005, 0.0),
    "rational_polynomial": (-0.2, 0.05, 0.0005, 0.0002, 0.0, 0.1, -0.02, 0.01),
    "equidistant": (0.05, -0.01, 0.002, -0.0005),
}


def _dot_image(w, h, K, D, model, pts):
    """Black image with white dots where the distorted camera sees ``pts`` (N x 3, camera frame)."""
    rvec = tvec = np.zeros(3)
    if model == "equidistant":
        uv, _ = cv2.fisheye.projectPoints(pts.reshape(-1, 1, 3), rvec, tvec, K, np.array(D))
    else:
        uv, _ = cv2.projectPoints(pts, rvec, tvec, K, np.array(D))
    img = np.zeros((h, w, 3), np.uint8)
    for u, v in uv.reshape(-1, 2):
        cv2.circle(img, (int(round(u * 16)), int(round(v * 16))), 3 * 16, (255, 255, 255), -1,
                   lineType=cv2.LINE_AA, shift=4)
    return img


@pytest.mark.parametrize("model", sorted(DISTORTIONS))
def test_rectified_image_is_a_pinhole_image(model):
    """Dots seen through a distorting lens land, after rectification, where the pinhole camera
    of P projects them (within 0.35 px), while the raw image is off by pixels."""
    w, h = 320, 240
    K = np.array([[250.0, 0, 160.0], [0, 250.0, 120.0], [0, 0, 1]])
    gx, gy = np.meshgrid(np.linspace(-0.45, 0.45, 5), np.linspace(-0.32, 0.32, 4))
    pts = np.stack([gx.ravel(), gy.ravel(), np.ones(gx.size)], axis=1) * 3.0
    info = _info(w, h, 250.0, 250.0, 160.0, 120.0, DISTORTIONS[model], model)
    cam = camera_model(info, w, h)
    assert cam.needs_rectification
    raw = _dot_image(w, h, K, DISTORTIONS[model], model, pts)
    rect = Rectifier().rectify(raw, cam)
    expected = (pts[:, :2] / pts[:, 2:]) * 250.0 + [160.0, 120.0]
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(
        (rect[..., 0] > 60).astype(np.uint8))
    found = centroids[1:]
    assert n - 1 == len(expected)
    err = np.min(np.linalg.norm(found[:, None] - expected[None], axis=2), axis=0)
    assert err.max() < 0.35, err
    n_raw, _, _, c_raw = cv2.connectedComponentsWithStats((raw[..., 0] > 60).astype(np.uint8))
    raw_err = np.min(np.linalg.norm(c_raw[1:, None] - expected[None], axis=2), axis=0)
    assert raw_err.max() > 2.0  # the test would notice a rectifier that does nothing


def test_rectification_maps_are_cached_per_camera():
    r = Rectifier()
    cam = camera_model(_info(320, 240, 250, 250, 160, 120, DISTORTIONS["plumb_bob"]), 320, 240)
    m1 = r.maps(cam)
    assert r.maps(cam) is m1
    other = camera_model(_info(320, 240, 260, 250, 160, 120, DISTORTIONS["plumb_bob"]), 320, 240)
    assert r.maps(other) is not m1
    plain = camera_model(_info(320, 240, 250, 250, 160, 120), 320, 240)
    img = np.zeros((240, 320, 3), np.uint8)
    assert r.rectify(img, plain) is img


def test_output_camera_info_describes_the_published_image():
    cam = camera_model(_info(binning=(2, 2), roi=(100, 80, 400, 320),
                             d=DISTORTIONS["plumb_bob"]), 200, 160)
    out = output_camera_info(cam)
    assert (out["width"], out["height"]) == (200, 160)
    assert out["d"] == [0.0] * 5 and out["binning_x"] == out["binning_y"] == 0
    np.testing.assert_allclose(np.reshape(out["k"], (3, 3)), cam.P[:, :3])
    np.testing.assert_allclose(np.reshape(out["r"], (3, 3)), np.eye(3))
    np.testing.assert_allclose(np.reshape(out["p"], (3, 4))[:, :3], np.reshape(out["k"], (3, 3)))
    plain = output_camera_info(camera_model(_info(roi=(100, 50, 400, 300)), 400, 300))
    assert plain["k"][2] == 400.0 and plain["k"][0] == 500.0


def test_rectification_aims_at_P_not_K():
    """camera_calibration writes P != K (its alpha-0 focal and centre). Dots seen through the
    lens land, after rectification, where P projects them (maps aimed at K would put them tens
    of pixels off here), and output_K is P's."""
    w, h, model = 320, 240, "plumb_bob"
    D = DISTORTIONS[model]
    K = np.array([[250.0, 0, 160.0], [0, 262.0, 120.0], [0, 0, 1]])
    P = np.array([[205.0, 0, 150.0, 0], [0, 214.0, 126.0, 0], [0, 0, 1, 0]])
    info = _info(w, h, 250.0, 262.0, 160.0, 120.0, D, model, p=P.ravel().tolist())
    cam = camera_model(info, w, h)
    np.testing.assert_allclose(cam.output_K, P[:, :3])
    gx, gy = np.meshgrid(np.linspace(-0.45, 0.45, 5), np.linspace(-0.32, 0.32, 4))
    pts = np.stack([gx.ravel(), gy.ravel(), np.ones(gx.size)], axis=1) * 3.0
    rect = Rectifier().rectify(_dot_image(w, h, K, D, model, pts), cam)
    expected = (pts / pts[:, 2:]) @ P[:, :3].T
    n, _, _, centroids = cv2.connectedComponentsWithStats((rect[..., 0] > 60).astype(np.uint8))
    assert n - 1 == len(expected)
    err = np.min(np.linalg.norm(centroids[1:, None] - expected[None, :, :2], axis=2), axis=0)
    assert err.max() < 0.35, err


@pytest.mark.parametrize("model", sorted(DISTORTIONS))
def test_pixels_without_a_source_are_marked_invalid(model):
    """A barrel lens rectified to a wider P (camera_calibration's alpha = 1: every raw pixel
    kept) leaves black borders: valid_mask is False exactly where the rectified image took any
    of its value from the black fill (and True in the middle); it is computed once per camera,
    with the maps."""
    w, h = 320, 240
    D = DISTORTIONS[model]
    P = [120.0, 0, 160.0, 0, 0, 120.0, 120.0, 0, 0, 0, 1, 0]  # 0.6 x the focal of K
    cam = camera_model(_info(w, h, 200.0, 200.0, 160.0, 120.0, D, model, p=P), w, h)
    r = Rectifier()
    valid = r.valid_mask(cam)
    assert valid.shape == (h, w) and valid.dtype == bool
    assert not valid[0, 0] and not valid[-1, -1] and valid[h // 2, w // 2]
    assert 0.02 < 1 - valid.mean() < 0.6
    white = r.rectify(np.full((h, w, 3), 255, np.uint8), cam)
    np.testing.assert_array_equal(valid, (white == 255).all(axis=2))
    assert r.valid_mask(cam) is valid  # cached with the maps
    plain = camera_model(_info(w, h, 200.0, 200.0, 160.0, 120.0), w, h)
    assert r.valid_mask(plain) is None  # nothing rectified: every pixel is content
