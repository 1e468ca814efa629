"""Core arrays -> ROS messages: the PointCloud2 layout (organized, REP 103 fields, PCL rgb)."""

import numpy as np
from sensor_msgs.msg import PointField
from std_msgs.msg import Header
from test_geometry import CX, CY, FX, FY, K, backproject

from mono_depth_ros.core.geometry import POINTFIELD_FLOAT32, CloudBuilder
from mono_depth_ros.ros.conversions import make_cloud

CLOUD_DTYPE_RGB = np.dtype({"names": ["x", "y", "z", "rgb"],
                            "formats": ["<f4", "<f4", "<f4", "<u4"],
                            "offsets": [0, 4, 8, 12], "itemsize": 16})
CLOUD_DTYPE_XYZ = np.dtype({"names": ["x", "y", "z"], "formats": ["<f4", "<f4", "<f4"],
                            "offsets": [0, 4, 8], "itemsize": 12})


def test_point_cloud2_layout_with_rgb():
    h, w = 3, 5
    depth = np.linspace(1.0, 2.4, h * w, dtype=np.float32).reshape(h, w)
    depth[2, 4] = np.nan
    rgb = np.zeros((h, w, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 128, 1)
    rgb[1, 3] = (1, 2, 3)
    header = Header(frame_id="camera_optical_frame")
    msg = make_cloud(header, CloudBuilder(with_rgb=True).build(depth, K, rgb))

    assert PointField.FLOAT32 == POINTFIELD_FLOAT32 == 7
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, 7, 1), ("y", 4, 7, 1), ("z", 8, 7, 1), ("rgb", 12, 7, 1)]
    assert (msg.height, msg.width) == (h, w)  # organized
    assert msg.point_step == 16
    assert msg.row_step == msg.point_step * msg.width == 80
    assert msg.is_dense is False
    assert msg.is_bigendian is False
    assert len(msg.data) == msg.row_step * msg.height == 240
    assert msg.header.frame_id == "camera_optical_frame"

    pts = np.frombuffer(bytes(msg.data), dtype=CLOUD_DTYPE_RGB).reshape(h, w)
    ref = backproject(depth, K)
    np.testing.assert_array_equal(pts["x"], ref[..., 0])
    np.testing.assert_array_equal(pts["y"], ref[..., 1])
    np.testing.assert_array_equal(pts["z"], ref[..., 2])
    assert np.isnan(pts["z"][2, 4])
    # PCL packing 0x00RRGGBB at byte offset 12, little-endian
    assert pts["rgb"][0, 0] == 0x00FF8001
    assert bytes(msg.data)[12:16] == bytes([0x01, 0x80, 0xFF, 0x00])
    assert pts["rgb"][1, 3] == 0x00010203
    assert pts["rgb"][0, 1] == 0


def test_point_cloud2_layout_xyz_only():
    h, w = 2, 3
    depth = np.full((h, w), 4.0, dtype=np.float32)
    msg = make_cloud(Header(), CloudBuilder(with_rgb=False).build(depth, K))
    assert [f.name for f in msg.fields] == ["x", "y", "z"]
    assert [f.offset for f in msg.fields] == [0, 4, 8]
    assert msg.point_step == 12 and msg.row_step == 36
    assert len(msg.data) == 72
    pts = np.frombuffer(bytes(msg.data), dtype=CLOUD_DTYPE_XYZ).reshape(h, w)
    np.testing.assert_allclose(pts["x"][1, 2], 4.0 * (2 - CX) / FX, rtol=1e-6)
    np.testing.assert_allclose(pts["y"][1, 2], 4.0 * (1 - CY) / FY, rtol=1e-6)
    np.testing.assert_array_equal(pts["z"], 4.0)


def test_depth_camera_info_describes_the_published_image():
    """Distorted, binned ROI camera: depth/camera_info carries the rectified K, D zero, R
    identity, binning 0 and an empty ROI, so image_geometry consumers do not apply them twice."""
    from sensor_msgs.msg import CameraInfo

    from mono_depth_ros.core.camera import camera_model
    from mono_depth_ros.ros.conversions import depth_camera_info
    ci = CameraInfo(width=1000, height=800, distortion_model="plumb_bob",
                    d=[-0.2, 0.05, 0.0, 0.0, 0.0], binning_x=2, binning_y=2)
    ci.k = [500.0, 0.0, 500.0, 0.0, 500.0, 400.0, 0.0, 0.0, 1.0]
    ci.p = [480.0, 0.0, 500.0, 0.0, 0.0, 480.0, 400.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ci.roi.x_offset, ci.roi.y_offset, ci.roi.width, ci.roi.height = 100, 80, 400, 320
    out = depth_camera_info(camera_model(ci, 200, 160), Header(frame_id="cam"))
    assert (out.width, out.height, out.header.frame_id) == (200, 160, "cam")
    np.testing.assert_allclose(out.k, [240, 0, 200, 0, 240, 160, 0, 0, 1])
    np.testing.assert_allclose(out.p, [240, 0, 200, 0, 0, 240, 160, 0, 0, 0, 1, 0])
    assert list(out.d) == [0.0] * 5 and out.binning_x == 0 and out.binning_y == 0
    assert out.roi.width == 0 and out.roi.height == 0
    np.testing.assert_allclose(out.r, np.eye(3).ravel())
