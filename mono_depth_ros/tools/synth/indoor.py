"""Procedural indoor rooms in a headless pybullet client (:class:`IndoorScene`).

The street generator (:class:`~.scene.StreetScene`) teaches depth of streets; depth networks for
rooms need rooms. Each scene is one closed rectangular room (2.6-9 x 2.4-7 m, ceiling 2.3-3.4 m)
with:

- floor, walls and ceiling as tiled inward-facing meshes; doors (closed panels or open doorways
  with a corridor behind), windows (openings with a reveal, an outside backdrop 3-12 m away, or
  blinds) and skirting boards;
- furniture from primitives (cabinets and counters, bookshelves with books, tables and chairs,
  desks with monitors, sofas, beds, wardrobes, pillars, rugs, pictures, lamps, plants, boxes);
- clutter from the meshes shipped in ``pybullet_data`` (``random_urdfs/NNN/NNN.obj`` at random
  scales, ``table/table.urdf``, ``tray/traybox.urdf``, ``objects/mug.urdf``, the duck, the teddy)
  on floors, tables, counters and shelves;
- textures: procedural (paint, wallpaper, wood planks, tiles, carpet, marble, brick) and crops of
  **training-split photographs** (7-Scenes redkitchen frames 0-799 by default; never the
  evaluation sets), on walls, floors, cabinet fronts, pictures and rugs;
- lighting: a random directional light (direction, colour temperature, ambient / diffuse /
  specular mix), TinyRenderer shadows in part of the rooms, and an exposure gain.

Cameras: one room per sequence and ``sequence_length`` independent random views in it (not a
trajectory): camera height 0.2-1.8 m (:data:`INDOOR_HEIGHT_RANGE`), pitch -35..+15 degrees,
roll +-10 degrees, any yaw; a view is kept only when the optical axis meets the room's shell at
least 0.8 m away and any furniture's bounding box at least 0.4 m away, and the camera is
outside every piece of furniture. The horizontal field of
view (45-95 degrees, :data:`INDOOR_FOV_RANGE`), the image aspect (4:3 most often, also 16:9,
16:10, 3:2, 5:4, 1:1) and size (x0.8-1.25 of the requested one) are drawn per room.

Depth is exact z-depth from the depth buffer (:func:`~.render.opengl_depth_to_metric`, planes
:data:`INDOOR_NEAR` / :data:`INDOOR_FAR`); the room is closed, so every pixel has geometry (a
pixel where nothing is drawn would be written as invalid, 0). Depth PNGs are millimetres
(``depth_scale`` 0.001 in ``scene.json``, read by :class:`~mono_depth_ros.data.synthia.Synthia`).

Labels: a coarse indoor class map (:data:`INDOOR_CLASS_NAMES`: 0 Object, 1 Wall, 2 Floor,
3 Ceiling, 4 Door, 5 Window, 6 Furniture, 7 Decoration), not the SYNTHIA classes of the streets.

Deterministic: the same seed, size and photo folder give the same files
(:data:`INDOOR_GENERATOR_VERSION` is bumped when that changes).
"""

from __future__ import annotations

import colorsys
import math
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .render import (_MASK24, PybulletClient, camera_pose, opengl_depth_to_metric,
                     vertical_fov)
from .scene import _edges, _Mesh, _rgb

#: bump when a seed no longer gives the same frames (shipped weights cite the version they saw)
INDOOR_GENERATOR_VERSION = 2
#: Indoor class ids (``Labels/`` of ``--scene indoor``).
INDOOR_CLASS_NAMES = (
    "Object",
    "Wall",
    "Floor",
    "Ceiling",
    "Door",
    "Window",
    "Furniture",
    "Decoration",
)
OBJECT, WALL, FLOOR, CEILING, DOOR, WINDOW, FURNITURE, DECORATION = range(8)
#: Projection planes (m): near 5 cm (a camera 0.2 m above the floor looking down sees it at
#: ~0.2 m), far beyond any room or window backdrop.
INDOOR_NEAR = 0.05
INDOOR_FAR = 50.0
#: Metres per depth-PNG unit (millimetres).
INDOOR_DEPTH_SCALE = 0.001
#: Camera ranges: horizontal field of view (degrees), height (m), pitch and roll (degrees).
INDOOR_FOV_RANGE = (45.0, 95.0)
INDOOR_HEIGHT_RANGE = (0.2, 1.8)
INDOOR_PITCH_RANGE = (-35.0, 15.0)
INDOOR_ROLL_RANGE = (-10.0, 10.0)
#: Image aspects (W / H) and their probabilities, drawn per room.
ASPECTS = ((4 / 3, 0.55), (16 / 9, 0.12), (16 / 10, 0.1), (3 / 2, 0.1), (5 / 4, 0.08), (1.0, 0.05))
#: Default photo folder (training split only) relative to the package share dir, and frames.
PHOTO_FRAMES = (0, 800)
#: Shortest distance (m) from the camera to the room shell / to furniture along the optical axis.
MIN_VIEW_DISTANCE = 0.8
MIN_FURNITURE_DISTANCE = 0.4
_TEX = 128  # texture side (px); photo crops get twice that


def default_photo_dir() -> Optional[Path]:
    """``../shared/data/7scenes-redkitchen`` beside the package share dir, if it exists."""
    from ...core.paths import package_share_dir

    d = (package_share_dir() / ".." / "shared" / "data" / "7scenes-redkitchen").resolve()
    return d if d.is_dir() else None


def photo_files(
    photo_dir: Optional[Path], frames: Tuple[int, Optional[int]] = PHOTO_FRAMES
) -> List[Path]:
    """Colour frames ``frames[0] <= N < frames[1]`` (``frame-NNNNNN.color.jpg`` or any
    ``*.jpg``/``*.png`` whose name carries the number) of ``photo_dir``, sorted; [] for None."""
    if photo_dir is None:
        return []
    out = []
    for p in sorted(Path(photo_dir).glob("*")):
        if p.suffix.lower() not in (".jpg", ".jpeg", ".png") or "depth" in p.name:
            continue
        digits = "".join(c for c in p.stem if c.isdigit())
        if digits and frames[0] <= int(digits) and (frames[1] is None or int(digits) < frames[1]):
            out.append(p)
    return out


