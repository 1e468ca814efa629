"""Camera and projection of the synthetic renderer: constants, OpenGL depth buffer -> metres,
projection -> K, camera poses (see the package docstring for the conventions)."""

from __future__ import annotations

import math
from typing import List, Sequence

import numpy as np


#: Class ids, in the order of ``mono_depth_ros.models.valdez.SYNTHIA_CLASSES``.
CLASS_NAMES = ("Miscellaneous", "Sky", "Building", "Road", "Sidewalk", "Fence", "Vegetation",
               "Pole", "Vehicle", "Sign", "Pedestrian", "Cyclist", "Lanemark", "Traffic light")
CLASS_IDS = {name: i for i, name in enumerate(CLASS_NAMES)}
MISC, SKY, BUILDING, ROAD, SIDEWALK, FENCE, VEGETATION, POLE, VEHICLE, SIGN, PEDESTRIAN, \
    CYCLIST, LANEMARK, TRAFFIC_LIGHT = range(14)

#: Projection planes (m). near = 0.2 m keeps float32 depth-buffer resolution at ~2 mm at 80 m.
NEAR = 0.2
FAR = 1000.0
#: Metres per depth-PNG unit (centimetres, the :class:`Synthia` reader's default).
DEPTH_SCALE = 0.01
#: Depth of sky pixels (m): the far plane clipped to the 16-bit centimetre encoding (65535).
SKY_DEPTH = 65535 * DEPTH_SCALE
#: Largest depth of real geometry (m), one code below the sky.
MAX_GEOMETRY_DEPTH = 65534 * DEPTH_SCALE
#: Default stereo baseline (m), KITTI-like.
STEREO_BASELINE = 0.54
#: Frame rate of the camera sequences (Hz).
RATE_HZ = 30.0
#: bump when a seed no longer gives the same frames (shipped weights cite the version they saw)
GENERATOR_VERSION = 1
#: Camera speed range (m per frame at 30 Hz: 9-15 m/s).
SPEED_RANGE = (0.3, 0.5)
#: Horizontal field-of-view range (degrees), camera height (m) and pitch (degrees) ranges.
FOV_RANGE = (50.0, 90.0)
HEIGHT_RANGE = (1.2, 2.0)
PITCH_RANGE = (-10.0, 5.0)
#: How far beyond a sequence's last camera position the street is furnished (m).
LOOKAHEAD = 140.0
_BEHIND = 30.0      # furnished street behind the first camera position (m)
_GROUND = 5000.0    # half-extent of the far ground / road (m): the horizon is never empty

_MASK24 = (1 << 24) - 1




# ----------------------------------------------------------------------------- geometry
def opengl_depth_to_metric(buffer: np.ndarray, near: float = NEAR, far: float = FAR) -> np.ndarray:
    """OpenGL depth-buffer values -> metric z-depth.

    Args:
        buffer: depth-buffer values ``b`` in ``[0, 1]`` (any shape), as returned by
            ``p.getCameraImage`` for a ``computeProjectionMatrixFOV(..., near, far)`` projection.
        near, far: the projection's clipping planes (m), ``0 < near < far``.

    Returns:
        float32 array of the same shape: ``z = far * near / (far - (far - near) * b)`` in
        metres along the optical axis; ``b = 1`` (nothing drawn) gives ``far``.

    Raises:
        ValueError: ``near``/``far`` not ``0 < near < far``.
    """
    if not 0.0 < near < far:
        raise ValueError(f"need 0 < near < far, got near={near} far={far}")
    b = np.clip(np.asarray(buffer, dtype=np.float64), 0.0, 1.0)
    return (far * near / (far - (far - near) * b)).astype(np.float32)


