"""``mono-depth-ros export``: a registered model (its default or given weights) -> ONNX file.

The file carries the model's spec as metadata, so ``model:=onnx checkpoint:=FILE.onnx`` (and
``evaluate --model onnx --checkpoint FILE.onnx``) runs it with the same pre/post-processing.
The command prints the largest absolute difference between ONNX Runtime and PyTorch outputs on
one random input (parity).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import torch


def parse_size(text: Optional[str], layout: str = "HxW", example: str = "192x256"
               ) -> Optional[Tuple[int, int]]:
    """``"AxB"`` -> ``(A, B)``, two positive integers in ``layout`` order (``HxW`` for a
    network input, ``WxH`` for a camera resolution); None stays None.

    Raises:
        ValueError: not two positive integers separated by ``x``.
    """
    if not text:
        return None
    try:
        a, b = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size must be {layout}, e.g. {example}, got {text!r}") from None
    if a <= 0 or b <= 0:
        raise ValueError(f"size must be positive, got {text!r}")
    return a, b


def export_model(model: str, out: str, checkpoint: Optional[str] = None,
                 input_size: Optional[Tuple[int, int]] = None, device: str = "cpu",
                 seed: int = 0) -> dict:
    """Export ``model`` to ``out`` and check parity.

    Args:
        model: registered name.
        out: ``.onnx`` path to write.
        checkpoint: weights (default: the model's shipped weights or hub id).
        input_size: network input ``(h, w)`` (default: the spec's).
        device: where PyTorch runs for the parity check (the export itself runs on the CPU).
        seed: seed of the random parity input.

    Returns:
        dict with ``path``, ``input`` shape, ``max_abs_diff`` per output, ``output_range``
        (min, max of the PyTorch depth) and ``checkpoint``.
    """
    from ..inference.estimator import DepthEstimator
    from ..inference.onnx_export import export_onnx, parity
    est = DepthEstimator(model, checkpoint=checkpoint, device="cpu", backend="torch",
                         input_size=input_size)
    h, w = est.input_size
    channels = 3 + (est.spec.num_classes if est.spec.needs_semantic_input else 0)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(1, channels, h, w, generator=gen) * 2 - 1
    path = export_onnx(est.net, est.spec.replace(input_size=(h, w)), out, x)
    net = est.net.to(device)
    with torch.inference_mode():
        out = net(x.to(device))
    diffs = parity(net, path, x.to(device), reference=out)
    ref = out["depth"] if isinstance(out, dict) and "depth" in out else out
    rng = [float(ref.min()), float(ref.max())] if torch.is_tensor(ref) else None
    return {"path": str(path), "input": [1, channels, h, w], "max_abs_diff": diffs,
            "output_range": rng, "checkpoint": est.checkpoint, "warnings": est.warnings}


def export_command(args) -> int:
    """CLI handler: prints the file, its size and the parity per output."""
    res = export_model(args.model, args.out, args.checkpoint or None, parse_size(args.input_size),
                       args.device)
    for w in res["warnings"]:
        print(f"warning: {w}")
    size = Path(res["path"]).stat().st_size / 2**20
    print(f"wrote {res['path']} ({size:.1f} MiB) for input {'x'.join(map(str, res['input']))} "
          f"from {res['checkpoint'] or 'untrained weights'}")
    rng = res["output_range"]
    for name, diff in res["max_abs_diff"].items():
        extra = f" (PyTorch depth output range {rng[0]:.4g} .. {rng[1]:.4g})" \
            if name == "depth" and rng else ""
        print(f"parity {name}: max |onnxruntime - pytorch| = {diff:.3g}{extra}")
    return 0
