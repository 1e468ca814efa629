"""Rendered views of a point cloud (core.visualize, ROS-free): metres land where they should."""
import numpy as np
import pytest

from mono_depth_ros.core.geometry import CloudBuilder
from mono_depth_ros.core.visualize import (birdseye_extent, birdseye_layout, cloud_arrays,
                                           render_birdseye, render_perspective)

MAGENTA = np.array([255, 0, 255], dtype=np.uint8)
GREEN = np.array([0, 255, 0], dtype=np.uint8)


def box(x, y, z, n=40):
    """Points filling the box ``x``, ``y``, ``z`` (each (lo, hi), metres), ``n`` per side."""
    g = np.meshgrid(*(np.linspace(a, b, n) for a, b in (x, y, z)), indexing="ij")
    return np.stack([a.ravel() for a in g], axis=1).astype(np.float32)


def bbox_of(img, color):
    ys, xs = np.nonzero((img == color).all(axis=-1))
    assert len(xs), "colour not found in the image"
    return xs.min(), xs.max(), ys.min(), ys.max()


def test_birdseye_puts_a_box_at_its_metres():
    pts = box((1.0, 2.0), (-0.5, 0.5), (3.0, 4.0))
    cols = np.tile(MAGENTA, (len(pts), 1))
    extent, ppm = (-3.0, 3.0, 0.0, 6.0), 50.0
    img = render_birdseye(pts, cols, "image", extent=extent, px_per_m=ppm)
    lay = birdseye_layout(pts, extent, ppm)
    u0, v1 = lay.to_px(1.0, 3.0)          # near-left corner: z = 3 is lower in the image
    u1, v0 = lay.to_px(2.0, 4.0)
    x0, x1, y0, y1 = bbox_of(img, MAGENTA)
    assert abs(x0 - u0) <= 2 and abs(x1 - u1) <= 2 and abs(y0 - v0) <= 2 and abs(y1 - v1) <= 2
    # 1 m is 50 px across and down: the box is square in the image
    assert abs((x1 - x0) - 50) <= 3 and abs((y1 - y0) - 50) <= 3
    # right of the camera (x > 0) and ahead of it (above it in the image)
    cu, cv = lay.to_px(0.0, 0.0)
    assert x0 > cu and y1 < cv


def test_birdseye_shows_the_highest_point_of_a_column():
    low = box((0.9, 1.1), (0.9, 1.0), (1.9, 2.1), 30)      # y down: +1 m is below the camera
    high = low.copy()
    high[:, 1] -= 2.0                                       # 1 m above the camera
    for order in ((low, high), (high, low)):
        pts = np.concatenate(order)
        cols = np.concatenate([np.tile(MAGENTA if a is low else GREEN, (len(a), 1))
                               for a in order])
        img = render_birdseye(pts, cols, "image", extent=(-1, 2, 0, 3), px_per_m=100)
        assert (img == GREEN).all(axis=-1).sum() > 100
        assert (img == MAGENTA).all(axis=-1).sum() == 0


def test_birdseye_colours_height_from_low_blue_to_high_red():
    low = box((-1.0, -0.5), (1.0, 1.0), (2.0, 2.5), 80)     # 1 m below the camera
    high = box((0.5, 1.0), (-1.0, -1.0), (2.0, 2.5), 80)    # 1 m above it
    pts = np.concatenate([low, high])
    ext, ppm = (-2.0, 2.0, 0.0, 3.0), 100.0
    img = render_birdseye(pts, color_by="height", extent=ext, px_per_m=ppm, height_lims=(-1, 1))
    lay = birdseye_layout(pts, ext, ppm)
    u, v = (int(c) for c in lay.to_px(-0.75, 2.25))
    r, g, b = img[v, u].astype(int)
    assert b > r                                            # TURBO's low end is blue
    u, v = (int(c) for c in lay.to_px(0.75, 2.25))
    r, g, b = img[v, u].astype(int)
    assert r > b                                            # its high end red


def test_birdseye_extent_holds_the_camera_and_the_points():
    pts = box((2.0, 3.0), (0.0, 0.5), (5.0, 6.0))
    x0, x1, z0, z1 = birdseye_extent(pts)
    assert x0 < 0 < 3.0 <= x1 and z0 < 0 and z1 >= 6.0


def test_perspective_from_the_camera_projects_like_a_pinhole():
    # a 2 m square at z = 4 seen from the camera's own pose: F = 200 px (90 degrees, 400 px)
    pts = box((-1.0, 1.0), (-1.0, 1.0), (4.0, 4.0))
    cols = np.tile(MAGENTA, (len(pts), 1))
    img = render_perspective(pts, cols, "image", eye=np.zeros(3), target=np.array([0, 0, 1.0]),
                             size=(400, 300), fov_deg=90.0)
    x0, x1, y0, y1 = bbox_of(img, MAGENTA)
    # +-1 m at 4 m: +-50 px around the centre (200, 150), within the splat size
    assert abs(x0 - 150) <= 5 and abs(x1 - 250) <= 5 and abs(y0 - 100) <= 5 and abs(y1 - 200) <= 5


def test_perspective_nearer_points_hide_farther_ones():
    far = box((-1.0, 1.0), (-1.0, 1.0), (4.0, 4.0))
    near = box((-0.2, 0.2), (-0.2, 0.2), (2.0, 2.0), 20)
    for order in ((far, near), (near, far)):
        pts = np.concatenate(order)
        cols = np.concatenate([np.tile(GREEN if a is near else MAGENTA, (len(a), 1))
                               for a in order])
        img = render_perspective(pts, cols, "image", eye=np.zeros(3),
                                 target=np.array([0, 0, 1.0]), size=(400, 300), fov_deg=90.0)
        assert (img[150, 200] == GREEN).all()
        assert (img[110, 160] == MAGENTA).all()