def projection_to_K(projection: Sequence[float], width: int, height: int) -> np.ndarray:
    """Intrinsics of a pybullet (OpenGL, column-major 16-float) projection matrix as rendered
    by TinyRenderer at ``width x height``.

    With ``P`` the row-major 4x4 matrix: ``fx = P[0,0] W / 2``, ``fy = P[1,1] H / 2``,
    ``cx = W / 2 (1 - P[0,2])``, ``cy = H / 2 (1 + P[1,2]) - 1`` (pixel centres at integer
    coordinates; TinyRenderer samples coverage at integer pixel positions and flips rows).
    For ``computeProjectionMatrixFOV(fov_y, W/H, ...)``: ``fx = fy = (H/2) / tan(fov_y/2)``,
    ``cx = W/2``, ``cy = H/2 - 1``.

    Returns:
        ``3 x 3`` float64 K.

    Raises:
        ValueError: not 16 numbers, or not a perspective projection.
    """
    P = np.asarray(projection, dtype=np.float64)
    if P.size != 16:
        raise ValueError(f"projection must have 16 numbers, got {P.size}")
    P = P.reshape(4, 4).T  # pybullet lists column-major
    if abs(P[3, 2] + 1.0) > 1e-6:
        raise ValueError("not an OpenGL perspective projection (P[3,2] != -1)")
    return np.array([[P[0, 0] * width / 2.0, 0.0, width / 2.0 * (1.0 - P[0, 2])],
                     [0.0, P[1, 1] * height / 2.0, height / 2.0 * (1.0 + P[1, 2]) - 1.0],
                     [0.0, 0.0, 1.0]])


def vertical_fov(horizontal_fov_deg: float, width: int, height: int) -> float:
    """Vertical field of view (degrees) of square pixels with the given horizontal one."""
    return math.degrees(2.0 * math.atan(math.tan(math.radians(horizontal_fov_deg) / 2.0) * height / width))


def camera_pose(position: Sequence[float], yaw_deg: float = 0.0, pitch_deg: float = 0.0,
                roll_deg: float = 0.0) -> np.ndarray:
    """``4 x 4`` float64 camera-to-world pose (optical axes: x right, y down, z forward) of a
    camera at ``position`` (world m) looking along yaw (about +z, 0 = +x, positive = left),
    pitch (positive = up) and roll (about the viewing direction, positive = clockwise)."""
    y, p, r = (math.radians(v) for v in (yaw_deg, pitch_deg, roll_deg))
    fwd = np.array([math.cos(p) * math.cos(y), math.cos(p) * math.sin(y), math.sin(p)])
    right = np.array([math.sin(y), -math.cos(y), 0.0])
    down = np.cross(fwd, right)
    if roll_deg:
        c, s = math.cos(r), math.sin(r)
        right, down = c * right + s * down, -s * right + c * down
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = right, down, fwd, np.asarray(position, float)
    return T


def stereo_pose(pose: np.ndarray, baseline: float = STEREO_BASELINE) -> np.ndarray:
    """Pose of the other camera of a rectified pair: ``baseline`` m along this camera's x."""
    T = np.eye(4)
    T[0, 3] = baseline
    return np.asarray(pose, np.float64) @ T


def _view_matrix(pose: np.ndarray) -> List[float]:
    """pybullet view matrix (column-major 16 floats) of an optical camera-to-world pose."""
    gl = np.asarray(pose, np.float64) @ np.diag([1.0, -1.0, -1.0, 1.0])  # GL: y up, z backward
    return np.linalg.inv(gl).T.reshape(-1).tolist()




def street_length(sequence_length: int) -> float:
    """Street length (m) furnished for a drive of ``sequence_length`` frames at top speed."""
    return sequence_length * SPEED_RANGE[1] * (1.0 + 0.08) + LOOKAHEAD


class PybulletClient:
    """What every scene does with the headless pybullet client it owns (``self._p``: the pybullet
    module, ``self.client``: its id): render (:meth:`_raw`), :meth:`close`, context manager,
    closed when collected."""

    def close(self) -> None:
        """Disconnect the pybullet client (idempotent)."""
        if getattr(self, "client", None) is not None:
            try:
                self._p.disconnect(physicsClientId=self.client)
            except Exception:  # already gone
                pass
            self.client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # pragma: no cover - best effort
        self.close()

    def _raw(self, pose: np.ndarray, seg: bool = True):
        """TinyRenderer's ``(rgba, depth buffer, segmentation mask or None)`` from ``pose``
        (``self.width``, ``self.height``, ``self.projection``, ``self.light``)."""
        p = self._p
        flags = 0 if seg else p.ER_NO_SEGMENTATION_MASK
        _, _, rgba, buf, mask = p.getCameraImage(
            self.width, self.height, _view_matrix(pose), self.projection, renderer=p.ER_TINY_RENDERER,
            flags=flags, physicsClientId=self.client, **self.light)
        rgba = np.asarray(rgba, np.uint8).reshape(self.height, self.width, 4)
        buf = np.asarray(buf, np.float32).reshape(self.height, self.width)
        return rgba, buf, (np.asarray(mask).reshape(self.height, self.width) if seg else None)
