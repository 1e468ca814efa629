"""Hugging Face ``transformers`` depth networks in the package's registry (optional dependency).

Every row of :data:`HF_MODELS` registers one name with its hub id, ``transformers`` class family,
output kind, depth range, the weights' licence and the paper. The family (:data:`FAMILIES`)
holds the class and the defaults of the model's own image processor (resize rule, multiple of 14
for DINOv2 backbones, interpolation, normalisation, output resize) as a
:class:`~mono_depth_ros.models.spec.Preprocessing` recipe, which the runtime applies with tensors
on the model's device; a checkpoint's ``preprocessor_config.json`` overrides those defaults.

Weights: ``checkpoint`` is a local folder in ``save_pretrained`` layout or a hub id written
explicitly as ``hf:owner/name`` or ``hf:owner/name@revision`` (the revision - a branch, tag or
commit hash - is pinned in ``from_pretrained``); anything else is a path, and a path that does
not exist is an error (never taken for a hub repository). Empty means the row's hub id (from the
Hugging Face cache, downloaded where the network allows). Offline
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
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .registry import register_model
from .spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec, Preprocessing

#: Version this package is tested with (requirements.txt pins it).
TRANSFORMERS_PIN = "transformers==5.23.0"
_HALF = (0.5, 0.5, 0.5)
#: PIL resampling codes stored in ``preprocessor_config.json`` -> :data:`spec.INTERPOLATIONS`.
_PIL_RESAMPLE = {2: "bilinear", 3: "bicubic"}
#: Prefix that makes a ``checkpoint`` a Hugging Face hub id (``hf:owner/name[@revision]``).
HUB_PREFIX = "hf:"
#: ``hf:owner/name[@revision]``: the hub's repository name characters; a revision is a branch,
#: tag or commit hash (branches may hold ``/``, e.g. ``refs/pr/1``).
_HUB_ID = re.compile(r"^hf:([A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@([\w.][\w./-]*))?$")

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
#: Depth range of relative models: they have no metres of their own, so the node's range mask
#: (min_depth / max_depth, 0 = this) applies only after a metric scale (core.scale), in metres;
#: (0.1, 10) here used to cut a scaled 40 m road at 10 m. 1000 m is the parameters' own limit.
_REL_RANGE = (0.1, 1000.0)


def _da_rows() -> Dict[str, tuple]:
    rows = {}
    for size in ("small", "base", "large"):
        lic = _APACHE if size == "small" else _CC_BY_NC  # as the Depth Anything V2 repo states
        cap = size.capitalize()
        rows[f"depth_anything_v2_{size}"] = (
            f"hf:depth-anything/Depth-Anything-V2-{cap}-hf", "depth_anything", _REL,
            _REL_RANGE, lic, "depth_anything_v2",
            f"Depth Anything V2 {cap} (DINOv2 + DPT head); relative")
        for scene, far in (("indoor", 20.0), ("outdoor", 80.0)):
            rows[f"depth_anything_v2_metric_{scene}_{size}"] = (
                f"hf:depth-anything/Depth-Anything-V2-Metric-{scene.capitalize()}-{cap}-hf",
                "depth_anything", _MET, (0.1, far), lic, "depth_anything_v2",
                f"Depth Anything V2 {cap} fine-tuned for metric {scene} depth (up to {far:.0f} m)")
    return rows


#: name -> (hub id (``hf:owner/name``), family, output kind, depth range (m), weights licence,
#: citation key, description). Licences as stated on the hub model cards.
HF_MODELS: Dict[str, tuple] = {
    **_da_rows(),
    "depth_pro": ("hf:apple/DepthPro-hf", "depth_pro", "canonical_inverse_depth", (0.1, 100.0),
                  "Apple ML Research Model licence (research only)", "depth_pro",
                  "Depth Pro (multi-scale DINOv2), metric; predicts its field of view"),
    "zoedepth_nyu_kitti": ("hf:Intel/zoedepth-nyu-kitti", "zoedepth", _MET, (0.1, 80.0), "MIT",
                           "zoedepth", "ZoeDepth (BEiT-L + metric bins), NYU + KITTI heads"),
    "glpn_nyu": ("hf:vinvino02/glpn-nyu", "glpn", _MET, (0.1, 10.0), _APACHE, "glpn",
                 "GLPN (SegFormer encoder) trained on NYU Depth V2, metric indoor"),
    "glpn_kitti": ("hf:vinvino02/glpn-kitti", "glpn", _MET, (0.1, 80.0), _APACHE, "glpn",
                   "GLPN (SegFormer encoder) trained on KITTI, metric outdoor"),
    "dpt_large": ("hf:Intel/dpt-large", "dpt", _REL, _REL_RANGE, _APACHE, "dpt",
                  "DPT-Large (ViT-L/16), MiDaS v3 relative inverse depth"),
    "dpt_hybrid_midas": ("hf:Intel/dpt-hybrid-midas", "dpt", _REL, _REL_RANGE, _APACHE, "dpt",
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


@dataclass(frozen=True)
class HubId:
    """A Hugging Face hub repository and the revision to pin (None: the default branch)."""

    repo: str
    revision: Optional[str] = None

    def __str__(self) -> str:
        return HUB_PREFIX + self.repo + (f"@{self.revision}" if self.revision else "")


def is_hub_id(source: str) -> bool:
    """Whether ``checkpoint`` value ``source`` is written as a hub id (``hf:...``); anything else
    is a local path. Malformed ids are refused by :func:`parse_hub_id`."""
    return str(source).startswith(HUB_PREFIX)


def parse_hub_id(source: str) -> Optional[HubId]:
    """The :class:`HubId` of ``hf:owner/name`` or ``hf:owner/name@revision``; None for a local
    path (no ``hf:`` prefix).

    Raises:
        ValueError: ``source`` starts with ``hf:`` but is not of that form.
    """
    if not is_hub_id(source):
        return None
    m = _HUB_ID.match(source)
    if m is None:
        raise ValueError(f"malformed hub id {source!r}: write hf:owner/name or "
                         "hf:owner/name@revision (a branch, tag or commit hash)")
    return HubId(m.group(1), m.group(2))


def fetch_instructions(hub_id: Union[str, HubId]) -> str:
    """How to get ``hub_id`` (``hf:owner/name[@revision]`` or a :class:`HubId`) onto a machine
    without network (shell and Python)."""
    hub = hub_id if isinstance(hub_id, HubId) else (
        parse_hub_id(hub_id) if is_hub_id(hub_id) else HubId(hub_id))
    local = "./" + hub.repo.split("/")[-1]
    rev_cli = f" --revision {hub.revision}" if hub.revision else ""
    rev_py = f", revision='{hub.revision}'" if hub.revision else ""
    return (f"On a machine with network run `hf download {hub.repo} --local-dir {local}{rev_cli}` "
            f"(or python -c \"from huggingface_hub import snapshot_download; "
            f"snapshot_download('{hub.repo}', local_dir='{local}'{rev_py})\"), copy {local} here "
            f"and pass checkpoint:={local} (or --checkpoint {local})")


def _triple(value: Union[float, Sequence[float]], key: str) -> Tuple[float, float, float]:
    """A per-channel ``preprocessor_config.json`` value as 3 floats: a scalar (transformers
    accepts one, e.g. Depth Pro's ``image_mean=0.5``) or a 1-list is broadcast to the channels.

    Raises:
        ValueError: neither a number nor a list of 1 or 3 numbers.
    """
    values = [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    try:
        floats = tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"preprocessor_config.json: {key} must be a number or a list of 3, got "
                         f"{value!r}") from exc
    if len(floats) not in (1, 3):
        raise ValueError(f"preprocessor_config.json: {key} must be a number or a list of 3, got "
                         f"{value!r}")
    return floats * 3 if len(floats) == 1 else floats


def processor_overrides(config: dict, family: Family) -> dict:
    """Spec fields from a ``preprocessor_config.json`` dict (keys it lacks keep the family's
    defaults): ``input_size``, ``mean``, ``std`` (a scalar is broadcast to 3 channels) and the
    :class:`Preprocessing` recipe.

    Raises:
        ValueError: ``image_mean`` / ``image_std`` neither a number nor a list of 1 or 3.
    """
    pp = family.preprocessing
    changes: dict = {}
    size = config.get("size")
    if isinstance(size, dict) and size.get("height") and size.get("width"):
        changes["input_size"] = (int(size["height"]), int(size["width"]))
    elif isinstance(size, int):
        changes["input_size"] = (size, size)
    if config.get("do_normalize") is False:
        changes["mean"], changes["std"] = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    elif config.get("image_mean") is not None and config.get("image_std") is not None:
        changes["mean"] = _triple(config["image_mean"], "image_mean")
        changes["std"] = _triple(config["image_std"], "image_std")
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


def _processor_config(source: Union[str, HubId]) -> dict:
    """``preprocessor_config.json`` of a local folder or of a hub id's cached snapshot at its
    revision ({} if none)."""
    if isinstance(source, HubId):
        from huggingface_hub import try_to_load_from_cache
        cached = try_to_load_from_cache(source.repo, "preprocessor_config.json",
                                        revision=source.revision)
        path = Path(cached) if isinstance(cached, str) else None
    else:
        path = Path(source) / "preprocessor_config.json"
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
    """Build registered Hugging Face model ``name`` from ``checkpoint`` (a ``save_pretrained``
    folder, or a hub id ``hf:owner/name[@revision]`` loaded at that revision; None/empty = the
    spec's hub id).

    Returns:
        :class:`HFDepthModel` with ``spec_overrides`` from the checkpoint's processor config and
        model config (depth range of metric Depth Anything, GLPN).

    Raises:
        TransformersMissing: ``transformers`` is not installed.
        FileNotFoundError: ``checkpoint`` is not a hub id and no such folder exists.
        HubWeightsUnavailable: not a folder, not cached and the hub is unreachable / offline.
        ValueError: a malformed ``hf:`` id; the checkpoint lacks weights for some parameters,
            or holds another output kind than ``name`` (e.g. a metric Depth Anything under a
            relative name).
    """
    spec = hf_spec(name)
    hub_id, family = spec.extras["hub_id"], FAMILIES[spec.extras["family"]]
    source = checkpoint or hub_id
    hub = parse_hub_id(source)
    if hub is None and not Path(source).expanduser().is_dir():
        raise FileNotFoundError(f"{name}: checkpoint folder not found: {source} (a save_pretrained "
                                f"folder, or a hub id written hf:owner/name[@revision] such as "
                                f"{hub_id})")
    source = str(Path(source).expanduser()) if hub is None else str(hub)
    transformers = require_transformers()
    cls = getattr(transformers, family.model_class)
    try:
        if hub is None:
            hf_model, info = cls.from_pretrained(source, output_loading_info=True)
        else:  # the revision pinned (None: the default branch)
            hf_model, info = cls.from_pretrained(hub.repo, revision=hub.revision,
                                                 output_loading_info=True)
    except OSError as exc:
        if hub is None:  # a folder, but no config / weights in it
            raise FileNotFoundError(f"{name}: {source} is not a complete save_pretrained folder "
                                    f"(config.json and weights): {exc}") from exc
        raise HubWeightsUnavailable(
            f"{name}: cannot load {source!r}: not a local folder and not in the Hugging Face "
            f"cache, and the hub is not reachable (HF_HUB_OFFLINE=1 or no network). "
            f"{fetch_instructions(hub)}. ({exc})".replace("\n", " ")) from exc
    missing = list(info.get("missing_keys") or [])
    if missing:
        raise ValueError(f"{name}: {source} has no weights for {len(missing)} parameters "
                         f"(e.g. {missing[:3]}); refusing random weights")
    config = hf_model.config
    changes = processor_overrides(_processor_config(source if hub is None else hub), family)
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