def test_perspective_default_view_shows_camera_and_cloud():
    depth = np.full((48, 64), 3.0, dtype=np.float32)
    K = np.array([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]])
    xyz = CloudBuilder(1, with_rgb=False).build(depth, K).points
    cols = np.tile(MAGENTA, xyz.shape[:2] + (1,))
    img = render_perspective(xyz, cols, "image", size=(480, 360))
    assert img.shape == (360, 480, 3) and img.dtype == np.uint8
    x0, x1, y0, y1 = bbox_of(img, MAGENTA)
    assert x1 - x0 > 40 and y1 - y0 > 20                   # the wall is in view, not a speck
    assert (img > 200).all(axis=-1).sum() > 40              # the white camera frustum and label


def test_empty_and_invalid_clouds_render_and_bad_arguments_raise():
    nan = np.full((4, 5, 3), np.nan, dtype=np.float32)
    assert render_birdseye(nan).dtype == np.uint8
    assert render_perspective(nan, color_by="height").dtype == np.uint8
    with pytest.raises(ValueError, match="needs the colours"):
        render_birdseye(box((0, 1), (0, 1), (1, 2), 3), color_by="image")
    with pytest.raises(ValueError, match="color_by"):
        render_perspective(box((0, 1), (0, 1), (1, 2), 3), color_by="depth")


def test_cloud_arrays_unpacks_what_the_node_packs():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 5.0, (6, 8)).astype(np.float32)
    depth[2, 3] = np.nan
    rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    K = np.array([[8.0, 0, 4], [0, 8.0, 3], [0, 0, 1]])
    cloud = CloudBuilder(1, with_rgb=True).build(depth, K, rgb)
    offsets = {f.name: f.offset for f in cloud.fields}
    xyz, col = cloud_arrays(bytes(cloud.data), cloud.height, cloud.width, cloud.point_step,
                            cloud.row_step, offsets)
    np.testing.assert_array_equal(xyz, cloud.points[..., :3])
    np.testing.assert_array_equal(col, rgb)
    xyz2, col2 = cloud_arrays(bytes(cloud.data), cloud.height, cloud.width, cloud.point_step,
                              cloud.row_step, {k: offsets[k] for k in "xyz"})
    assert col2 is None and np.array_equal(xyz2, xyz, equal_nan=True)


def _cloud_message(xyz_rgb_cloud, stamp_ns):
    """A rosbags PointCloud2 of an OrganizedCloud (what the node records)."""
    from mono_depth_ros.data.bag import CLOUD_TYPE, _header, typestore
    ts = typestore()
    PointField = ts.types["sensor_msgs/msg/PointField"]
    c = xyz_rgb_cloud
    return ts.types[CLOUD_TYPE](
        header=_header(stamp_ns, "camera_optical_frame"), height=c.height, width=c.width,
        fields=[PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
                for f in c.fields],
        is_bigendian=False, point_step=c.point_step, row_step=c.row_step,
        data=np.frombuffer(bytes(c.data), dtype=np.uint8), is_dense=False)


def test_demo_writes_cloud_views_beside_the_ground_truth(tmp_path):
    """The demo's views: the middle recorded cloud and the ground truth of its frame, side by
    side, read from bags as the demo records them."""
    from mono_depth_ros.data.bag import CLOUD_TYPE, McapWriter, write_dataset_bag
    from mono_depth_ros.data.datasets import Sample
    from mono_depth_ros.tools.demo import write_cloud_views

    h, w = 60, 80
    K = np.array([[70.0, 0, 40], [0, 70.0, 30], [0, 0, 1]])
    rng = np.random.default_rng(1)
    samples = []
    for i in range(3):
        depth = np.full((h, w), 2.0 + i, dtype=np.float32)
        depth[40:] = np.linspace(1.0, 2.0, 20, dtype=np.float32)[:, None]   # a floor-like ramp
        samples.append(Sample(rgb=rng.integers(0, 256, (h, w, 3), dtype=np.uint8), depth=depth,
                              K=K, stamp_ns=10**9 + i * 10**8, name=f"f{i}"))
    write_dataset_bag(samples, tmp_path / "in_bag")
    with McapWriter(tmp_path / "out_bag") as bag:
        for s in samples:
            cloud = CloudBuilder(2, with_rgb=True).build(s.depth * 1.1, K, s.rgb)
            bag.write("/camera/points", _cloud_message(cloud, s.stamp_ns), CLOUD_TYPE, s.stamp_ns)
    files = write_cloud_views(tmp_path / "out_bag", tmp_path / "in_bag", tmp_path)
    assert [f.name for f in files] == ["cloud_birdseye.png", "cloud_perspective.png"]
    import cv2
    bird = cv2.imread(str(files[0]))
    persp = cv2.imread(str(files[1]))
    assert persp.shape == (600, 1600, 3)                   # prediction | ground truth
    assert bird.shape[1] % 2 == 0 and bird.shape[1] > 2 * 400
    # both halves show points (not only background, grid and text)
    for img in (bird, persp):
        for half in (img[:, : img.shape[1] // 2], img[:, img.shape[1] // 2:]):
            assert len(np.unique(half.reshape(-1, 3), axis=0)) > 50
