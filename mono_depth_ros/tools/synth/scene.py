"""Procedural SYNTHIA-style streets in a headless pybullet client (:class:`StreetScene`)."""

from __future__ import annotations

import colorsys
import math
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .render import (BUILDING, CLASS_NAMES, CYCLIST, FAR, FENCE, FOV_RANGE, HEIGHT_RANGE, LANEMARK,
                     MAX_GEOMETRY_DEPTH, MISC, NEAR, PEDESTRIAN, PITCH_RANGE, POLE, ROAD, SIDEWALK,
                     PybulletClient, SIGN, SKY, SKY_DEPTH, SPEED_RANGE, TRAFFIC_LIGHT, VEGETATION, VEHICLE, _BEHIND,
                     _GROUND, _MASK24, camera_pose, opengl_depth_to_metric,
                     street_length, vertical_fov)


def _rgb(h: float, s: float, v: float) -> List[float]:
    return list(colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))) + [1.0]


# ----------------------------------------------------------------------------- textures
def _textures(rng: np.random.Generator) -> Dict[str, np.ndarray]:
    """Small grey-level procedural textures (64x64 uint8 RGB); multiplied by object colours."""
    n = 64
    i, j = np.indices((n, n))
    tex = {}
    noise = rng.normal(0, 1, (n, n))
    smooth = cv2.GaussianBlur(np.tile(noise, (3, 3)), (0, 0), 1.2)[n:2 * n, n:2 * n]  # seamless
    tex["asphalt"] = 215 + 14 * smooth / smooth.std()
    tex["paving"] = np.where((i % 16 < 1) | (j % 16 < 1), 150, 220 + 10 * noise)
    win = ((i % 16 >= 5) & (i % 16 < 13) & (j % 16 >= 4) & (j % 16 < 12))
    tex["windows"] = np.where(win, 70 + 10 * noise, 235)
    tex["brick"] = np.where((i % 8 == 0) | (((j + 8 * ((i // 8) % 2)) % 16) == 0), 170, 235 + 8 * noise)
    tex["leaves"] = np.clip(190 + 50 * rng.normal(0, 1, (n, n)), 0, 255)
    tex["bars"] = np.where(j % 8 < 2, 140, 240)
    tex["checker"] = np.where(((i // 8) + (j // 8)) % 2 == 0, 170, 240)
    return {k: np.repeat(np.clip(v, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
            for k, v in tex.items()}


# ----------------------------------------------------------------------------- meshes
def _edges(a: float, b: float, step: float) -> np.ndarray:
    """Evenly spaced edges from ``a`` to ``b`` (inclusive), at most ``step`` apart."""
    return np.linspace(a, b, max(int(math.ceil((b - a) / step - 1e-9)), 1) + 1)


def _geometric(a: float, first: float, limit: float = _GROUND) -> np.ndarray:
    """Edges from ``a`` outwards to ``limit`` with widths ``first``, ``2 first``, ``4 first``..."""
    out, w = [a], first
    while out[-1] < limit:
        out.append(min(out[-1] + w, limit))
        w *= 2.0
    return np.array(out)


def _far_edges(a: float, b: float, step: float) -> np.ndarray:
    """Edges every ``step`` over ``[a, b]``, then geometric out to ``-+_GROUND``: tiles whose
    size grows with the distance from the furnished street."""
    lo = -_geometric(-a, 2 * step)[::-1][:-1]
    return np.concatenate([lo, _edges(a, b, step), _geometric(b, 2 * step)[1:]])


class _Mesh:
    """Accumulates axis-aligned, tiled rectangles as one triangle mesh (vertices, indices,
    uvs in ``tex_scale``-metre texture repeats, normals) for ``createVisualShape(GEOM_MESH)``.
    Triangles are wound so that pybullet's back-face culling keeps the ``facing`` side."""

    def __init__(self, tex_scale: float = 1.0):
        self.v: List[List[float]] = []
        self.uv: List[List[float]] = []
        self.n: List[List[float]] = []
        self.i: List[int] = []
        self.tex_scale = float(tex_scale)

    def grid(self, o, eu, ev, us: Sequence[float], vs: Sequence[float], skip=None) -> None:
        """Tiles ``o + u eu + v ev`` over the ``us`` x ``vs`` edges; front side ``eu x ev``.
        ``skip(u0, u1, v0, v1) -> bool`` leaves tiles out."""
        o, eu, ev = (np.asarray(a, np.float64) for a in (o, eu, ev))
        n = np.cross(eu, ev).tolist()
        ts = self.tex_scale
        for u0, u1 in zip(us[:-1], us[1:]):
            for v0, v1 in zip(vs[:-1], vs[1:]):
                if skip is not None and skip(u0, u1, v0, v1):
                    continue
                k = len(self.v)
                for u, v in ((u0, v0), (u1, v0), (u1, v1), (u0, v1)):
                    self.v.append((o + u * eu + v * ev).tolist())
                    self.uv.append([u / ts, v / ts])
                    self.n.append(n)
                self.i += [k, k + 1, k + 2, k, k + 2, k + 3]

    def ground(self, xs, ys, z: float) -> None:
        """Horizontal tiles at height ``z`` facing up (``xs``, ``ys`` ascending edges)."""
        self.grid((0, 0, z), (1, 0, 0), (0, 1, 0), xs, ys)

    def wall_x(self, xs, y: float, zs, facing: int) -> None:
        """Vertical tiles in the plane ``y`` facing ``facing`` (-1: -y, +1: +y)."""
        if facing < 0:
            self.grid((0, y, 0), (1, 0, 0), (0, 0, 1), xs, zs)
        else:
            self.grid((0, y, 0), (0, 0, 1), (1, 0, 0), zs, xs)

    def wall_y(self, x: float, ys, zs, facing: int, hidden=None) -> None:
        """Vertical tiles in the plane ``x`` facing ``facing`` (-1: -x, +1: +x), leaving out
        tiles inside ``hidden = (y0, y1, z1)`` (y0 < y1; from z = 0 to z1)."""
        def inside(y0, y1, z1):
            return (hidden is not None and hidden[0] - 1e-9 <= y0 and y1 <= hidden[1] + 1e-9
                    and z1 <= hidden[2] + 1e-9)

        if facing < 0:
            self.grid((x, 0, 0), (0, 0, 1), (0, 1, 0), zs, ys, lambda z0, z1, y0, y1: inside(y0, y1, z1))
        else:
            self.grid((x, 0, 0), (0, 1, 0), (0, 0, 1), ys, zs, lambda y0, y1, z0, z1: inside(y0, y1, z1))


# ----------------------------------------------------------------------------- scene
class StreetScene(PybulletClient):
    """One procedural street in its own headless pybullet client.

    Args:
        seed: layout, colours, lighting and camera parameters are a function of it.
        width, height: image size (px) rendered by :meth:`render`.
        length: furnished street length ahead of x = 0 (m); default covers 100 frames at the
            fastest speed plus :data:`LOOKAHEAD` (the road, sidewalks and ground go on to the
            horizon regardless).
        fov_deg: horizontal field of view (degrees); default random in :data:`FOV_RANGE`.
        textures: procedural grey-level textures on road, sidewalks, buildings, trees, fences.

    Attributes:
        body_class: body id -> class id (``CLASS_IDS``).
        camera: camera parameters (``fov_h_deg``, ``fov_y_deg``, ``height_m``, ``speed_m``,
            ``pitch_deg``, ``lane_y``, drift amplitudes/periods/phases).
        K: ``3 x 3`` float64 intrinsics of :meth:`render`.
        light: the lighting keyword arguments passed to ``getCameraImage``.

    Raises:
        ImportError: pybullet is not installed.
        ValueError: image smaller than 2 x 2.
    """

    def __init__(self, seed: int = 0, width: int = 320, height: int = 192,
                 length: Optional[float] = None, fov_deg: Optional[float] = None,
                 textures: bool = True):
        import pybullet as p
        self._p = p
        self.seed = int(seed)
        self.width, self.height = int(width), int(height)
        if self.width < 2 or self.height < 2:
            raise ValueError(f"image size must be at least 2x2, got {width}x{height}")
        ss = np.random.SeedSequence(self.seed)
        cam_rng, layout_rng, tex_rng, look_rng = (np.random.default_rng(s) for s in ss.spawn(4))
        self.length = float(street_length(100) if length is None else length)
        self.client = p.connect(p.DIRECT)
        self.body_class: Dict[int, int] = {}
        self._tex: Dict[str, int] = {}
        self._use_tex = bool(textures)
        self._pending: list = []
        try:
            self._init_camera(cam_rng, fov_deg)
            self._init_look(look_rng)
            if self._use_tex:
                self._load_textures(tex_rng)
            self._build(layout_rng)
            self._flush()
        except Exception:
            self.close()
            raise
        n = max(self.body_class) + 2 if self.body_class else 1
        self._lut = np.full(n, MISC, np.uint8)  # index = body id + 1; 0 = background
        self._lut[0] = SKY
        for b, c in self.body_class.items():
            self._lut[b + 1] = c

    # -- parameters
    def _init_camera(self, rng: np.random.Generator, fov_deg: Optional[float]) -> None:
        fov_h = float(rng.uniform(*FOV_RANGE)) if fov_deg is None else float(fov_deg)
        fov_y = vertical_fov(fov_h, self.width, self.height)
        self.camera = dict(
            fov_h_deg=fov_h, fov_y_deg=fov_y,
            height_m=float(rng.uniform(*HEIGHT_RANGE)),
            speed_m=float(rng.uniform(*SPEED_RANGE)),
            pitch_deg=float(rng.uniform(PITCH_RANGE[0] + 1.5, PITCH_RANGE[1] - 1.5)),
            yaw_amp_deg=float(rng.uniform(0.3, 2.0)), yaw_period=float(rng.uniform(60, 240)),
            pitch_amp_deg=float(rng.uniform(0.2, 1.2)), pitch_period=float(rng.uniform(40, 160)),
            lat_amp_m=float(rng.uniform(0.0, 0.25)), lat_period=float(rng.uniform(80, 300)),
            bob_amp_m=float(rng.uniform(0.0, 0.015)), bob_period=float(rng.uniform(8, 20)),
            speed_amp=float(rng.uniform(0.0, 0.08)), speed_period=float(rng.uniform(60, 200)),
            phases=[float(v) for v in rng.uniform(0, 2 * math.pi, 5)],
        )
        self.projection = self._p.computeProjectionMatrixFOV(fov_y, self.width / self.height,
                                                             NEAR, FAR)
        # exact values; pybullet's float32 matrix (projection_to_K) agrees to ~1e-7 relative
        f = (self.height / 2.0) / math.tan(math.radians(fov_y) / 2.0)
        self.K = np.array([[f, 0.0, self.width / 2.0], [0.0, f, self.height / 2.0 - 1.0], [0.0, 0.0, 1.0]])

    def _init_look(self, rng: np.random.Generator) -> None:
        az = rng.uniform(0, 2 * math.pi)
        el = rng.uniform(math.radians(25), math.radians(75))
        warm = rng.uniform(-1.0, 1.0)  # > 0: warm (low sun), < 0: cool (overcast) light
        self.light = dict(
            lightDirection=[math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)],
            lightColor=([1.0, 1.0 - 0.06 * warm, 1.0 - 0.12 * warm] if warm > 0
                        else [1.0 + 0.12 * warm, 1.0 + 0.06 * warm, 1.0]),
            lightDistance=100.0, shadow=0,
            lightAmbientCoeff=float(rng.uniform(0.45, 0.7)),
            lightDiffuseCoeff=float(rng.uniform(0.3, 0.55)),
            lightSpecularCoeff=float(rng.uniform(0.0, 0.1)),
        )
        hz = rng.uniform(0.55, 0.62)
        horizon = colorsys.hsv_to_rgb(hz, rng.uniform(0.05, 0.25), rng.uniform(0.8, 0.97))
        zenith = colorsys.hsv_to_rgb(hz, rng.uniform(0.35, 0.7), rng.uniform(0.6, 0.9))
        self.sky = dict(horizon=np.array(horizon), zenith=np.array(zenith))

    def _load_textures(self, rng: np.random.Generator) -> None:
        tmp = Path(tempfile.mkdtemp(prefix="synth_tex_"))
        try:
            for name, img in _textures(rng).items():
                path = tmp / f"{name}.png"
                cv2.imwrite(str(path), img)
                self._tex[name] = self._p.loadTexture(str(path), physicsClientId=self.client)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # -- primitives
    #: Creation order per class: pybullet's TinyRenderer draws bodies in creation order and
    #: shades only fragments that pass the depth test, so occluders (small street objects,
    #: buildings) go first and the large background surfaces last.
    _ORDER = {LANEMARK: 3, SIDEWALK: 4, ROAD: 5, BUILDING: 2}

    def _add(self, cls: int, shape: int, pos, rgba, yaw: float = 0.0, roll: float = 0.0,
             pitch: float = 0.0, tex: Optional[str] = None, order: Optional[int] = None,
             key: Optional[float] = None, **kw) -> None:
        """Queue a body; ``_flush`` creates them by ``order`` (default per class), then by ``key``
        (default: x of ``pos``; the camera drives towards +x, so nearer objects come first)."""
        self._pending.append((self._ORDER.get(cls, 1) if order is None else order,
                              float(pos[0]) if key is None else float(key), len(self._pending),
                              (cls, shape, pos, rgba, yaw, roll, pitch, tex, kw)))

    def _create(self, cls, shape, pos, rgba, yaw, roll, pitch, tex, kw) -> int:
        p = self._p
        vs = p.createVisualShape(shape, rgbaColor=rgba, physicsClientId=self.client, **kw)
        orn = p.getQuaternionFromEuler([roll, pitch, yaw])
        b = p.createMultiBody(0, -1, vs, basePosition=list(map(float, pos)), baseOrientation=orn,
                              physicsClientId=self.client)
        if tex is not None and tex in self._tex:
            p.changeVisualShape(b, -1, textureUniqueId=self._tex[tex], physicsClientId=self.client)
        self.body_class[b] = cls
        return b

    def _flush(self) -> None:
        for *_, args in sorted(self._pending, key=lambda e: e[:3]):
            self._create(*args)
        self._pending = []

    def box(self, cls: int, center, half, rgba, yaw: float = 0.0, tex: Optional[str] = None) -> None:
        """Queue a box (``half`` extents, m) of class ``cls`` (created by ``_flush``)."""
        self._add(cls, self._p.GEOM_BOX, center, rgba, yaw=yaw, tex=tex,
                  halfExtents=[float(h) for h in half])

    def cylinder(self, cls: int, center, radius: float, length: float, rgba,
                 roll: float = 0.0, yaw: float = 0.0) -> None:
        """Queue a cylinder (axis z, rotated by ``roll`` about x then ``yaw``)."""
        self._add(cls, self._p.GEOM_CYLINDER, center, rgba, roll=roll, yaw=yaw,
                  radius=float(radius), length=float(length))

    def sphere(self, cls: int, center, radius: float, rgba) -> None:
        """Queue a sphere."""
        self._add(cls, self._p.GEOM_SPHERE, center, rgba, radius=float(radius))

    # -- objects (x along the street, side s = +1 left / -1 right)
    def _tree(self, rng, x, y, h_ground):
        # the canopy sits on a trunk of 2.5-4 m: above the camera (<= 2 m) where it overhangs the road
        h = rng.uniform(2.5, 4.0)
        self.cylinder(VEGETATION, (x, y, h_ground + h / 2), rng.uniform(0.1, 0.2), h,
                      _rgb(rng.uniform(0.05, 0.1), rng.uniform(0.4, 0.7), rng.uniform(0.2, 0.4)))
        green = _rgb(rng.uniform(0.22, 0.38), rng.uniform(0.45, 0.8), rng.uniform(0.25, 0.55))
        if rng.random() < 0.5:
            r = rng.uniform(1.2, 2.2)
            self.sphere(VEGETATION, (x, y, h_ground + h + r), r, green)
        else:
            hw, hz = rng.uniform(1.0, 1.8), rng.uniform(0.8, 1.6)
            self.box(VEGETATION, (x, y, h_ground + h + hz), (hw, hw, hz), green,
                     yaw=rng.uniform(0, math.pi), tex="leaves")

    def _lamp(self, rng, x, y, s, h_ground):
        h = rng.uniform(5.0, 8.0)
        grey = _rgb(0, 0, rng.uniform(0.2, 0.6))
        self.cylinder(POLE, (x, y, h_ground + h / 2), rng.uniform(0.07, 0.12), h, grey)
        arm = rng.uniform(1.0, 2.0)
        self.box(POLE, (x, y - s * arm / 2, h_ground + h - 0.1), (0.12, arm / 2, 0.06), grey)

    def _sign(self, rng, x, y, h_ground):
        h = rng.uniform(2.0, 2.8)
        self.cylinder(POLE, (x, y, h_ground + h / 2), 0.04, h, _rgb(0, 0, rng.uniform(0.4, 0.7)))
        plates = [_rgb(0.0, 0.85, 0.8), _rgb(0.6, 0.85, 0.7), _rgb(0.14, 0.9, 0.9), _rgb(0, 0, 0.95)]
        col = plates[rng.integers(4)]
        half = rng.uniform(0.3, 0.45)
        self.box(SIGN, (x - 0.06, y, h_ground + h + half * 0.8), (0.02, half, half), col,
                 yaw=rng.uniform(-0.2, 0.2))

    def _traffic_light(self, rng, x, y, s, h_ground, over_road: bool):
        # over the road the housing hangs from an arm with its bottom above 3.9 m (the camera
        # drives below it); at the kerb it tops a 2.6-3.4 m pole
        h = rng.uniform(5.0, 6.0) if over_road else rng.uniform(2.6, 3.4)
        dark = _rgb(0, 0, rng.uniform(0.1, 0.3))
        self.cylinder(POLE, (x, y, h_ground + h / 2), rng.uniform(0.06, 0.1), h, dark)
        hy = y
        zc = h_ground + h - 0.5
        if over_road:
            arm = rng.uniform(3.0, 5.0)
            self.box(POLE, (x, y - s * arm / 2, h_ground + h - 0.1), (0.06, arm / 2, 0.06), dark)
            hy = y - s * arm
            zc = h_ground + h - 0.16 - 0.45
        housing = _rgb(rng.choice([0.0, 0.14]), rng.uniform(0, 0.8), rng.uniform(0.1, 0.35))
        self.box(TRAFFIC_LIGHT, (x - 0.1, hy, zc), (0.12, 0.18, 0.45), housing)
        lit = rng.integers(3)
        for k, c in enumerate((_rgb(0, 0.9, 1), _rgb(0.12, 0.9, 1), _rgb(0.35, 0.9, 1))):
            v = 1.0 if k == lit else 0.35
            self.box(TRAFFIC_LIGHT, (x - 0.24, hy, zc + 0.28 - 0.28 * k), (0.02, 0.09, 0.09),
                     [c[0] * v, c[1] * v, c[2] * v, 1])

    def _pedestrian(self, rng, x, y, h_ground):
        h = rng.uniform(1.5, 1.9)
        yaw = rng.uniform(0, 2 * math.pi)
        legs = _rgb(rng.uniform(0, 1), rng.uniform(0, 0.6), rng.uniform(0.1, 0.5))
        torso = _rgb(rng.uniform(0, 1), rng.uniform(0.2, 0.9), rng.uniform(0.2, 0.9))
        w = rng.uniform(0.18, 0.25)
        self.box(PEDESTRIAN, (x, y, h_ground + 0.45 * h / 2), (0.12, w * 0.8, 0.45 * h / 2), legs, yaw=yaw)
        self.box(PEDESTRIAN, (x, y, h_ground + 0.45 * h + 0.4 * h / 2), (0.13, w, 0.4 * h / 2), torso,
                 yaw=yaw)
        self.sphere(PEDESTRIAN, (x, y, h_ground + 0.92 * h), 0.11,
                    _rgb(rng.uniform(0.03, 0.1), rng.uniform(0.3, 0.6), rng.uniform(0.35, 0.9)))

    def _cyclist(self, rng, x, y, h_ground):
        bike = _rgb(rng.uniform(0, 1), rng.uniform(0.3, 0.9), rng.uniform(0.2, 0.8))
        r = rng.uniform(0.3, 0.36)
        for dx in (-0.55, 0.55):
            self.cylinder(CYCLIST, (x + dx, y, h_ground + r), r, 0.05, _rgb(0, 0, 0.12), roll=math.pi / 2)
        self.box(CYCLIST, (x, y, h_ground + r + 0.25), (0.55, 0.03, 0.05), bike)
        self.box(CYCLIST, (x - 0.15, y, h_ground + r + 0.3), (0.04, 0.03, 0.3), bike)
        body = _rgb(rng.uniform(0, 1), rng.uniform(0.3, 0.9), rng.uniform(0.3, 0.9))
        self.box(CYCLIST, (x - 0.1, y, h_ground + r + 0.95), (0.15, 0.18, 0.32), body, yaw=0.0)
        self.box(CYCLIST, (x - 0.25, y, h_ground + r + 0.55), (0.25, 0.12, 0.1), body)
        self.sphere(CYCLIST, (x - 0.05, y, h_ground + r + 1.4), 0.12, _rgb(0.07, 0.5, 0.6))

    def _vehicle(self, rng, x, y, yaw=0.0):
        kind = rng.random()
        paint = _rgb(rng.uniform(0, 1), rng.uniform(0.0, 0.9), rng.uniform(0.15, 0.95))
        glass = _rgb(0.6, 0.3, rng.uniform(0.1, 0.25))
        if kind < 0.75:  # car
            L, W, H = rng.uniform(3.8, 4.8), rng.uniform(1.7, 1.9), rng.uniform(0.6, 0.8)
            top = rng.uniform(0.45, 0.6)
        else:  # van / truck
            L, W, H = rng.uniform(5.0, 8.0), rng.uniform(2.0, 2.5), rng.uniform(1.6, 2.6)
            top = 0.0
        c, s_ = math.cos(yaw), math.sin(yaw)
        self.box(VEHICLE, (x, y, 0.3 + H / 2), (L / 2, W / 2, H / 2), paint, yaw=yaw)
        if top > 0:
            off = rng.uniform(-0.4, 0.1)
            self.box(VEHICLE, (x + off * c, y + off * s_, 0.3 + H + top / 2),
                     (L * 0.28, W / 2 - 0.08, top / 2),
                     glass, yaw=yaw)
        for fx in (-0.32, 0.32):
            for fy in (-1, 1):
                dx, dy = fx * L, fy * (W / 2 - 0.05)
                self.cylinder(VEHICLE, (x + dx * c - dy * s_, y + dx * s_ + dy * c, 0.33), 0.33, 0.22,
                              _rgb(0, 0, 0.1), roll=math.pi / 2, yaw=yaw)

    def _misc(self, rng, x, y, h_ground):
        k = rng.integers(4)
        col = _rgb(rng.uniform(0, 1), rng.uniform(0.2, 0.9), rng.uniform(0.2, 0.8))
        if k == 0:    # bin
            self.cylinder(MISC, (x, y, h_ground + 0.45), 0.3, 0.9, col)
        elif k == 1:  # bench
            self.box(MISC, (x, y, h_ground + 0.45), (0.9, 0.25, 0.05), col)
            self.box(MISC, (x, y, h_ground + 0.2), (0.8, 0.05, 0.2), col)
        elif k == 2:  # crates / boxes
            for n in range(rng.integers(1, 4)):
                hs = rng.uniform(0.2, 0.45)
                self.box(MISC, (x + rng.uniform(-0.5, 0.5), y + rng.uniform(-0.3, 0.3), h_ground + hs),
                         (hs, hs, hs), col, yaw=rng.uniform(0, 1.5), tex="checker")
        else:         # kiosk / utility cabinet
            self.box(MISC, (x, y, h_ground + 0.7), (0.35, 0.25, 0.7), col)

    def _fence(self, rng, x0, x1, y, h_ground):
        h = rng.uniform(0.8, 1.8)
        col = _rgb(rng.uniform(0.05, 0.6), rng.uniform(0, 0.5), rng.uniform(0.3, 0.7))
        self.box(FENCE, ((x0 + x1) / 2, y, h_ground + h / 2), ((x1 - x0) / 2, 0.04, h / 2), col,
                 tex="bars")

    def _building(self, rng, x0, x1, setback, front, s, prev=None) -> Tuple[float, float, float, float]:
        """A building over ``[x0, x1]`` on side ``s``, its facade ``setback`` m behind the
        sidewalk edge ``front``. ``prev``: ``(x1, setback, depth, height)`` of the building just
        before it, whose body hides the lower part of this one's -x side wall. Returns the same
        tuple for this one."""
        depth = rng.uniform(8, 16)
        h = rng.uniform(5, 35) if rng.random() < 0.8 else rng.uniform(35, 60)
        pal = rng.integers(4)
        if pal == 0:
            col = _rgb(rng.uniform(0.05, 0.12), rng.uniform(0.2, 0.5), rng.uniform(0.6, 0.95))  # beige
        elif pal == 1:
            col = _rgb(rng.uniform(0.0, 0.05), rng.uniform(0.4, 0.7), rng.uniform(0.4, 0.7))   # brick
        elif pal == 2:
            col = _rgb(0, 0, rng.uniform(0.4, 0.9))                                             # grey
        else:
            col = _rgb(rng.uniform(0, 1), rng.uniform(0.1, 0.4), rng.uniform(0.6, 0.95))       # pastel
        tex = ["windows", "brick", "windows", "checker"][pal]
        m = _Mesh(tex_scale=rng.uniform(8.0, 14.0) if tex == "windows" else 4.0)
        xs = _edges(x0, x1, 4.0)
        y_front, y_back = s * (front + setback), s * (front + setback + depth)
        m.wall_x(xs, y_front, _edges(0.0, h, 8.0), facing=-s)   # facade, towards the street
        lo, hi = sorted((y_front, y_back))
        ys = _edges(lo, hi, 4.0)
        zs = _edges(0.0, h, 8.0)
        hidden = None  # TinyRenderer scans hidden triangles too: leave out what prev covers
        if prev is not None and abs(prev[0] - x0) < 1e-9:
            a, b = sorted((s * (front + prev[1]), s * (front + prev[1] + prev[2])))
            a, b, hz = max(a, lo), min(b, hi), min(prev[3], h)
            if b > a:
                ys = np.unique(np.concatenate([_edges(lo, a, 4.0), _edges(a, b, 4.0), _edges(b, hi, 4.0)]))
                zs = np.unique(np.concatenate([_edges(0.0, hz, 8.0), _edges(hz, h, 8.0)]))
                hidden = (a, b, hz)
        m.wall_y(x0, ys, zs, facing=-1, hidden=hidden)          # side wall seen from the start
        m.wall_y(x1, _edges(lo, hi, 4.0), _edges(0.0, h, 8.0), facing=+1)  # back-facing when driving
        self.mesh(BUILDING, m, col, tex, key=x0)                 # roof / back / floor: never seen
        return (x1, setback, depth, h)

    def mesh(self, cls: int, m: "_Mesh", rgba, tex: Optional[str] = None,
             order: Optional[int] = None, key: float = 0.0) -> None:
        """Queue a triangle mesh (:class:`_Mesh`) of class ``cls`` as one body."""
        if m.i:
            self._add(cls, self._p.GEOM_MESH, (0, 0, 0), rgba, tex=tex, order=order, key=key, vertices=m.v,
                      indices=m.i, uvs=m.uv, normals=m.n)

    # -- the street
    def _build(self, rng: np.random.Generator) -> None:
        """Build the street; the parts draw from ``rng`` in a fixed order (same seed -> same
        street, :data:`GENERATOR_VERSION`)."""
        lane = rng.uniform(3.0, 3.75)
        road = lane + rng.uniform(0.6, 2.6)        # half width: a lane + a parking strip
        walk = rng.uniform(2.0, 4.5)
        curb = rng.uniform(0.1, 0.2)
        front = road + walk
        x_lo, x_hi = -_BEHIND, self.length
        self.street = dict(lane_m=lane, road_half_m=road, sidewalk_m=walk, curb_m=curb,
                           x_range=[x_lo, x_hi])
        self.camera["lane_y"] = -lane / 2
        # street dimensions (m) shared by the build steps
        self._dims = dict(lane=lane, road=road, walk=walk, curb=curb, front=front, x_lo=x_lo,
                          x_hi=x_hi)
        xs = _far_edges(x_lo, x_hi, 2.5)    # 2.5 m tiles: the best scan / vertex trade-off
        self._build_surfaces(rng, xs)
        self._build_lane_marks(rng, xs)
        clear = self._build_cluster(rng)
        self._build_buildings(rng)
        self._build_furniture(rng, clear)
        self._build_traffic(rng, clear)

    def _build_surfaces(self, rng: np.random.Generator, xs: np.ndarray) -> None:
        """Ground, road and sidewalks as tiled meshes along ``xs``."""
        lane, road, curb, front, x_lo, x_hi = (
            self._dims[k] for k in ("lane", "road", "curb", "front", "x_lo", "x_hi"))
        # Large surfaces are tiled meshes: TinyRenderer scans the screen bounding box of every
        # front-facing triangle, so long thin triangles (a road to the horizon) cost a lot.
        # ground (grass / terrain beside and beyond the street, Vegetation) out to the horizon
        g = _Mesh(tex_scale=6.0)
        y_out = _geometric(front, 5.0)                      # front .. _GROUND
        g.ground(_far_edges(x_lo, x_hi, 10.0), y_out, 0.0)
        g.ground(_far_edges(x_lo, x_hi, 10.0), -y_out[::-1], 0.0)
        grass = _rgb(rng.uniform(0.2, 0.32), rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.45))
        self.mesh(VEGETATION, g, grass, "leaves", order=6)
        # road and sidewalks (top + curb faces)
        r = _Mesh(tex_scale=rng.uniform(4.0, 8.0))
        r.ground(xs, np.array([-road, -lane, 0.0, lane, road]), 0.0)
        asphalt = _rgb(rng.uniform(0, 1), rng.uniform(0, 0.08), rng.uniform(0.28, 0.45))
        self.mesh(ROAD, r, asphalt, "asphalt")
        w = _Mesh(tex_scale=rng.uniform(1.5, 3.0))
        for s in (-1, 1):
            w.ground(xs, np.sort([s * road, s * front]), curb)
            w.wall_x(xs, s * road, np.array([0.0, curb]), facing=-s)
        self.mesh(SIDEWALK, w, _rgb(rng.uniform(0.05, 0.12), rng.uniform(0, 0.15), rng.uniform(0.55, 0.8)),
                  "paving")

    def _build_lane_marks(self, rng: np.random.Generator, xs: np.ndarray) -> None:
        """Centre line, optional edge lines and a pedestrian crossing."""
        lane, road, x_lo, x_hi = (
            self._dims[k] for k in ("lane", "road", "x_lo", "x_hi"))
        xs1 = _far_edges(x_lo, x_hi, 1.0)   # thin lines: short pieces
        # lane marks (flat quads 1 cm above the road): dashed centre line, optional edge lines,
        # a pedestrian crossing
        centre = _Mesh()
        mw = rng.uniform(0.06, 0.09)
        dash, gap = rng.uniform(2.5, 4.0), rng.uniform(3.0, 6.0)
        x = x_lo
        while x < x_hi:
            centre.ground(_edges(x, x + dash, 1.0), np.array([-mw, mw]), 0.01)
            x += dash + gap
        centre.ground(_geometric(x, 2.0), np.array([-mw, mw]), 0.01)
        yellow = rng.random() < 0.3
        self.mesh(LANEMARK, centre, _rgb(0.14, 0.85, 0.9) if yellow else _rgb(0, 0, 0.92))
        marks = _Mesh()
        if rng.random() < 0.7:
            for s in (-1, 1):
                marks.ground(xs1, np.sort([s * (lane - mw), s * (lane + mw)]), 0.01)
        xc = rng.uniform(55, max(60, x_hi - 20))
        for k in range(int(2 * road / 1.0)):
            y0 = -road + 0.25 + k
            marks.ground(np.array([xc - 1.5, xc + 1.5]), np.array([y0, y0 + 0.5]), 0.01)
        self.mesh(LANEMARK, marks, _rgb(0, 0, 0.92))

    def _build_cluster(self, rng: np.random.Generator) -> Tuple[float, float]:
        """Every small class ahead of the start on the camera's side; returns the
        x range that random furniture keeps clear."""
        lane, road, walk, curb, front = (
            self._dims[k] for k in ("lane", "road", "walk", "curb", "front"))
        # guaranteed cluster of every small class ahead of the start, on the camera's side
        s, h_g = -1, curb
        y_curb = s * (road + 0.5)
        y_mid = s * (road + walk * 0.55)
        y_back = s * (road + walk - 0.35)
        y_road = s * (road - 0.8)
        j = lambda: rng.uniform(-1.0, 1.0)  # noqa: E731
        self._lamp(rng, 10 + j(), y_curb, s, h_g)
        self._misc(rng, 13 + j(), y_back, h_g)
        self._sign(rng, 16 + j(), y_curb, h_g)
        self._pedestrian(rng, 19 + j(), y_mid, h_g)
        self._cyclist(rng, 23 + j(), y_road, 0.0)
        self._traffic_light(rng, 28 + j(), y_curb, s, h_g, over_road=False)
        self._tree(rng, 33 + j(), y_curb, h_g)
        self._fence(rng, 12.0, 12.0 + rng.uniform(8, 14), s * (front - 0.08), h_g)
        self._vehicle(rng, 24 + 4 * j(), lane / 2 + rng.uniform(-0.2, 0.2), yaw=math.pi)
        clear = (8.0, 38.0)  # random furniture stays off the cluster on the camera's side
        return clear

    def _build_buildings(self, rng: np.random.Generator) -> None:
        """Facades with gaps (hedges, fences, trees behind the sidewalk)."""
        curb, front, x_lo, x_hi = (
            self._dims[k] for k in ("curb", "front", "x_lo", "x_hi"))
        # buildings with gaps (hedges / fences / trees behind the sidewalk)
        for s in (-1, 1):
            x, prev = x_lo, None
            while x < x_hi:
                L = rng.uniform(8, 25)
                setback = rng.uniform(0.0, 1.5) if rng.random() < 0.4 else 0.0
                if rng.random() < 0.18:  # gap
                    if rng.random() < 0.6:
                        self._fence(rng, x + 0.3, x + L - 0.3, s * (front - 0.08), curb)
                    self._tree(rng, x + L / 2, s * (front + 2.5), 0.0)
                    self.box(VEGETATION, (x + L / 2, s * (front + 6), 1.0), (L / 2 - 0.5, 2.0, 1.0),
                             _rgb(rng.uniform(0.22, 0.36), 0.6, rng.uniform(0.25, 0.45)), tex="leaves")
                    prev = None
                else:
                    prev = self._building(rng, x, x + L, setback, front, s, prev)
                x += L
                if rng.random() < 0.3:
                    x += rng.uniform(0.2, 3.0)
                    prev = None

    def _build_furniture(self, rng: np.random.Generator, clear: Tuple[float, float]) -> None:
        """Kerbside furniture and sidewalk life."""
        road, walk, curb, front, x_lo, x_hi = (
            self._dims[k] for k in ("road", "walk", "curb", "front", "x_lo", "x_hi"))
        # kerbside furniture, sidewalk life, road users
        p_tree = rng.uniform(0.1, 0.6)
        for s in (-1, 1):
            x = x_lo + rng.uniform(0, 5)
            while x < x_hi:
                if not (s == -1 and clear[0] <= x <= clear[1]):
                    y_curb = s * (road + rng.uniform(0.4, 0.7))
                    u = rng.random()
                    if u < p_tree:
                        self._tree(rng, x, y_curb, curb)
                    elif u < p_tree + 0.2:
                        self._lamp(rng, x, y_curb, s, curb)
                    elif u < p_tree + 0.28:
                        self._sign(rng, x, y_curb, curb)
                    elif u < p_tree + 0.33:
                        self._traffic_light(rng, x, y_curb, s, curb, over_road=rng.random() < 0.5)
                    if rng.random() < 0.35:
                        self._pedestrian(rng, x + rng.uniform(-2, 2),
                                         s * (road + rng.uniform(1.0, walk - 0.4)), curb)
                    if rng.random() < 0.2:
                        self._misc(rng, x + rng.uniform(-2, 2), s * (front - 0.4), curb)
                x += rng.uniform(6, 14)

    def _build_traffic(self, rng: np.random.Generator, clear: Tuple[float, float]) -> None:
        """Parked and oncoming vehicles, cyclists."""
        lane, road, x_lo, x_hi = (
            self._dims[k] for k in ("lane", "road", "x_lo", "x_hi"))
        park = road - lane >= 1.8
        for s in (-1, 1):
            x = x_lo + rng.uniform(0, 8)
            while x < x_hi:
                if not (s == -1 and clear[0] - 6 <= x <= clear[1] + 3):
                    u = rng.random()
                    if u < 0.45 and park:
                        self._vehicle(rng, x, s * (road - 1.1), yaw=0.0 if s < 0 else math.pi)
                    elif u < 0.6:
                        self._cyclist(rng, x, s * (road - 0.6), 0.0)
                    elif s > 0 and u < 0.8:  # oncoming traffic (static) in the other lane
                        self._vehicle(rng, x, lane / 2 + rng.uniform(-0.3, 0.3), yaw=math.pi)
                x += rng.uniform(7, 20)

    # -- camera
    def trajectory(self, n: int) -> List[np.ndarray]:
        """``n`` camera poses (``4 x 4`` optical camera-to-world) of a smooth 30 Hz drive along
        the right lane from x = 0: ``speed_m`` m per frame (+- ``speed_amp``), with slow yaw,
        pitch, lateral and height drift (sinusoids of the scene's random periods/phases)."""
        c = self.camera
        ph = c["phases"]

        def wave(t, amp, period, phase):
            return c[amp] * math.sin(2 * math.pi * t / c[period] + ph[phase])

        poses, x = [], 0.0
        for t in range(int(n)):
            if t:
                x += c["speed_m"] * (1.0 + wave(t, "speed_amp", "speed_period", 4))
            yaw = wave(t, "yaw_amp_deg", "yaw_period", 0)
            pitch = c["pitch_deg"] + wave(t, "pitch_amp_deg", "pitch_period", 1)
            pitch = min(max(pitch, PITCH_RANGE[0]), PITCH_RANGE[1])
            y = c["lane_y"] + wave(t, "lat_amp_m", "lat_period", 2)
            z = c["height_m"] + wave(t, "bob_amp_m", "bob_period", 3)
            poses.append(camera_pose((x, y, z), yaw, pitch))
        return poses

    # -- rendering
    def _sky_rgb(self, pose: np.ndarray) -> np.ndarray:
        """Per-row sky colour (``H x 1 x 3`` uint8) from the elevation of each image row."""
        rows = np.arange(self.height, dtype=np.float64)
        rays = np.stack([np.zeros_like(rows), (rows - self.K[1, 2]) / self.K[1, 1], np.ones_like(rows)], 1)
        d = rays @ np.asarray(pose)[:3, :3].T
        el = np.arctan2(d[:, 2], np.hypot(d[:, 0], d[:, 1]))
        w = np.clip(el / math.radians(40), 0, 1)[:, None] ** 0.7
        col = (1 - w) * self.sky["horizon"] + w * self.sky["zenith"]
        return np.round(col * 255).astype(np.uint8)[:, None, :]

    def render(self, camera_pose: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Render the street from ``camera_pose``.

        Args:
            camera_pose: ``4 x 4`` camera-to-world, optical axes (x right, y down, z forward), m.

        Returns:
            ``(rgb, depth, labels, K)``: ``H x W x 3`` uint8 RGB; ``H x W`` float32 z-depth in m
            (sky = :data:`SKY_DEPTH`, geometry clipped to ``[NEAR, MAX_GEOMETRY_DEPTH]``);
            ``H x W`` uint8 class ids 0..13 (:data:`CLASS_IDS`, background = Sky); ``3 x 3``
            float64 K.
        """
        rgba, buf, mask = self._raw(camera_pose)
        sky = mask < 0                      # background: nothing drawn -> Sky
        body = mask & _MASK24               # object id (the link index sits in the top bits)
        body[sky] = -1
        labels = self._lut[body + 1]        # _lut[0] = Sky
        depth = opengl_depth_to_metric(buf, NEAR, FAR)
        np.clip(depth, NEAR, MAX_GEOMETRY_DEPTH, out=depth)
        depth[sky] = SKY_DEPTH
        return self._with_sky(rgba, sky, camera_pose), depth, labels, self.K.copy()

    def _with_sky(self, rgba: np.ndarray, sky: np.ndarray, pose: np.ndarray) -> np.ndarray:
        rgb = rgba[..., :3].copy()
        if sky.any():
            rgb[sky] = np.broadcast_to(self._sky_rgb(pose), rgb.shape)[sky]
        return rgb

    def render_rgb(self, camera_pose: np.ndarray) -> np.ndarray:
        """Colour only (``H x W x 3`` uint8) from ``camera_pose``, e.g. the right camera of a
        stereo pair (:func:`stereo_pose`). Sky pixels are those at the far plane."""
        rgba, buf, _ = self._raw(camera_pose, seg=False)
        return self._with_sky(rgba, buf >= 1.0, camera_pose)

    def describe(self) -> dict:
        """JSON-able scene parameters (seed, street, camera, lighting, K, class of each body)."""
        cls_count = np.bincount(np.array(list(self.body_class.values()), int), minlength=len(CLASS_NAMES))
        return dict(seed=self.seed, width=self.width, height=self.height, near=NEAR, far=FAR,
                    street=self.street, camera=self.camera, K=self.K.tolist(),
                    light={k: v for k, v in self.light.items()}, bodies=len(self.body_class),
                    bodies_per_class={CLASS_NAMES[i]: int(n) for i, n in enumerate(cls_count)})