# ----------------------------------------------------------------------------- textures
def _seamless(a: np.ndarray) -> np.ndarray:
    """Blend an image with its half-shifted copy so that it tiles without visible seams."""
    n = a.shape[0]
    w = np.minimum(np.arange(n), n - 1 - np.arange(n)) / (n / 2)
    w = (
        np.minimum(w[:, None], w[None, :])[..., None]
        if a.ndim == 3
        else np.minimum(w[:, None], w[None, :])
    )
    return w * a + (1 - w) * np.roll(a, (n // 2, n // 2), axis=(0, 1))


def procedural_textures(rng: np.random.Generator) -> Dict[str, np.ndarray]:
    """Procedural indoor textures, ``_TEX x _TEX`` uint8 RGB: grey-level ones (``paint``,
    ``wallpaper``, ``tiles``, ``carpet``, ``marble``, ``brick``, ``fabric``) are multiplied by
    a body colour, ``wood`` and ``parquet`` carry their own colour."""
    n = _TEX
    i, j = np.indices((n, n))
    noise = rng.normal(0, 1, (n, n))
    smooth = cv2.GaussianBlur(np.tile(noise, (3, 3)), (0, 0), 3.0)[n : 2 * n, n : 2 * n]
    smooth /= smooth.std() + 1e-9
    tex: Dict[str, np.ndarray] = {}
    tex["paint"] = 235 + 4 * smooth
    period = int(rng.choice([8, 16, 32]))
    tex["wallpaper"] = 220 + 20 * np.sin(2 * math.pi * j / period) * (
        0.6 + 0.4 * np.sin(2 * math.pi * i / n * 4)
    )
    t = int(rng.choice([16, 32, 64]))
    tex["tiles"] = np.where((i % t < 2) | (j % t < 2), 150, 235 + 5 * smooth)
    tex["carpet"] = 200 + 25 * rng.normal(0, 1, (n, n)) + 10 * smooth
    veins = np.abs(np.sin(4 * math.pi * (i + j) / n + 3 * smooth))
    tex["marble"] = 245 - 60 * (veins < 0.15)
    tex["brick"] = np.where(
        (i % 16 < 2) | (((j + 16 * ((i // 16) % 2)) % 32) < 2), 160, 225 + 10 * smooth
    )
    tex["fabric"] = (
        215 + 12 * np.sin(2 * math.pi * i / 4) * np.sin(2 * math.pi * j / 4) + 8 * smooth
    )
    out = {
        k: np.repeat(np.clip(v, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
        for k, v in tex.items()
    }
    # wood: planks along u with grain, in a random wood colour
    base = np.array(
        colorsys.hsv_to_rgb(
            rng.uniform(0.05, 0.11), rng.uniform(0.35, 0.75), rng.uniform(0.35, 0.85)
        )
    )
    plank = int(rng.choice([16, 21, 32]))
    k = i // plank
    grain = np.sin(2 * math.pi * (j / n * rng.uniform(2, 6) + 0.3 * smooth + 0.37 * k)) * 0.08
    shade = 1.0 + grain + 0.08 * np.sin(k * 2.1) - 0.35 * (i % plank == 0)
    out["wood"] = np.clip(base[None, None] * shade[..., None] * 255, 0, 255).astype(np.uint8)
    pq = (i // 16 + j // 64) % 2 == 0
    shade2 = np.where(pq, 1.0, 0.85) * (1 + 0.05 * smooth) - 0.3 * ((i % 16 == 0) | (j % 64 == 0))
    out["parquet"] = np.clip(base[None, None] * shade2[..., None] * 255, 0, 255).astype(np.uint8)
    for name in ("paint", "carpet", "marble", "fabric"):
        out[name] = _seamless(out[name].astype(np.float32)).astype(np.uint8)
    return out


def photo_crop(path: Path, rng: np.random.Generator, size: int = _TEX) -> np.ndarray:
    """A random square crop (15-60 % of the shorter side) of a photograph, ``size x size``
    uint8 RGB.

    Raises:
        OSError: the file cannot be read.
    """
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read photo texture {path}")
    h, w = img.shape[:2]
    s = int(min(h, w) * rng.uniform(0.15, 0.6))
    y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
    crop = cv2.resize(img[y : y + s, x : x + s], (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop[..., ::-1])


def _outside_texture(rng: np.random.Generator) -> np.ndarray:
    """What a window shows: a sky gradient over a band of greenery / facades (uint8 RGB)."""
    n = _TEX
    rows = np.linspace(0, 1, n)[:, None]
    sky = np.array(
        colorsys.hsv_to_rgb(rng.uniform(0.55, 0.62), rng.uniform(0.1, 0.5), rng.uniform(0.75, 1.0))
    )
    ground = np.array(
        colorsys.hsv_to_rgb(rng.uniform(0.0, 0.4), rng.uniform(0.2, 0.6), rng.uniform(0.2, 0.6))
    )
    horizon = rng.uniform(0.35, 0.7)
    edge = horizon + 0.08 * np.sin(np.linspace(0, rng.uniform(3, 12), n))[None, :]
    img = np.where((rows < edge)[..., None], sky, ground) * 255
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


class _Pane:
    """A window pane (world frame, m): centre ``point``, inward ``normal``, horizontal unit
    vector ``along`` and half extents ``half_w`` x ``half_h`` (vertical)."""

    def __init__(self, point, normal, along, half_w: float, half_h: float):
        self.point, self.normal, self.along = point, normal, along
        self.half_w, self.half_h = float(half_w), float(half_h)


def _face(m: _Mesh, origin, a, b, normal, step: float = 1.0) -> None:
    """Add the parallelogram ``origin + s a + t b`` (``s, t`` in [0, 1]) to ``m``, tiled about
    every ``step`` metres, wound so that its front side faces ``normal``."""
    origin, a, b = (np.asarray(v, np.float64) for v in (origin, a, b))
    if np.dot(np.cross(a, b), np.asarray(normal, np.float64)) < 0:
        a, b = b, a
    la, lb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if la < 1e-9 or lb < 1e-9:
        return
    m.grid(origin, a / la, b / lb, _edges(0.0, la, step), _edges(0.0, lb, step))


# ----------------------------------------------------------------------------- scene
class IndoorScene(PybulletClient):
    """One procedural room in its own headless pybullet client (module docstring).

    Args:
        seed: room, furniture, textures, lighting, camera intrinsics and views follow from it.
        width, height: requested image size (px); with ``size_jitter`` the room draws its own
            aspect and a scale around it (``self.width``/``self.height`` hold the result).
        fov_deg: horizontal field of view (degrees); default random in :data:`INDOOR_FOV_RANGE`.
        textures: procedural and photo textures (False: flat colours).
        photos: photographs for texture crops (training split only); default: 7-Scenes frames
            0-799 of :func:`default_photo_dir` when present, else none.
        size_jitter: draw the aspect and size per room (see module docstring).

    Attributes:
        body_class: body id -> class id (:data:`INDOOR_CLASS_NAMES`).
        room: room dimensions; ``camera``: intrinsics parameters; ``K``: ``3 x 3`` float64;
        light: keyword arguments of ``getCameraImage``; ``exposure``: RGB gain.

    Raises:
        ImportError: pybullet is not installed.
        ValueError: image smaller than 8 x 8.
    """

    CLASS_NAMES = INDOOR_CLASS_NAMES
    NEAR, FAR, DEPTH_SCALE = INDOOR_NEAR, INDOOR_FAR, INDOOR_DEPTH_SCALE

    def __init__(
        self,
        seed: int = 0,
        width: int = 320,
        height: int = 240,
        fov_deg: Optional[float] = None,
        textures: bool = True,
        photos: Optional[Sequence[Path]] = None,
        size_jitter: bool = True,
    ):
        import pybullet as p
        import pybullet_data

        self._p = p
        self._data = Path(pybullet_data.getDataPath())
        self.seed = int(seed)
        if int(width) < 8 or int(height) < 8:
            raise ValueError(f"image size must be at least 8x8, got {width}x{height}")
        ss = np.random.SeedSequence([self.seed, 7])
        cam_rng, room_rng, tex_rng, look_rng, self._view_seq = ss.spawn(5)
        cam_rng, room_rng, tex_rng, look_rng = (
            np.random.default_rng(s) for s in (cam_rng, room_rng, tex_rng, look_rng)
        )
        self.photos = [
            Path(f) for f in (photo_files(default_photo_dir()) if photos is None else photos)
        ]
        self.client = p.connect(p.DIRECT)
        self.body_class: Dict[int, int] = {}
        #: backdrop body id -> the window pane in front of it
        self._glass: Dict[int, "_Pane"] = {}
        self._tex: Dict[str, int] = {}
        self._pending: list = []
        self._boxes: List[Tuple[float, float, float, float, float]] = (
            []
        )  # furniture x0 y0 x1 y1 top
        self._surfaces: List[Tuple[float, float, float, float, float]] = []  # for clutter
        try:
            self._init_camera(cam_rng, int(width), int(height), fov_deg, size_jitter)
            self._init_look(look_rng)
            if textures:
                self._load_textures(tex_rng)
            self._build(room_rng)
            self._flush()
        except Exception:
            self.close()
            raise
        n = max(self.body_class) + 2 if self.body_class else 1
        self._lut = np.full(n, OBJECT, np.uint8)  # index = body id + 1
        for b, c in self.body_class.items():
            self._lut[b + 1] = c

    # -- parameters
    def _init_camera(self, rng, width, height, fov_deg, size_jitter) -> None:
        if size_jitter:
            aspects, probs = zip(*ASPECTS)
            aspect = float(rng.choice(aspects, p=np.array(probs) / sum(probs)))
            scale = float(rng.uniform(0.8, 1.25))
            area = width * height * scale**2
            height = max(8, int(round(math.sqrt(area / aspect) / 2)) * 2)
            width = max(8, int(round(height * aspect / 2)) * 2)
        else:
            rng.random(2)  # same draws either way
        self.width, self.height = width, height
        fov_h = float(rng.uniform(*INDOOR_FOV_RANGE)) if fov_deg is None else float(fov_deg)
        fov_y = vertical_fov(fov_h, width, height)
        self.camera = dict(fov_h_deg=fov_h, fov_y_deg=fov_y, width=width, height=height)
        self.projection = self._p.computeProjectionMatrixFOV(
            fov_y, width / height, INDOOR_NEAR, INDOOR_FAR
        )
        f = (height / 2.0) / math.tan(math.radians(fov_y) / 2.0)
        self.K = np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0 - 1.0], [0.0, 0.0, 1.0]])

    def _init_look(self, rng) -> None:
        az = rng.uniform(0, 2 * math.pi)
        el = rng.uniform(math.radians(20), math.radians(85))
        warm = rng.uniform(-1.0, 1.0)
        self.light = dict(
            lightDirection=[math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)],
            lightColor=(
                [1.0, 1.0 - 0.08 * warm, 1.0 - 0.2 * warm]
                if warm > 0
                else [1.0 + 0.1 * warm, 1.0 + 0.04 * warm, 1.0]
            ),
            lightDistance=20.0,
            shadow=int(rng.random() < 0.4),
            lightAmbientCoeff=float(rng.uniform(0.35, 0.75)),
            lightDiffuseCoeff=float(rng.uniform(0.25, 0.6)),
            lightSpecularCoeff=float(rng.uniform(0.0, 0.15)),
        )
        self.exposure = float(rng.uniform(0.75, 1.2))

    def _load_textures(self, rng) -> None:
        imgs = procedural_textures(rng)
        imgs["outside"] = _outside_texture(rng)
        if self.photos:
            for k in range(8):
                imgs[f"photo{k}"] = photo_crop(
                    self.photos[int(rng.integers(len(self.photos)))], rng, 2 * _TEX
                )
        tmp = Path(tempfile.mkdtemp(prefix="indoor_tex_"))
        try:
            for name, img in imgs.items():
                path = tmp / f"{name}.png"
                cv2.imwrite(str(path), img[..., ::-1])
                self._tex[name] = self._p.loadTexture(str(path), physicsClientId=self.client)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _photo(self, rng) -> Optional[str]:
        names = [k for k in self._tex if k.startswith("photo")]
        return str(rng.choice(names)) if names else None

    # -- bodies
    #: creation order per class (TinyRenderer shades only fragments passing the depth test, so
    #: small occluders go first and the large shell last)
    _ORDER = {
        OBJECT: 0,
        DECORATION: 1,
        FURNITURE: 1,
        DOOR: 2,
        WINDOW: 3,
        WALL: 4,
        FLOOR: 5,
        CEILING: 5,
    }

    def _queue(
        self,
        cls: int,
        kind: str,
        args: dict,
        pos,
        rgba,
        orn=(0.0, 0.0, 0.0),
        tex: Optional[str] = None,
        glass=None,
    ) -> None:
        self._pending.append(
            (self._ORDER[cls], len(self._pending), (cls, kind, args, pos, rgba, orn, tex, glass))
        )

    def _flush(self) -> None:
        p = self._p
        for *_, (cls, kind, args, pos, rgba, orn, tex, glass) in sorted(
            self._pending, key=lambda e: e[:2]
        ):
            quat = p.getQuaternionFromEuler(list(orn))
            if kind == "urdf":
                b = p.loadURDF(
                    args["file"],
                    basePosition=list(map(float, pos)),
                    baseOrientation=quat,
                    globalScaling=args["scale"],
                    useFixedBase=True,
                    physicsClientId=self.client,
                )
                if rgba is not None:
                    for link in range(-1, p.getNumJoints(b, physicsClientId=self.client)):
                        p.changeVisualShape(b, link, rgbaColor=rgba, physicsClientId=self.client)
            else:
                vs = p.createVisualShape(
                    args.pop("shape"), rgbaColor=rgba, physicsClientId=self.client, **args
                )
                b = p.createMultiBody(
                    0,
                    -1,
                    vs,
                    basePosition=list(map(float, pos)),
                    baseOrientation=quat,
                    physicsClientId=self.client,
                )
            if tex is not None and tex in self._tex:
                p.changeVisualShape(
                    b, -1, textureUniqueId=self._tex[tex], physicsClientId=self.client
                )
            self.body_class[b] = cls
            if glass is not None:
                self._glass[b] = glass
        self._pending = []

    def box(self, cls, center, half, rgba, yaw=0.0, tex=None) -> None:
        """Queue a box (``half`` extents, m) of class ``cls``, rotated by ``yaw`` about z."""
        self._queue(
            cls,
            "shape",
            dict(shape=self._p.GEOM_BOX, halfExtents=[float(h) for h in half]),
            center,
            rgba,
            (0.0, 0.0, yaw),
            tex,
        )

    def cylinder(self, cls, center, radius, length, rgba, roll=0.0, yaw=0.0, tex=None) -> None:
        """Queue a cylinder (axis z, rotated by ``roll`` about x then ``yaw``)."""
        self._queue(
            cls,
            "shape",
            dict(shape=self._p.GEOM_CYLINDER, radius=float(radius), length=float(length)),
            center,
            rgba,
            (roll, 0.0, yaw),
            tex,
        )

    def sphere(self, cls, center, radius, rgba) -> None:
        """Queue a sphere."""
        self._queue(
            cls, "shape", dict(shape=self._p.GEOM_SPHERE, radius=float(radius)), center, rgba
        )

    def mesh(self, cls, m: _Mesh, rgba, tex=None, glass=None) -> None:
        """Queue a :class:`~.scene._Mesh` as one body. ``glass``: the :class:`_Pane` in front of
        it; its pixels then get the pane's depth (see :meth:`render`)."""
        if m.i:
            self._queue(
                cls,
                "shape",
                dict(shape=self._p.GEOM_MESH, vertices=m.v, indices=m.i, uvs=m.uv, normals=m.n),
                (0, 0, 0),
                rgba,
                tex=tex,
                glass=glass,
            )

    def obj(self, cls, file: Path, center, scale: float, rgba, yaw=0.0, roll=0.0, tex=None) -> None:
        """Queue an OBJ mesh file (``pybullet_data``) scaled by ``scale``."""
        self._queue(
            cls,
            "shape",
            dict(shape=self._p.GEOM_MESH, fileName=str(file), meshScale=[float(scale)] * 3),
            center,
            rgba,
            (roll, 0.0, yaw),
            tex,
        )

    def urdf(self, cls, file: Path, center, scale: float, yaw=0.0, rgba=None) -> None:
        """Queue a ``pybullet_data`` URDF (fixed base) at ``globalScaling = scale``."""
        self._queue(
            cls, "urdf", dict(file=str(file), scale=float(scale)), center, rgba, (0.0, 0.0, yaw)
        )

    def _occupy(self, x0, y0, x1, y1, top) -> None:
        self._boxes.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1), float(top)))

    def _free(self, x0, y0, x1, y1, margin=0.05) -> bool:
        L, D = self.room["length_m"], self.room["width_m"]
        if x0 < -1e-6 or y0 < -1e-6 or x1 > L + 1e-6 or y1 > D + 1e-6:
            return False
        return all(
            x1 + margin <= b[0] or x0 - margin >= b[2] or y1 + margin <= b[1] or y0 - margin >= b[3]
            for b in self._boxes
        )

    # -- the room
    def _build(self, rng) -> None:
        """Shell, openings, furniture, clutter; parts draw from ``rng`` in a fixed order."""
        L, D = float(rng.uniform(2.6, 9.0)), float(rng.uniform(2.4, 7.0))
        if D > L:
            L, D = D, L
        H = float(rng.uniform(2.3, 3.4))
        self.room = dict(length_m=L, width_m=D, height_m=H)
        self._colours(rng)
        openings = self._openings(rng)
        self._shell(rng, openings)
        self._wall_furniture(rng)
        self._free_furniture(rng)
        self._decorations(rng, openings)
        self._clutter(rng)
        self.room["furniture"] = len(self._boxes)

    def _colours(self, rng) -> None:
        pastel = lambda: _rgb(
            rng.uniform(0, 1), rng.uniform(0.0, 0.35), rng.uniform(0.6, 1.0)
        )  # noqa: E731
        self._wall_rgba = (
            pastel()
            if rng.random() < 0.8
            else _rgb(rng.uniform(0, 1), rng.uniform(0.2, 0.6), rng.uniform(0.3, 0.8))
        )
        self._wall_tex = str(rng.choice(["paint", "paint", "wallpaper", "brick", "tiles", "photo"]))
        self._floor_tex = str(rng.choice(["wood", "parquet", "tiles", "carpet", "marble", "photo"]))
        self._floor_rgba = (
            [1, 1, 1, 1]
            if self._floor_tex in ("wood", "parquet", "photo")
            else _rgb(rng.uniform(0, 1), rng.uniform(0, 0.4), rng.uniform(0.35, 0.95))
        )
        self._ceiling_rgba = _rgb(0, 0, rng.uniform(0.8, 1.0))
        if self._wall_tex == "photo":
            self._wall_tex = self._photo(rng) or "paint"
            self._wall_rgba = [1, 1, 1, 1]
        if self._floor_tex == "photo":
            self._floor_tex = self._photo(rng) or "wood"

    def _openings(self, rng) -> List[dict]:
        """Doors and windows: wall index (0: y=0, 1: x=L, 2: y=D, 3: x=0), position along the
        wall, width, sill and top heights, kind."""
        L, D, H = self.room["length_m"], self.room["width_m"], self.room["height_m"]
        lengths = [L, D, L, D]
        out: List[dict] = []
        n_doors = int(rng.integers(1, 3))
        n_windows = int(rng.integers(0, 4))
        for k in range(n_doors + n_windows):
            door = k < n_doors
            wall = int(rng.integers(4))
            w = rng.uniform(0.75, 1.0) if door else rng.uniform(0.6, min(2.4, lengths[wall] - 0.6))
            sill = 0.0 if door else rng.uniform(0.5, 1.1)
            top = (
                min(H - 0.15, rng.uniform(1.95, 2.2))
                if door
                else min(H - 0.2, sill + rng.uniform(0.8, 1.6))
            )
            a = rng.uniform(0.3, lengths[wall] - w - 0.3) if lengths[wall] > w + 0.6 else None
            if a is None or any(
                o["wall"] == wall and a < o["a1"] + 0.3 and a + w > o["a0"] - 0.3 for o in out
            ):
                continue
            kind = (
                ("open" if rng.random() < 0.5 else "closed")
                if door
                else str(rng.choice(["outside", "outside", "blinds"]))
            )
            out.append(
                dict(
                    wall=wall,
                    a0=float(a),
                    a1=float(a + w),
                    z0=float(sill),
                    z1=float(top),
                    kind=kind,
                    far=float(rng.uniform(3.0, 12.0)),
                )
            )
        return out

    def _wall_frame(self, wall: int):
        """(origin, along, inward normal, length) of wall ``wall``."""
        L, D = self.room["length_m"], self.room["width_m"]
        return [
            ((0, 0, 0), (1, 0, 0), (0, 1, 0), L),
            ((L, 0, 0), (0, 1, 0), (-1, 0, 0), D),
            ((L, D, 0), (-1, 0, 0), (0, -1, 0), L),
            ((0, D, 0), (0, -1, 0), (1, 0, 0), D),
        ][wall]

    def _at(self, wall: int, a: float, z: float, inward: float = 0.0) -> np.ndarray:
        o, e, n, _ = (
            np.asarray(v, float) if i < 3 else v for i, v in enumerate(self._wall_frame(wall))
        )
        return o + a * e + inward * n + np.array([0.0, 0.0, z])

    def _shell(self, rng, openings) -> None:
        L, D, H = self.room["length_m"], self.room["width_m"], self.room["height_m"]
        scale = rng.uniform(0.6, 2.0)
        walls = _Mesh(tex_scale=scale)
        for wall in range(4):
            o, e, n, length = self._wall_frame(wall)
            holes = [op for op in openings if op["wall"] == wall]
            us = np.unique(
                np.concatenate([_edges(0.0, length, 1.0)] + [[h["a0"], h["a1"]] for h in holes])
            )
            zs = np.unique(
                np.concatenate([_edges(0.0, H, 1.0)] + [[h["z0"], h["z1"]] for h in holes])
            )

            def skip(u0, u1, z0, z1, holes=holes):
                return any(
                    h["a0"] - 1e-9 <= u0
                    and u1 <= h["a1"] + 1e-9
                    and h["z0"] - 1e-9 <= z0
                    and z1 <= h["z1"] + 1e-9
                    for h in holes
                )

            # front side = e x z: rotate so that it faces inward (e x z = -n for these frames)
            walls.grid(
                o, (0, 0, 1), e, zs, us, skip=lambda z0, z1, u0, u1, s=skip: s(u0, u1, z0, z1)
            )
        self.mesh(WALL, walls, self._wall_rgba, self._wall_tex)
        fl = _Mesh(tex_scale=rng.uniform(0.8, 2.5))
        fl.ground(_edges(0.0, L, 1.0), _edges(0.0, D, 1.0), 0.0)
        self.mesh(FLOOR, fl, self._floor_rgba, self._floor_tex)
        ce = _Mesh(tex_scale=2.0)
        ce.grid((0, 0, H), (0, 1, 0), (1, 0, 0), _edges(0.0, D, 1.5), _edges(0.0, L, 1.5))
        self.mesh(CEILING, ce, self._ceiling_rgba, "paint")
        # skirting boards and ceiling lights
        if rng.random() < 0.6:
            col = _rgb(0, 0, rng.uniform(0.3, 0.95))
            for wall in range(4):
                _, e, n, length = self._wall_frame(wall)
                c = self._at(wall, length / 2, 0.05, 0.01)
                self.box(
                    DECORATION,
                    c,
                    (
                        length / 2 * abs(e[0]) + 0.01 * abs(n[0]),
                        length / 2 * abs(e[1]) + 0.01 * abs(n[1]),
                        0.05,
                    ),
                    col,
                )
        for _ in range(int(rng.integers(0, 4))):
            x, y = rng.uniform(0.5, L - 0.5), rng.uniform(0.5, D - 0.5)
            if rng.random() < 0.5:
                self.box(DECORATION, (x, y, H - 0.02), (0.3, 0.3, 0.02), _rgb(0, 0, 1.0))
            else:
                self.cylinder(DECORATION, (x, y, H - 0.25), 0.01, 0.5, _rgb(0, 0, 0.2))
                self.sphere(
                    DECORATION,
                    (x, y, H - 0.55),
                    rng.uniform(0.1, 0.25),
                    _rgb(rng.uniform(0, 1), rng.uniform(0, 0.3), rng.uniform(0.7, 1.0)),
                )
        for op in openings:
            self._opening(rng, op)

    def _opening(self, rng, op) -> None:
        o, e, n, _ = (
            np.asarray(v, float) if i < 3 else v for i, v in enumerate(self._wall_frame(op["wall"]))
        )
        w, h = op["a1"] - op["a0"], op["z1"] - op["z0"]
        mid_a, mid_z = (op["a0"] + op["a1"]) / 2, (op["z0"] + op["z1"]) / 2
        reveal = rng.uniform(0.1, 0.25)
        frame_col = (
            _rgb(0, 0, rng.uniform(0.3, 1.0))
            if rng.random() < 0.7
            else _rgb(0.08, 0.5, rng.uniform(0.3, 0.7))
        )
        ax = np.abs(e)
        # reveal: the wall's thickness around the opening (4 inward-facing quads)
        rv = _Mesh()
        a0, z0 = op["a0"], op["z0"]
        p0 = self._at(op["wall"], a0, z0, 0.0)
        out = -n * reveal
        up = np.array([0.0, 0.0, 1.0])
        if z0 > 0:
            _face(rv, p0, e * w, out, up)  # sill
        _face(rv, p0 + up * h, e * w, out, -up)  # lintel
        _face(rv, p0, out, up * h, e)  # side at a0
        _face(rv, p0 + e * w, out, up * h, -e)  # side at a1
        self.mesh(WALL, rv, self._wall_rgba)
        centre = self._at(op["wall"], mid_a, mid_z, 0.0)
        half_in = lambda along, depth, up: (
            along * ax[0] + depth * abs(n[0]),
            along * ax[1] + depth * abs(n[1]),
            up,
        )  # noqa: E731
        cls = DOOR if op["z0"] == 0.0 else WINDOW
        # the window pane: what a depth sensor sees through glass (Kinect returns the pane or
        # nothing; NYU's filled depth sits at about the pane), not the view outside
        pane = _Pane(self._at(op["wall"], mid_a, mid_z, -reveal * 0.6), np.asarray(n, float),
                     np.asarray(e, float), w / 2, h / 2)
        # frame (casing) around the opening, proud of the wall
        for da, dz, ha, hz in (
            (-w / 2 - 0.04, 0, 0.04, h / 2 + 0.04),
            (w / 2 + 0.04, 0, 0.04, h / 2 + 0.04),
            (0, h / 2 + 0.04, w / 2 + 0.08, 0.04),
        ):
            self.box(
                cls,
                centre + e * da + n * 0.01 + np.array([0, 0, dz]),
                half_in(ha, 0.015, hz),
                frame_col,
            )
        if op["kind"] == "closed":
            panel = (
                _rgb(rng.uniform(0.05, 0.1), rng.uniform(0.2, 0.6), rng.uniform(0.3, 0.9))
                if rng.random() < 0.6
                else _rgb(0, 0, rng.uniform(0.5, 1.0))
            )
            self.box(
                DOOR,
                centre - n * reveal * 0.5,
                half_in(w / 2, 0.02, h / 2),
                panel,
                tex="wood" if rng.random() < 0.5 else None,
            )
            self.sphere(
                DOOR,
                self._at(op["wall"], op["a1"] - 0.08, 1.0, -reveal * 0.5 + 0.05),
                0.03,
                _rgb(0.1, 0.3, 0.7),
            )
        elif op["kind"] == "open":
            # a corridor behind the doorway: floor, side walls, end wall
            depth = op["far"]
            c = self._at(op["wall"], mid_a, 0.0, -reveal)
            cw = w + rng.uniform(0.2, 1.5)
            ch = min(self.room["height_m"], h + rng.uniform(0.1, 0.6))
            m = _Mesh(tex_scale=1.0)
            a = c - e * cw / 2
            up = np.array([0.0, 0.0, 1.0])
            _face(m, a, -n * depth, e * cw, up)  # floor
            _face(m, a + up * ch, -n * depth, e * cw, -up)  # ceiling
            _face(m, a, -n * depth, up * ch, e)  # side walls
            _face(m, a + e * cw, -n * depth, up * ch, -e)
            _face(m, a - n * depth, e * cw, up * ch, n)  # end wall
            self.mesh(
                DOOR,
                m,
                _rgb(rng.uniform(0, 1), rng.uniform(0, 0.3), rng.uniform(0.4, 0.95)),
                str(rng.choice(["paint", "wood", "tiles"])),
            )
        elif op["kind"] == "outside":
            far = op["far"]
            c = self._at(op["wall"], mid_a, mid_z, -reveal - far)
            size = 2.5 * far + 4
            m = _Mesh(tex_scale=size)
            up = np.array([0.0, 0.0, 1.0])
            _face(m, c - e * size / 2 - up * size / 3, e * size, up * size * 0.66, n)
            self.mesh(WINDOW, m, [1, 1, 1, 1], "outside", glass=pane)
            # mullions
            for frac in [0.5] if rng.random() < 0.6 else []:
                self.box(
                    WINDOW,
                    self._at(op["wall"], op["a0"] + frac * w, mid_z, -reveal * 0.6),
                    half_in(0.025, 0.03, h / 2),
                    frame_col,
                )
        else:  # blinds: slats across the opening
            col = _rgb(rng.uniform(0, 1), rng.uniform(0, 0.3), rng.uniform(0.6, 1.0))
            slats = _Mesh()
            step = rng.uniform(0.04, 0.08)
            zs = np.arange(op["z0"] + step / 2, op["z1"], step)
            for z in zs:
                base = self._at(op["wall"], op["a0"], z, -reveal * 0.3)
                _face(slats, base, e * w, np.array([0.0, 0.0, step * 0.8]) - n * 0.01, n)
            self.mesh(WINDOW, slats, col)
            # behind the slats: the outside, a short way out
            c = self._at(op["wall"], mid_a, mid_z, -reveal - 2.0)
            bd = _Mesh(tex_scale=8.0)
            _face(bd, c - e * 4 - np.array([0.0, 0.0, 3.0]), e * 8.0, np.array([0.0, 0.0, 6.0]), n)
            self.mesh(WINDOW, bd, [1, 1, 1, 1], "outside", glass=pane)

    # -- furniture
    def _wood(self, rng):
        return "wood" if rng.random() < 0.6 else (self._photo(rng) or "wood")

    def _wall_furniture(self, rng) -> None:
        """Cabinets / counters, bookshelves, sofas, beds, wardrobes along the walls."""
        kinds = ["counter", "shelf", "sofa", "bed", "wardrobe", "cabinet", "desk"]
        for _ in range(int(rng.integers(3, 10))):
            kind = str(rng.choice(kinds))
            wall = int(rng.integers(4))
            _, e, n, length = self._wall_frame(wall)
            e, n = np.asarray(e, float), np.asarray(n, float)
            width = {
                "counter": rng.uniform(1.2, 3.5),
                "shelf": rng.uniform(0.6, 1.6),
                "sofa": rng.uniform(1.4, 2.4),
                "bed": rng.uniform(1.0, 1.9),
                "wardrobe": rng.uniform(0.8, 2.0),
                "cabinet": rng.uniform(0.5, 1.4),
                "desk": rng.uniform(1.0, 1.8),
            }[kind]
            depth = {
                "counter": rng.uniform(0.55, 0.7),
                "shelf": rng.uniform(0.25, 0.4),
                "sofa": rng.uniform(0.8, 1.0),
                "bed": rng.uniform(1.9, 2.2),
                "wardrobe": rng.uniform(0.5, 0.65),
                "cabinet": rng.uniform(0.35, 0.5),
                "desk": rng.uniform(0.6, 0.8),
            }[kind]
            if width > length - 0.1:
                continue
            a = rng.uniform(0.05, length - width - 0.05)
            lo = self._at(wall, a, 0, 0.0)
            hi = self._at(wall, a + width, 0, depth)
            if not self._free(
                min(lo[0], hi[0]), min(lo[1], hi[1]), max(lo[0], hi[0]), max(lo[1], hi[1]), 0.02
            ):
                continue
            yaw = math.atan2(n[1], n[0])  # local x = inward normal, local y = -along... use extents
            c = self._at(wall, a + width / 2, 0.0, depth / 2)
            half = lambda along, dep, up: (
                along * abs(e[0]) + dep * abs(n[0]),
                along * abs(e[1]) + dep * abs(n[1]),
                up,
            )  # noqa: E731
            top = getattr(self, f"_{kind}")(rng, c, e, n, width, depth, half)
            self._occupy(
                min(lo[0], hi[0]), min(lo[1], hi[1]), max(lo[0], hi[0]), max(lo[1], hi[1]), top
            )
            del yaw

    def _surface(self, x0, y0, x1, y1, z) -> None:
        """Remember a horizontal surface for clutter."""
        self._surfaces.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1), float(z)))

    def _footprint_surface(self, c, e, n, width: float, depth: float, z: float) -> None:
        """Remember the top (height ``z``, m) of a piece standing against a wall: centre ``c``,
        ``width`` along ``e``, ``depth`` along the inward normal ``n``."""
        a, b = c - e * width / 2 - n * depth / 2, c + e * width / 2 + n * depth / 2
        self._surface(a[0], a[1], b[0], b[1], z)

    def _counter(self, rng, c, e, n, width, depth, half) -> float:
        h = rng.uniform(0.85, 0.95)
        body = _rgb(rng.uniform(0, 1), rng.uniform(0, 0.4), rng.uniform(0.3, 1.0))
        self.box(
            FURNITURE,
            c + np.array([0, 0, (h - 0.04) / 2]),
            half(width / 2, depth / 2 - 0.03, (h - 0.04) / 2),
            body if rng.random() < 0.5 else [1, 1, 1, 1],
            tex=self._wood(rng),
        )
        self.box(
            FURNITURE,
            c + np.array([0, 0, h - 0.02]),
            half(width / 2 + 0.01, depth / 2, 0.02),
            _rgb(rng.uniform(0, 1), rng.uniform(0, 0.2), rng.uniform(0.2, 0.95)),
            tex="marble",
        )
        # door gaps on the front
        for k in range(1, int(width / 0.6)):
            self.box(
                FURNITURE,
                c
                + e * (-width / 2 + k * width / int(width / 0.6))
                + n * (depth / 2 - 0.025)
                + np.array([0, 0, h / 2]),
                half(0.004, 0.005, h / 2 - 0.08),
                _rgb(0, 0, 0.15),
            )
        if rng.random() < 0.6:  # wall cupboards above
            ch = rng.uniform(0.5, 0.8)
            z0 = rng.uniform(1.4, 1.6)
            if z0 + ch < self.room["height_m"] - 0.05:
                self.box(
                    FURNITURE,
                    c - n * (depth / 2 - 0.18) + np.array([0, 0, z0 + ch / 2]),
                    half(width / 2, 0.17, ch / 2),
                    body,
                    tex=self._wood(rng),
                )
        self._footprint_surface(c, e, n, width, depth, h)
        return h

    def _cabinet(self, rng, c, e, n, width, depth, half) -> float:
        h = rng.uniform(0.5, 1.2)
        self.box(
            FURNITURE,
            c + np.array([0, 0, h / 2]),
            half(width / 2, depth / 2, h / 2),
            _rgb(rng.uniform(0, 1), rng.uniform(0, 0.5), rng.uniform(0.25, 1.0)),
            tex=self._wood(rng),
        )
        self._footprint_surface(c, e, n, width, depth, h)
        return h

    def _wardrobe(self, rng, c, e, n, width, depth, half) -> float:
        h = min(self.room["height_m"] - 0.05, rng.uniform(1.8, 2.3))
        self.box(
            FURNITURE,
            c + np.array([0, 0, h / 2]),
            half(width / 2, depth / 2, h / 2),
            _rgb(rng.uniform(0, 1), rng.uniform(0, 0.4), rng.uniform(0.3, 1.0)),
            tex=self._wood(rng),
        )
        self.box(
            FURNITURE,
            c + n * (depth / 2 + 0.002) + np.array([0, 0, h / 2]),
            half(0.004, 0.004, h / 2 - 0.05),
            _rgb(0, 0, 0.1),
        )
        return h

    def _shelf(self, rng, c, e, n, width, depth, half) -> float:
        h = min(self.room["height_m"] - 0.1, rng.uniform(0.9, 2.2))
        col = _rgb(rng.uniform(0.05, 0.12), rng.uniform(0.2, 0.7), rng.uniform(0.2, 0.9))
        t = 0.02
        back = c - n * (depth / 2 - t / 2)
        self.box(
            FURNITURE,
            back + np.array([0, 0, h / 2]),
            half(width / 2, t / 2, h / 2),
            col,
            tex="wood",
        )
        for s in (-1, 1):
            self.box(
                FURNITURE,
                c + e * s * (width / 2 - t / 2) + np.array([0, 0, h / 2]),
                half(t / 2, depth / 2, h / 2),
                col,
                tex="wood",
            )
        n_sh = max(2, int(h / rng.uniform(0.3, 0.45)))
        for k in range(n_sh + 1):
            z = k * (h - t) / n_sh + t / 2
            self.box(
                FURNITURE,
                c + np.array([0, 0, z]),
                half(width / 2 - t, depth / 2, t / 2),
                col,
                tex="wood",
            )
            if k < n_sh and rng.random() < 0.8:  # books
                a = -width / 2 + t
                while a < width / 2 - t - 0.05 and rng.random() < 0.93:
                    bw = rng.uniform(0.02, 0.07)
                    bh = rng.uniform(0.15, min(0.32, (h - t) / n_sh - 0.03))
                    bd = rng.uniform(0.15, depth - 0.03)
                    self.box(
                        DECORATION,
                        c
                        + e * (a + bw / 2)
                        - n * (depth / 2 - bd / 2 - 0.02)
                        + np.array([0, 0, z + t / 2 + bh / 2]),
                        half(bw / 2, bd / 2, bh / 2),
                        _rgb(rng.uniform(0, 1), rng.uniform(0.2, 0.9), rng.uniform(0.2, 0.9)),
                    )
                    a += bw + (rng.uniform(0.1, 0.4) if rng.random() < 0.1 else 0.002)
        return h

    def _sofa(self, rng, c, e, n, width, depth, half) -> float:
        col = _rgb(rng.uniform(0, 1), rng.uniform(0.1, 0.7), rng.uniform(0.2, 0.85))
        self.box(
            FURNITURE,
            c + np.array([0, 0, 0.22]),
            half(width / 2, depth / 2, 0.22),
            col,
            tex="fabric",
        )
        self.box(
            FURNITURE,
            c - n * (depth / 2 - 0.1) + np.array([0, 0, 0.6]),
            half(width / 2, 0.1, 0.2),
            col,
            tex="fabric",
        )
        for s in (-1, 1):
            self.box(
                FURNITURE,
                c + e * s * (width / 2 - 0.1) + np.array([0, 0, 0.52]),
                half(0.1, depth / 2, 0.1),
                col,
                tex="fabric",
            )
        for k in range(int(rng.integers(0, 3))):
            self.box(
                DECORATION,
                c
                + e * rng.uniform(-width / 3, width / 3)
                - n * (depth / 2 - 0.3)
                + np.array([0, 0, 0.6]),
                half(0.2, 0.08, 0.18),
                _rgb(rng.uniform(0, 1), rng.uniform(0.3, 0.9), rng.uniform(0.4, 1)),
            )
        return 0.8

    def _bed(self, rng, c, e, n, width, depth, half) -> float:
        h = rng.uniform(0.4, 0.6)
        frame = _rgb(rng.uniform(0.05, 0.12), rng.uniform(0.2, 0.6), rng.uniform(0.2, 0.8))
        self.box(
            FURNITURE,
            c + np.array([0, 0, h / 2 - 0.05]),
            half(width / 2, depth / 2, h / 2 - 0.05),
            frame,
            tex="wood",
        )
        sheet = _rgb(rng.uniform(0, 1), rng.uniform(0, 0.5), rng.uniform(0.6, 1.0))
        self.box(
            FURNITURE,
            c + np.array([0, 0, h]),
            half(width / 2 - 0.02, depth / 2 - 0.02, 0.05),
            sheet,
            tex="fabric",
        )
        self.box(
            FURNITURE,
            c - n * (depth / 2 - 0.03) + np.array([0, 0, h + 0.35]),
            half(width / 2, 0.03, 0.35),
            frame,
            tex=self._wood(rng),
        )
        for s in (-1, 1) if width > 1.3 else (0,):
            self.box(
                DECORATION,
                c + e * s * width / 4 - n * (depth / 2 - 0.3) + np.array([0, 0, h + 0.1]),
                half(width / 4 - 0.05, 0.2, 0.07),
                _rgb(0, 0, rng.uniform(0.8, 1.0)),
            )
        return h + 0.1

    def _desk(self, rng, c, e, n, width, depth, half) -> float:
        h = rng.uniform(0.7, 0.78)
        col = _rgb(rng.uniform(0, 1), rng.uniform(0, 0.4), rng.uniform(0.2, 1.0))
        self.box(
            FURNITURE,
            c + np.array([0, 0, h - 0.02]),
            half(width / 2, depth / 2, 0.02),
            col,
            tex=self._wood(rng),
        )
        for s in (-1, 1):
            self.box(
                FURNITURE,
                c + e * s * (width / 2 - 0.03) + np.array([0, 0, (h - 0.04) / 2]),
                half(0.02, depth / 2 - 0.02, (h - 0.04) / 2),
                col,
            )
        if rng.random() < 0.7:  # monitor
            mw = rng.uniform(0.25, 0.4)
            m = c - n * (depth / 2 - 0.15) + np.array([0, 0, h + 0.12 + mw * 0.6])
            self.box(DECORATION, m, half(mw, 0.015, mw * 0.6), _rgb(0, 0, 0.08))
            self.box(
                DECORATION,
                c - n * (depth / 2 - 0.15) + np.array([0, 0, h + 0.06]),
                half(0.03, 0.03, 0.06),
                _rgb(0, 0, 0.1),
            )
        self._footprint_surface(c, e, n, width, depth, h)
        return h

    def _free_furniture(self, rng) -> None:
        """Tables with chairs, armchairs, pillars, plants and lamps standing in the room."""
        L, D, H = self.room["length_m"], self.room["width_m"], self.room["height_m"]
        for _ in range(int(rng.integers(1, 7))):
            kind = str(
                rng.choice(
                    ["table", "table", "table_urdf", "chair", "pillar", "plant", "lamp", "box"]
                )
            )
            sx, sy = {
                "table": (rng.uniform(0.8, 2.0), rng.uniform(0.6, 1.1)),
                "table_urdf": (1.5, 1.0),
                "chair": (0.45, 0.45),
                "pillar": (rng.uniform(0.25, 0.6),) * 2,
                "plant": (0.4, 0.4),
                "lamp": (0.35, 0.35),
                "box": (rng.uniform(0.3, 0.8), rng.uniform(0.3, 0.8)),
            }[kind]
            if kind == "table_urdf":
                sc = rng.uniform(0.6, 1.1)
                sx, sy = 1.5 * sc, 1.0 * sc
            if rng.random() < 0.5:
                sx, sy = sy, sx
            for _try in range(8):
                x, y = rng.uniform(sx / 2 + 0.05, L - sx / 2 - 0.05), rng.uniform(
                    sy / 2 + 0.05, D - sy / 2 - 0.05
                )
                if self._free(x - sx / 2, y - sy / 2, x + sx / 2, y + sy / 2, 0.3):
                    break
            else:
                continue
            top = (
                getattr(self, f"_free_{kind}")(rng, x, y, sx, sy, H)
                if kind != "table_urdf"
                else self._free_table_urdf(rng, x, y, sx, sy, sc)
            )
            self._occupy(x - sx / 2, y - sy / 2, x + sx / 2, y + sy / 2, top)

    def _free_table(self, rng, x, y, sx, sy, H) -> float:
        h = rng.uniform(0.45, 0.78) if rng.random() < 0.8 else rng.uniform(0.9, 1.05)
        col = _rgb(rng.uniform(0, 1), rng.uniform(0, 0.5), rng.uniform(0.2, 1.0))
        tex = self._wood(rng)
        self.box(
            FURNITURE,
            (x, y, h - 0.02),
            (sx / 2, sy / 2, 0.02),
            col if tex == "wood" else [1, 1, 1, 1],
            tex=tex,
        )
        for dx in (-1, 1):
            for dy in (-1, 1):
                self.box(
                    FURNITURE,
                    (x + dx * (sx / 2 - 0.05), y + dy * (sy / 2 - 0.05), (h - 0.04) / 2),
                    (0.025, 0.025, (h - 0.04) / 2),
                    col,
                )
        self._surface(x - sx / 2, y - sy / 2, x + sx / 2, y + sy / 2, h)
        if h < 0.8:  # chairs around it (outside the table's footprint, registered separately)
            for side in range(4):
                if rng.random() < 0.5:
                    continue
                ang = side * math.pi / 2
                dist = (sx if side % 2 == 0 else sy) / 2 + 0.3
                cx, cy = x + dist * math.cos(ang), y + dist * math.sin(ang)
                L, D = self.room["length_m"], self.room["width_m"]
                if 0.3 < cx < L - 0.3 and 0.3 < cy < D - 0.3:
                    top = self._free_chair(rng, cx, cy, 0.45, 0.45, H, yaw=ang + math.pi)
                    self._occupy(cx - 0.25, cy - 0.25, cx + 0.25, cy + 0.25, top)
        return h

    def _free_table_urdf(self, rng, x, y, sx, sy, sc) -> float:
        yaw = 0.0 if sx > sy else math.pi / 2
        self.urdf(FURNITURE, self._data / "table" / "table.urdf", (x, y, 0.0), sc, yaw=yaw)
        h = 0.625 * sc
        self._surface(x - sx / 2, y - sy / 2, x + sx / 2, y + sy / 2, h)
        return h

    def _free_chair(self, rng, x, y, sx, sy, H, yaw=None) -> float:
        yaw = rng.uniform(0, 2 * math.pi) if yaw is None else yaw
        col = _rgb(rng.uniform(0, 1), rng.uniform(0, 0.7), rng.uniform(0.15, 0.9))
        h = rng.uniform(0.42, 0.48)
        c, s = math.cos(yaw), math.sin(yaw)
        self.box(FURNITURE, (x, y, h), (0.22, 0.22, 0.02), col, yaw=yaw)
        for dx in (-1, 1):
            for dy in (-1, 1):
                lx, ly = dx * 0.19, dy * 0.19
                self.box(
                    FURNITURE,
                    (x + lx * c - ly * s, y + lx * s + ly * c, h / 2),
                    (0.015, 0.015, h / 2),
                    col,
                    yaw=yaw,
                )
        bx = -0.2
        self.box(FURNITURE, (x + bx * c, y + bx * s, h + 0.22), (0.015, 0.22, 0.2), col, yaw=yaw)
        return h + 0.42

    def _free_pillar(self, rng, x, y, sx, sy, H) -> float:
        self.box(WALL, (x, y, H / 2), (sx / 2, sy / 2, H / 2), self._wall_rgba, tex=self._wall_tex)
        return H

    def _free_plant(self, rng, x, y, sx, sy, H) -> float:
        pot = rng.uniform(0.2, 0.45)
        self.cylinder(
            DECORATION,
            (x, y, pot / 2),
            0.16,
            pot,
            _rgb(rng.uniform(0, 1), rng.uniform(0, 0.6), rng.uniform(0.3, 0.9)),
        )
        r = rng.uniform(0.2, 0.45)
        self.sphere(
            DECORATION,
            (x, y, pot + r * 0.9),
            r,
            _rgb(rng.uniform(0.22, 0.38), rng.uniform(0.4, 0.8), rng.uniform(0.2, 0.5)),
        )
        return pot + 2 * r

    def _free_lamp(self, rng, x, y, sx, sy, H) -> float:
        h = rng.uniform(1.2, 1.8)
        self.cylinder(DECORATION, (x, y, 0.01), 0.15, 0.02, _rgb(0, 0, 0.2))
        self.cylinder(DECORATION, (x, y, h / 2), 0.015, h, _rgb(0, 0, 0.3))
        self.cylinder(DECORATION, (x, y, h), 0.18, 0.25, _rgb(rng.uniform(0.08, 0.15), 0.3, 0.95))
        return h + 0.13

    def _free_box(self, rng, x, y, sx, sy, H) -> float:
        h = rng.uniform(0.2, 0.9)
        self.box(
            FURNITURE,
            (x, y, h / 2),
            (sx / 2, sy / 2, h / 2),
            _rgb(rng.uniform(0.05, 0.12), rng.uniform(0.2, 0.6), rng.uniform(0.4, 0.9)),
            tex=str(rng.choice(["wood", "fabric", "paint"])),
        )
        self._surface(x - sx / 2, y - sy / 2, x + sx / 2, y + sy / 2, h)
        return h

    def _decorations(self, rng, openings) -> None:
        """Pictures on the walls, rugs on the floor."""
        for _ in range(int(rng.integers(0, 5))):
            wall = int(rng.integers(4))
            _, e, n, length = self._wall_frame(wall)
            e, n = np.asarray(e, float), np.asarray(n, float)
            w, h = rng.uniform(0.3, 1.2), rng.uniform(0.3, 0.9)
            a, z = rng.uniform(0.1, max(0.11, length - w - 0.1)), rng.uniform(
                1.0, self.room["height_m"] - h - 0.1
            )
            if any(
                o["wall"] == wall and a < o["a1"] + 0.1 and a + w > o["a0"] - 0.1 for o in openings
            ):
                continue
            c = self._at(wall, a + w / 2, z + h / 2, 0.015)
            half = (
                w / 2 * abs(e[0]) + 0.012 * abs(n[0]),
                w / 2 * abs(e[1]) + 0.012 * abs(n[1]),
                h / 2,
            )
            self.box(DECORATION, c, half, [1, 1, 1, 1], tex=self._photo(rng) or "wallpaper")
        for _ in range(int(rng.integers(0, 2))):
            L, D = self.room["length_m"], self.room["width_m"]
            sx, sy = rng.uniform(1.0, min(3.0, L - 0.4)), rng.uniform(0.8, min(2.5, D - 0.4))
            x, y = rng.uniform(sx / 2 + 0.2, L - sx / 2 - 0.2), rng.uniform(
                sy / 2 + 0.2, D - sy / 2 - 0.2
            )
            self.box(
                DECORATION,
                (x, y, 0.004),
                (sx / 2, sy / 2, 0.004),
                _rgb(rng.uniform(0, 1), rng.uniform(0.1, 0.7), rng.uniform(0.3, 0.9)),
                tex=str(
                    rng.choice(["carpet", "fabric"] + ([self._photo(rng)] if self.photos else []))
                ),
            )

    def _clutter(self, rng) -> None:
        """Objects from ``pybullet_data`` (random meshes, mugs, trays, ducks, teddies) and small
        boxes on surfaces and on the floor."""
        objs = [self._data / "random_urdfs" / f"{k:03d}" / f"{k:03d}.obj" for k in range(1000)]
        fixed = [
            ("objects/mug.urdf", 0.8, 1.3),
            ("tray/traybox.urdf", 0.4, 0.7),
            ("duck_vhacd.urdf", 0.6, 1.5),
            ("teddy_vhacd.urdf", 1.0, 2.5),
        ]
        spots = list(self._surfaces)
        L, D = self.room["length_m"], self.room["width_m"]
        for _ in range(int(rng.integers(1, 4))):  # floor spots near the walls
            x, y = (
                (rng.uniform(0.2, L - 0.2), rng.choice([0.3, D - 0.3]))
                if rng.random() < 0.5
                else (rng.choice([0.3, L - 0.3]), rng.uniform(0.2, D - 0.2))
            )
            spots.append((x - 0.15, y - 0.15, x + 0.15, y + 0.15, 0.0))
        for x0, y0, x1, y1, z in spots:
            area = (x1 - x0) * (y1 - y0)
            for _ in range(int(rng.integers(0, 2 + min(6, int(area * 4))))):
                x, y = rng.uniform(x0 + 0.05, max(x0 + 0.06, x1 - 0.05)), rng.uniform(
                    y0 + 0.05, max(y0 + 0.06, y1 - 0.05)
                )
                u = rng.random()
                if u < 0.55:
                    f = objs[int(rng.integers(len(objs)))]
                    size = rng.uniform(0.06, 0.3) if z > 0 else rng.uniform(0.15, 0.5)
                    # the meshes span ~4-7 units; scale to ``size`` metres
                    sc = size / 6.0
                    self.obj(
                        OBJECT,
                        f,
                        (x, y, z + size * 0.5),
                        sc,
                        _rgb(rng.uniform(0, 1), rng.uniform(0.1, 0.9), rng.uniform(0.2, 1.0)),
                        yaw=rng.uniform(0, 2 * math.pi),
                        roll=rng.uniform(0, 2 * math.pi),
                    )
                elif u < 0.75:
                    name, lo, hi = fixed[int(rng.integers(len(fixed)))]
                    self.urdf(
                        OBJECT,
                        self._data / name,
                        (x, y, z),
                        float(rng.uniform(lo, hi)),
                        yaw=rng.uniform(0, 2 * math.pi),
                    )
                else:
                    hx, hy, hz = rng.uniform(0.03, 0.2, 3)
                    self.box(
                        OBJECT,
                        (x, y, z + hz),
                        (hx, hy, hz),
                        _rgb(rng.uniform(0, 1), rng.uniform(0.1, 0.9), rng.uniform(0.2, 1.0)),
                        yaw=rng.uniform(0, 2 * math.pi),
                        tex=self._photo(rng) if rng.random() < 0.3 else None,
                    )

    # -- cameras
    def _ray_to_shell(self, pos: np.ndarray, d: np.ndarray) -> float:
        """Distance along unit direction ``d`` from ``pos`` (inside the room) to its shell."""
        hi = np.array([self.room["length_m"], self.room["width_m"], self.room["height_m"]])
        ts = []
        for k in range(3):
            if d[k] > 1e-9:
                ts.append((hi[k] - pos[k]) / d[k])
            elif d[k] < -1e-9:
                ts.append(-pos[k] / d[k])
        return float(min(ts))

    def _ray_to_furniture(self, pos: np.ndarray, d: np.ndarray) -> float:
        """Distance along ``d`` from ``pos`` to the first furniture bounding box (inf: none)."""
        best = math.inf
        for x0, y0, x1, y1, top in self._boxes:
            lo, hi = np.array([x0, y0, 0.0]), np.array([x1, y1, top])
            with np.errstate(divide="ignore", invalid="ignore"):
                t0, t1 = (lo - pos) / d, (hi - pos) / d
            tn = np.nanmax(np.minimum(t0, t1))
            tf = np.nanmin(np.maximum(t0, t1))
            if tf >= max(tn, 0.0):
                best = min(best, max(tn, 0.0))
        return best

    def view(self, index: int) -> Tuple[np.ndarray, dict]:
        """Camera pose of view ``index`` (``4 x 4`` optical camera-to-world) and its parameters
        (``height_m``, ``pitch_deg``, ``roll_deg``, ``yaw_deg``); a function of the seed and
        ``index`` only."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 11, int(index)]))
        L, D, H = self.room["length_m"], self.room["width_m"], self.room["height_m"]
        targets = [
            ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[4] * rng.uniform(0.3, 1.0))
            for b in self._boxes
        ]
        for _try in range(200):
            if rng.random() < 0.5:  # near a wall, like a person entering or standing at the side
                x, y = rng.uniform(0.25, L - 0.25), rng.uniform(0.25, D - 0.25)
                k = int(rng.integers(4))
                x = [x, L - rng.uniform(0.25, 0.9), x, rng.uniform(0.25, 0.9)][k]
                y = [rng.uniform(0.25, 0.9), y, D - rng.uniform(0.25, 0.9), y][k]
            else:
                x, y = rng.uniform(0.25, L - 0.25), rng.uniform(0.25, D - 0.25)
            z = min(float(rng.uniform(*INDOOR_HEIGHT_RANGE)), H - 0.2)
            roll = float(rng.uniform(*INDOOR_ROLL_RANGE))
            u = rng.random()
            if u < 0.7:  # look at furniture, or at a point across the room
                tx, ty, tz = (
                    targets[int(rng.integers(len(targets)))]
                    if targets and u < 0.45
                    else (rng.uniform(0, L), rng.uniform(0, D), rng.uniform(0.3, 1.5))
                )
                dx, dy = tx - x, ty - y
                yaw = math.degrees(math.atan2(dy, dx)) + float(rng.normal(0, 15))
                pitch = math.degrees(math.atan2(tz - z, math.hypot(dx, dy) + 1e-6)) + float(
                    rng.normal(0, 8)
                )
                pitch = float(np.clip(pitch, *INDOOR_PITCH_RANGE))
            else:
                yaw = float(rng.uniform(-180.0, 180.0))
                pitch = float(rng.uniform(*INDOOR_PITCH_RANGE))
            if any(
                b[0] - 0.15 < x < b[2] + 0.15 and b[1] - 0.15 < y < b[3] + 0.15 and z < b[4] + 0.15
                for b in self._boxes
            ):
                continue
            pose = camera_pose((x, y, z), yaw, pitch, roll)
            if (
                self._ray_to_shell(pose[:3, 3], pose[:3, 2]) >= MIN_VIEW_DISTANCE
                and self._ray_to_furniture(pose[:3, 3], pose[:3, 2]) >= MIN_FURNITURE_DISTANCE
            ):
                return pose, dict(height_m=z, pitch_deg=pitch, roll_deg=roll, yaw_deg=yaw)
        # a small room full of furniture: stand in the middle, look along the room
        z = min(1.2, H - 0.2)
        return camera_pose((L / 2, D / 2, z), 0.0, -10.0), dict(
            height_m=z, pitch_deg=-10.0, roll_deg=0.0, yaw_deg=0.0
        )

    def trajectory(self, n: int) -> List[np.ndarray]:
        """Poses of views ``0 .. n - 1`` (:meth:`view`): independent random views in the room."""
        return [self.view(t)[0] for t in range(int(n))]

    # -- rendering
    def render(
        self, camera_pose: np.ndarray
    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Render the room from ``camera_pose`` (``4 x 4`` optical camera-to-world, m).

        Returns:
            ``(rgb, depth, labels, K)``: ``H x W x 3`` uint8 RGB (times the room's exposure);
            ``H x W`` float32 z-depth in m (NaN where nothing was drawn); ``H x W`` uint8 class
            ids (:data:`INDOOR_CLASS_NAMES`); ``3 x 3`` float64 K.
        """
        rgba, buf, mask = self._raw(camera_pose)
        empty = mask < 0
        body = mask & _MASK24
        body[empty] = -1
        labels = self._lut[np.minimum(body + 1, len(self._lut) - 1)]
        labels[empty] = OBJECT
        depth = opengl_depth_to_metric(buf, INDOOR_NEAR, INDOOR_FAR)
        depth[empty | (buf >= 1.0)] = np.nan
        self._glass_depth(depth, body, camera_pose)
        return self._expose(rgba), depth, labels, self.K.copy()

    def _glass_depth(self, depth: np.ndarray, body: np.ndarray, camera_pose: np.ndarray) -> None:
        """Replace, in place, the depth of pixels showing a window's outside backdrop by the
        z-depth (m) of the nearest window pane their ray passes through, NaN if none (generator
        version 2; version 1 taught the backdrop's 3-12 m, which no depth sensor indoors
        reports)."""
        if not self._glass:
            return
        vs, us = np.nonzero(np.isin(body, list(self._glass)))
        if not len(vs):
            return
        R, t = np.asarray(camera_pose, float)[:3, :3], np.asarray(camera_pose, float)[:3, 3]
        K = self.K
        # world ray with camera z = 1, so the ray parameter at a pane is the z-depth
        rays = R @ np.stack([(us - K[0, 2]) / K[0, 0], (vs - K[1, 2]) / K[1, 1], np.ones(len(us))])
        best = np.full(len(us), np.inf)
        for pane in set(self._glass.values()):
            with np.errstate(divide="ignore", invalid="ignore"):
                z = (pane.normal @ (pane.point - t)) / (pane.normal @ rays)
                hit = t[:, None] + rays * z - pane.point[:, None]
                inside = (
                    (z > 0)
                    & (np.abs(pane.along @ hit) <= pane.half_w + 0.01)
                    & (np.abs(hit[2]) <= pane.half_h + 0.01)
                )
            best = np.where(inside & (z < best), z, best)
        depth[vs, us] = np.where(np.isfinite(best), best, np.nan).astype(np.float32)

    def _expose(self, rgba: np.ndarray) -> np.ndarray:
        return np.clip(rgba[..., :3].astype(np.float32) * self.exposure, 0, 255).astype(np.uint8)

    def render_rgb(self, camera_pose: np.ndarray) -> np.ndarray:
        """Colour only (``H x W x 3`` uint8), e.g. the right camera of a stereo pair."""
        rgba, _, _ = self._raw(camera_pose, seg=False)
        return self._expose(rgba)

    def describe(self) -> dict:
        """JSON-able scene parameters (seed, room, camera, lighting, K, bodies per class)."""
        cls_count = np.bincount(
            np.array(list(self.body_class.values()), int), minlength=len(INDOOR_CLASS_NAMES)
        )
        return dict(
            scene="indoor",
            seed=self.seed,
            width=self.width,
            height=self.height,
            near=INDOOR_NEAR,
            far=INDOOR_FAR,
            room=self.room,
            camera=self.camera,
            K=self.K.tolist(),
            light=dict(self.light),
            exposure=self.exposure,
            photo_textures=len(self.photos),
            bodies=len(self.body_class),
            bodies_per_class={INDOOR_CLASS_NAMES[i]: int(n) for i, n in enumerate(cls_count)},
        )
