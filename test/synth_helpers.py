"""In-memory reference frames of the synthetic street generator (shared by the synth tests)."""

import math

import numpy as np

from mono_depth_ros.tools import synth


def render_frame(seed: int = 0, index: int = 0, width: int = 320, height: int = 192,
                 sequence_length: int = 100) -> dict:
    """Frame ``index`` of ``synth.generate(seed, ...)`` with the same arguments, rendered in
    memory: dict with ``rgb`` (H x W x 3 uint8), ``depth`` (H x W float32 m), ``labels``
    (H x W uint8), ``K`` (3 x 3) and ``pose`` (4 x 4 camera-to-world, optical)."""
    seq, t = divmod(int(index), int(sequence_length))
    with synth.StreetScene(synth.scene_seed(seed, seq), width, height,
                           synth.street_length(sequence_length)) as scene:
        pose = scene.trajectory(t + 1)[t]
        rgb, depth, labels, K = scene.render(pose)
    return dict(rgb=rgb, depth=depth, labels=labels, K=K, pose=pose)


def quat(R: np.ndarray):
    """(x, y, z, w) quaternion of a rotation matrix (pybullet's order)."""
    w = math.sqrt(max(0.0, 1.0 + R[0, 0] + R[1, 1] + R[2, 2])) / 2.0
    x = math.copysign(math.sqrt(max(0.0, 1.0 + R[0, 0] - R[1, 1] - R[2, 2])) / 2.0, R[2, 1] - R[1, 2])
    y = math.copysign(math.sqrt(max(0.0, 1.0 - R[0, 0] + R[1, 1] - R[2, 2])) / 2.0, R[0, 2] - R[2, 0])
    z = math.copysign(math.sqrt(max(0.0, 1.0 - R[0, 0] - R[1, 1] + R[2, 2])) / 2.0, R[1, 0] - R[0, 1])
    return [x, y, z, w]
