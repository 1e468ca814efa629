"""Compact training packs: a dataset resized to the training resolution (ROS-free).

A pack is the generic folder layout read by :class:`~mono_depth_ros.data.generic.ImageDepthFolder`
(``rgb/<stem>.jpg``, ``depth/<stem>.png`` uint16 millimetres with 0 invalid,
``intrinsics.txt`` scaled to the new size), so it needs no reader of its own. At 192x256 the
1000 7-Scenes frames take about 35 MB, small enough to carry to a GPU machine that cannot see
``../shared/data``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Tuple, Union

import cv2
import numpy as np

from ..core.geometry import scale_intrinsics


def write_pack(samples: Iterable, out: Union[str, Path], size: Tuple[int, int],
               jpeg_quality: int = 92) -> dict:
    """Write ``samples`` resized to ``size = (h, w)`` as a generic image/depth folder.

    RGB is area-resized and JPEG-encoded; depth is nearest-neighbour resized (holes stay holes),
    stored as uint16 millimetres with 0 = invalid. Depth the format cannot hold (beyond 65.534 m:
    KITTI's far points, SYNTHIA's sky) is stored as invalid, never as a wrong valid value.

    Returns:
        ``{"frames": n, "bytes": total size, "path": str}``.

    Raises:
        ValueError: samples of different intrinsics (one ``intrinsics.txt`` per pack).
    """
    out = Path(out)
    (out / "rgb").mkdir(parents=True, exist_ok=True)
    (out / "depth").mkdir(parents=True, exist_ok=True)
    h, w = size
    K0, n = None, 0
    for s in samples:
        sx, sy = w / s.rgb.shape[1], h / s.rgb.shape[0]
        K = scale_intrinsics(s.K, sx, sy)
        if K0 is None:
            K0 = K
            np.savetxt(out / "intrinsics.txt", K)
        elif not np.allclose(K, K0, rtol=1e-6):
            raise ValueError(f"{s.name}: intrinsics differ from the first frame's; one K per pack")
        rgb = cv2.resize(s.rgb, (w, h), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out / "rgb" / f"{s.name}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        if s.depth is not None:
            d = cv2.resize(s.depth, (w, h), interpolation=cv2.INTER_NEAREST)
            mm = np.round(np.where(np.isfinite(d), d * 1000.0, 0.0))
            mm[(mm < 1) | (mm > 65534)] = 0  # out of the format's range: invalid, not clipped
            mm = mm.astype(np.uint16)
            cv2.imwrite(str(out / "depth" / f"{s.name}.png"), mm)
        n += 1
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"frames": n, "bytes": total, "path": str(out)}
