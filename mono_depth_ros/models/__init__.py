"""Model registry and architectures (ROS-free).

``create_model(name, checkpoint=None, **overrides)`` builds any registered network;
``list_models()`` names them; each model's contract is its ``.spec``
(:class:`~mono_depth_ros.models.spec.ModelSpec`).
"""

from .registry import (UnknownModelError, create_model, get_spec, list_models, load_checkpoint,
                       register_model, save_checkpoint)
from .spec import ModelSpec, output_to_metric_depth

__all__ = ["ModelSpec", "UnknownModelError", "create_model", "get_spec", "list_models",
           "load_checkpoint", "output_to_metric_depth", "register_model", "save_checkpoint"]
