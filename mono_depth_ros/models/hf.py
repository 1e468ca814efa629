"""Hugging Face ``transformers`` depth networks in the package's registry (optional dependency).

Every row of :data:`HF_MODELS` registers one name with its hub id, ``transformers`` class family,
output kind, depth range, the weights' licence and the paper. The family (:data:`FAMILIES`)
holds the class and the defaults of the model's own image processor (resize rule, multiple of 14
for DINOv2 backbones, interpolation, normalisation, output resize) as a
:class:`~mono_depth_ros.models.spec.Preprocessing` recipe, which the runtime applies with tensors
on the model's device; a checkpoint's ``preprocessor_config.json`` overrides those defaults.

Weights: ``checkpoint`` is a local folder in ``save_pretrained`` layout or a hub id; empty means
the row's hub id (from the Hugging Face cache, downloaded where the network allows). Offline
(``HF_HUB_OFFLINE=1`` or no network) and not cached gives :class:`HubWeightsUnavailable` naming
the hub id and the command that fetches it on a connected machine; a folder without weights for
every parameter is refused. Random weights are never used.

``transformers`` is imported only when one of these models is built: the package imports without
it, and asking for one of these models without it raises :class:`TransformersMissing`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import nn

from .registry import register_model
from .spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec, Preprocessing

#: Version this package is tested with (requirements.txt pins it).
TRANSFORMERS_PIN = "transformers==5.23.0"
_HALF = (0.5, 0.5, 0.5)
#: PIL resampling codes stored in ``preprocessor_config.json`` -> :data:`spec.INTERPOLATIONS`.
_PIL_RESAMPLE = {2: "bilinear", 3: "bicubic"}

CITATIONS = {
    "depth_anything_v2": "Yang et al., 'Depth Anything V2', NeurIPS 2024 (arXiv:2406.09414)",
    "depth_pro": ("Bochkovskii et al., 'Depth Pro: Sharp Monocular Metric Depth in Less Than a "
                  "Second', ICLR 2025 (arXiv:2410.02073)"),
    "zoedepth": ("Bhat et al., 'ZoeDepth: Zero-shot Transfer by Combining Relative and Metric "
                 "Depth', arXiv:2302.12288, 2023"),
    "glpn": ("Kim et al., 'Global-Local Path Networks for Monocular Depth Estimation with "
             "Vertical CutDepth', arXiv:2201.07436, 2022"),
    "dpt": ("Ranftl, Bochkovskiy, Koltun, 'Vision Transformers for Dense Prediction', ICCV 2021; "
            "Ranftl et al., 'Towards Robust Monocular Depth Estimation: Mixing Datasets for "
            "Zero-shot Cross-dataset Transfer' (MiDaS), TPAMI 2022"),
}


class TransformersMissing(ImportError):
    """A Hugging Face model was asked for but ``transformers`` is not installed."""


class HubWeightsUnavailable(OSError):
    """The weights are neither a local folder nor in the Hugging Face cache, and the hub cannot
    be reached (offline or no network); the message says how to fetch them."""


@dataclass(frozen=True)
class Family:
    """One ``transformers`` depth architecture and its image processor's defaults.

    Attributes:
        model_class: ``transformers`` class name (``...ForDepthEstimation``).
        input_size: the processor's ``size`` ``(height, width)``.
        preprocessing: the processor's resize rule, interpolation and output resize.
        mean, std: the processor's normalisation (identity for GLPN, which only rescales).
        config_kind: reads the output kind from a loaded config (to refuse a checkpoint of the
            wrong kind), or None.
    """

    model_class: str
    input_size: Tuple[int, int]
    preprocessing: Preprocessing
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    config_kind: Optional[Callable[[object], str]] = None


FAMILIES: Dict[str, Family] = {
    # DPTImageProcessor: keep aspect ratio, sides rounded to multiples of 14, bicubic on uint8
    "depth_anything": Family(
        "DepthAnythingForDepthEstimation", (518, 518),
        Preprocessing(resize="keep_aspect", multiple=14, interpolation="bicubic",
                      output_interpolation="bicubic"),
        config_kind=lambda c: ("metric_depth" if getattr(c, "depth_estimation_type", "") == "metric"
                               else "relative_inverse")),
    "dpt": Family(
        "DPTForDepthEstimation", (384, 384),
        Preprocessing(resize="stretch", multiple=1, interpolation="bicubic",
                      output_interpolation="bicubic"), mean=_HALF, std=_HALF),
    # GLPNImageProcessor: image size rounded down to multiples of 32, rescale only
    "glpn": Family(
        "GLPNForDepthEstimation", (480, 640),
        Preprocessing(resize="floor_multiple", multiple=32, interpolation="bilinear",
                      output_interpolation="bicubic"), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),
    # ZoeDepthImageProcessor: rescale, reflect pad, F.interpolate(align_corners=True), normalise
    "zoedepth": Family(
        "ZoeDepthForDepthEstimation", (384, 512),
        Preprocessing(resize="keep_aspect", multiple=32, interpolation="bilinear", antialias=False,
                      align_corners=True, normalize_first=True, reflect_pad=True,
                      output_interpolation="bicubic"), mean=_HALF, std=_HALF),
    # DepthProImageProcessor: rescale + normalise first, then bilinear without antialias
    "depth_pro": Family(
        "DepthProForDepthEstimation", (1536, 1536),
        Preprocessing(resize="stretch", multiple=1, interpolation="bilinear", antialias=False,
                      normalize_first=True, output_interpolation="bilinear"),
        mean=_HALF, std=_HALF),
}

_APACHE, _CC_BY_NC = "Apache-2.0", "CC-BY-NC-4.0 (non-commercial)"
_REL, _MET = "relative_inverse", "metric_depth"


def _da_rows() -> Dict[str, tuple]:
    rows = {}
    for size in ("small", "base", "large"):
        lic = _APACHE if size == "small" else _CC_BY_NC  # as the Depth Anything V2 repo states
        cap = size.capitalize()
        rows[f"depth_anything_v2_{size}"] = (
            f"depth-anything/Depth-Anything-V2-{cap}-hf", "depth_anything", _REL, (0.1, 10.0),
            lic, "depth_anything_v2", f"Depth Anything V2 {cap} (DINOv2 + DPT head); relative")
        for scene, far in (("indoor", 20.0), ("outdoor", 80.0)):
            rows[f"depth_anything_v2_metric_{scene}_{size}"] = (
                f"depth-anything/Depth-Anything-V2-Metric-{scene.capitalize()}-{cap}-hf",
                "depth_anything", _MET, (0.1, far), lic, "depth_anything_v2",
                f"Depth Anything V2 {cap} fine-tuned for metric {scene} depth (up to {far:.0f} m)")
    return rows


#: name -> (hub id, family, output kind, depth range (m), weights licence, citation key,
#: description). Licences as stated on the hub model cards.
HF_MODELS: Dict[str, tuple] = {
    **_da_rows(),
    "depth_pro": ("apple/DepthPro-hf", "depth_pro", "canonical_inverse_depth", (0.1, 100.0),
                  "Apple ML Research Model licence (research only)", "depth_pro",
                  "Depth Pro (multi-scale DINOv2), metric; predicts its field of view"),
    "zoedepth_nyu_kitti": ("Intel/zoedepth-nyu-kitti", "zoedepth", _MET, (0.1, 80.0), "MIT",
                           "zoedepth", "ZoeDepth (BEiT-L + metric bins), NYU + KITTI heads"),
    "glpn_nyu": ("vinvino02/glpn-nyu", "glpn", _MET, (0.1, 10.0), _APACHE, "glpn",
                 "GLPN (SegFormer encoder) trained on NYU Depth V2, metric indoor"),
    "glpn_kitti": ("vinvino02/glpn-kitti", "glpn", _MET, (0.1, 80.0), _APACHE, "glpn",
                   "GLPN (SegFormer encoder) trained on KITTI, metric outdoor"),
    "dpt_large": ("Intel/dpt-large", "dpt", _REL, (0.1, 10.0), _APACHE, "dpt",
                  "DPT-Large (ViT-L/16), MiDaS v3 relative inverse depth"),
    "dpt_hybrid_midas": ("Intel/dpt-hybrid-midas", "dpt", _REL, (0.1, 10.0), _APACHE, "dpt",
                         "DPT-Hybrid (ViT + BiT), MiDaS v3 relative inverse depth"),
}


def hf_spec(name: str) -> ModelSpec:
    """The registered :class:`ModelSpec` of Hugging Face model ``name`` (a row of
    :data:`HF_MODELS`); ``extras`` holds ``hub_id`` and ``family``."""
    hub_id, family, kind, rng, licence, cite, desc = HF_MODELS[name]
    fam = FAMILIES[family]
    return ModelSpec(name=name, input_size=fam.input_size, output_kind=kind,
                     citation=CITATIONS[cite],
                     description=desc, mean=fam.mean, std=fam.std, depth_range=rng,
                     weights_licence=licence, preprocessing=fam.preprocessing,
                     extras={"hub_id": hub_id, "family": family,
                             "predicts_focal": family == "depth_pro"})


def require_transformers():
    """Import ``transformers`` or raise :class:`TransformersMissing` with the install line."""
    try:
        import transformers
    except ImportError as exc:
        raise TransformersMissing(
            f"Hugging Face depth models need the optional package transformers: "
            f"pip install {TRANSFORMERS_PIN} (it is in requirements.txt, not in "
            "requirements-core.txt)") from exc
    return transformers


def fetch_instructions(hub_id: str) -> str:
    """How to get ``hub_id`` onto a machine without network (shell and Python)."""
    local = "./" + hub_id.split("/")[-1]
    return (f"On a machine with network run `hf download {hub_id} --local-dir {local}` (or "
            f"python -c \"from huggingface_hub import snapshot_download; "
            f"snapshot_download('{hub_id}', local_dir='{local}')\"), copy {local} here and pass "
            f"checkpoint:={local} (or --checkpoint {local})")


def is_hub_id(source: str) -> bool:
    """Whether ``source`` names a hub repository (``owner/name``) rather than a local path: one
    ``/``, no ``.``, ``/`` or ``~`` in front, and nothing of that name here."""
    return (source.count("/") == 1 and not source.startswith((".", "/", "~"))
            and not Path(source).exists())


def processor_overrides(config: dict, family: Family) -> dict:
    """Spec fields from a ``preprocessor_config.json`` dict (keys it lacks keep the family's
    defaults): ``input_size``, ``mean``, ``std`` and the :class:`Preprocessing` recipe."""
    pp = family.preprocessing
    changes: dict = {}
    size = config.get("size")
    if isinstance(size, dict) and size.get("height") and size.get("width"):
        changes["input_size"] = (int(size["height"]), int(size["width"]))
    elif isinstance(size, int):
        changes["input_size"] = (size, size)
    if config.get("do_normalize") is False:
        changes["mean"], changes["std"] = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    elif config.get("image_mean") and config.get("image_std"):
        changes["mean"], changes["std"] = tuple(config["image_mean"]), tuple(config["image_std"])
    recipe = {}
    if pp.resize != "floor_multiple" and "keep_aspect_ratio" in config:
        recipe["resize"] = "keep_aspect" if config["keep_aspect_ratio"] else "stretch"
    multiple = config.get("size_divisor") if pp.resize == "floor_multiple" else \
        config.get("ensure_multiple_of")
    if isinstance(multiple, (int, float)) and multiple >= 1:
        recipe["multiple"] = int(multiple)
    if config.get("resample") in _PIL_RESAMPLE:
        recipe["interpolation"] = _PIL_RESAMPLE[config["resample"]]
    if pp.reflect_pad and "do_pad" in config:
        recipe["reflect_pad"] = bool(config["do_pad"])
    if recipe:
        changes["preprocessing"] = dataclasses.replace(pp, **recipe)
    return changes


def _processor_config(source: str) -> dict:
    """``preprocessor_config.json`` of a local folder or a cached hub snapshot ({} if none)."""
    path = Path(source) / "preprocessor_config.json"
    if not Path(source).is_dir():
        from huggingface_hub import try_to_load_from_cache
        cached = try_to_load_from_cache(source, "preprocessor_config.json")
        path = Path(cached) if isinstance(cached, str) else None
    return json.loads(path.read_text()) if path is not None and path.is_file() else {}


class HFDepthModel(nn.Module):
    """A ``transformers`` ``...ForDepthEstimation`` model behind the registry's interface.

    ``forward(x)``: ``B x 3 x h x w`` float32 normalised image (the spec's recipe) ->
    ``B x 1 x h' x w'`` map in the spec's output kind; models that predict their field of view
    (Depth Pro) return ``{"depth": map, "focal_ratio": B}`` with ``focal_ratio = fx / W``.
    """

    def __init__(self, hf_model: nn.Module):
        super().__init__()
        self.hf = hf_model

    def forward(self, x: torch.Tensor):
        out = self.hf(pixel_values=x)
        depth = out.predicted_depth
        depth = depth.unsqueeze(1) if depth.dim() == 3 else depth
        fov = getattr(out, "field_of_view", None)
        if fov is None:
            return depth
        # Depth Pro's post-processing: f = 0.5 W / tan(fov / 2), so fx / W = 0.5 / tan(fov / 2)
        half_fov = fov.flatten() * (math.pi / 360.0)  # not deg2rad: ONNX opset 17 lacks it
        return {"depth": depth, "focal_ratio": 0.5 / torch.tan(half_fov)}


def load_hf_model(name: str, checkpoint: Optional[str] = None) -> HFDepthModel:
    """Build registered Hugging Face model ``name`` from ``checkpoint`` (folder or hub id;
    None/empty = the spec's hub id).

    Returns:
        :class:`HFDepthModel` with ``spec_overrides`` from the checkpoint's processor config and
        model config (depth range of metric Depth Anything, GLPN).

    Raises:
        TransformersMissing: ``transformers`` is not installed.
        FileNotFoundError: ``checkpoint`` looks like a local path but does not exist.
        HubWeightsUnavailable: not a folder, not cached and the hub is unreachable / offline.
        ValueError: the checkpoint lacks weights for some parameters, or holds another output
            kind than ``name`` (e.g. a metric Depth Anything under a relative name).
    """
    spec = hf_spec(name)
    hub_id, family = spec.extras["hub_id"], FAMILIES[spec.extras["family"]]
    source = checkpoint or hub_id
    looks_local = not is_hub_id(source)
    if looks_local and not Path(source).expanduser().is_dir():
        raise FileNotFoundError(f"{name}: checkpoint folder not found: {source} (a save_pretrained "
                                f"folder or a hub id such as {hub_id})")
    source = str(Path(source).expanduser()) if looks_local else source
    transformers = require_transformers()
    cls = getattr(transformers, family.model_class)
    try:
        hf_model, info = cls.from_pretrained(source, output_loading_info=True)
    except OSError as exc:
        if looks_local:  # a folder, but no config / weights in it
            raise FileNotFoundError(f"{name}: {source} is not a complete save_pretrained folder "
                                    f"(config.json and weights): {exc}") from exc
        raise HubWeightsUnavailable(
            f"{name}: cannot load {source!r}: not a local folder and not in the Hugging Face "
            f"cache, and the hub is not reachable (HF_HUB_OFFLINE=1 or no network). "
            f"{fetch_instructions(source)}. ({exc})".replace("\n", " ")) from exc
    missing = list(info.get("missing_keys") or [])
    if missing:
        raise ValueError(f"{name}: {source} has no weights for {len(missing)} parameters "
                         f"(e.g. {missing[:3]}); refusing random weights")
    config = hf_model.config
    changes = processor_overrides(_processor_config(source), family)
    if family.config_kind is not None and family.config_kind(config) != spec.output_kind:
        raise ValueError(f"{name} expects {spec.output_kind} but {source} predicts "
                         f"{family.config_kind(config)}; choose the matching model name")
    max_depth = getattr(config, "max_depth", None)
    if spec.output_kind == "metric_depth" and isinstance(max_depth, (int, float)) and max_depth > 0:
        changes["depth_range"] = (spec.depth_range[0], float(max_depth))
    model = HFDepthModel(hf_model.eval())
    model.spec_overrides = changes
    return model


def _factory(name: str):
    def factory(checkpoint: Optional[str] = None, **kwargs) -> HFDepthModel:
        if kwargs:
            raise ValueError(f"{name} takes no architecture options, got {sorted(kwargs)}")
        return load_hf_model(name, checkpoint)
    factory.__name__ = name
    factory.__doc__ = f"Hugging Face model {HF_MODELS[name][0]} (see :func:`load_hf_model`)."
    return factory


for _name in HF_MODELS:
    register_model(hf_spec(_name), loads_checkpoint=True)(_factory(_name))
