"""Synthetic SYNTHIA-style street scenes and indoor rooms rendered with pybullet's TinyRenderer
(ROS-free).

Two generators share the renderer maths (``render.py``) and the writer (``writer.py``,
:data:`SCENES`): streets (``scene.py``, below) and rooms (``indoor.py``, :class:`IndoorScene`:
``mono-depth-ros synth OUT --scene indoor``; its module docstring has the details, depth in
millimetres and its own class map).

Valdez-Rodríguez et al. (Sensors 2022) train on SYNTHIA-AL, a synthetic street dataset with
exact depth and 14-class labels. It cannot be downloaded here, so this module procedurally
builds streets out of primitive shapes (boxes, cylinders, spheres) in a headless pybullet
client (``p.DIRECT``), drives a camera along them and renders RGB, metric depth and labels
with the CPU TinyRenderer (``renderer=p.ER_TINY_RENDERER``). Every street holds all 14 classes
of :data:`mono_depth_ros.models.valdez.SYNTHIA_CLASSES` (ids :data:`CLASS_IDS`).

Conventions
-----------
World frame: x along the street (the camera drives towards +x), y to the left, z up, metres.
A street spans y in ``[-(road + sidewalk + buildings), +...]``; the camera drives in the
right-hand lane (y < 0).

Camera poses are ``4 x 4`` float64 camera-to-world transforms in the *optical* convention
(x right, y down, z forward), like ``Sample.pose``.

Depth: TinyRenderer returns an OpenGL-style depth buffer ``b`` in ``[0, 1]`` for a perspective
projection with planes ``near``/``far``; :func:`opengl_depth_to_metric` inverts it to z-depth
(distance along the optical axis, not along the ray)::

    z = far * near / (far - (far - near) * b)

(``b = 0`` -> ``near``, ``b = 1`` -> ``far``). Background pixels (segmentation ``-1``) are the
Sky class; their depth is set to :data:`SKY_DEPTH` = 655.35 m, the largest value the 16-bit
centimetre depth PNG can hold (the far plane, 1000 m, clipped to the encoding). Geometry is
clipped to 655.34 m so that 65535 in a depth PNG always means sky. The renderer's depth buffer
is float32, so the depth resolution is ``z^2 / near * 6e-8`` m (2 mm at 80 m for near = 0.2 m).

Intrinsics: the projection is pybullet's ``computeProjectionMatrixFOV(fov_y, W / H, near,
far)``. TinyRenderer tests pixel coverage at integer pixel coordinates and writes rows
top-down as ``row = H - 1 - y_screen``, so with pixel centres at integer coordinates (the
OpenCV convention of ``K``)::

    fx = fy = (H / 2) / tan(fov_y / 2),   cx = W / 2,   cy = H / 2 - 1

(measured against rendered markers, see ``test/test_synth.py``; :func:`projection_to_K`).
The random field of view of a street is the *horizontal* one, 50-90 degrees; the vertical one
follows from the aspect ratio.

On-disk layout (what :class:`mono_depth_ros.data.synthia.Synthia` reads)::

    OUT/seq_0000/RGB/000000.png        colour, 8-bit RGB PNG
    OUT/seq_0000/RGB/000000.K.txt      per-frame K: 3 rows of 3 numbers (row-major 3x3)
    OUT/seq_0000/Depth/000000.png      uint16 1-channel PNG, z-depth in centimetres
                                       (depth_scale 0.01); 65535 = sky; never 0
    OUT/seq_0000/Labels/000000.png     uint8 1-channel PNG, class id 0..13 (CLASS_IDS)
    OUT/seq_0000/Pose/000000.txt       4x4 camera-to-world (optical convention, metres)
    OUT/seq_0000/RGB_right/000000.png  (stereo) right camera of a rectified pair, same K,
                                       ``baseline`` metres to the right (+x of the camera)
    OUT/seq_0000/baseline.txt          (stereo) one number: the baseline in metres (0.54),
                                       signed like ``Sample.baseline`` (positive = right)
    OUT/seq_0000/intrinsics.txt        the sequence's K as "fx fy cx cy"
    OUT/seq_0000/scene.json            street / camera / lighting parameters, seed

Frames are numbered per sequence (30 Hz, ``sequence_length`` frames per street); a new street
(new seed) starts each sequence. Same ``seed`` -> byte-identical files.

Throughput
----------
A street is built once per sequence (~0.3 s) and the camera moves through it. TinyRenderer
costs ~2.8 ms per call plus, for every front-facing triangle, ~50 ns per pixel of its clamped
screen bounding box and ~90 ns more per shaded fragment: about 14 ms for a single quad filling
a 320x192 frame. The module therefore builds large surfaces as tiled meshes (road, sidewalks,
ground, lane lines, facades), drops faces that are never visible, and creates bodies
front-to-back (small objects, buildings, marks, sidewalks, road, ground), since fragments that
fail the depth test are not shaded. Measured at 320x192 on 2 CPU cores shared with other jobs:
about 30-35 rendered frames/s for a full street (~350 bodies; a 40-box scene renders at ~60),
22-26 frames/s overall including PNG encoding (one writer thread); stereo halves it.
"""

from .render import (BUILDING, CLASS_IDS, CLASS_NAMES, CYCLIST, DEPTH_SCALE, FAR, FENCE, FOV_RANGE,
                     GENERATOR_VERSION, HEIGHT_RANGE, LANEMARK, LOOKAHEAD, MAX_GEOMETRY_DEPTH, MISC,
                     NEAR, PEDESTRIAN, PITCH_RANGE, POLE, RATE_HZ, ROAD, SIDEWALK, SIGN, SKY,
                     SKY_DEPTH, SPEED_RANGE, STEREO_BASELINE, TRAFFIC_LIGHT, VEGETATION, VEHICLE,
                     camera_pose, opengl_depth_to_metric, projection_to_K, stereo_pose,
                     street_length, vertical_fov)
from .indoor import (INDOOR_CLASS_NAMES, INDOOR_DEPTH_SCALE, INDOOR_FAR, INDOOR_FOV_RANGE,
                     INDOOR_GENERATOR_VERSION, INDOOR_HEIGHT_RANGE, INDOOR_NEAR, IndoorScene)
from .scene import StreetScene
from .writer import SCENES, encode_depth, generate, scene_seed

__all__ = [name for name in dir() if not name.startswith("_")]
