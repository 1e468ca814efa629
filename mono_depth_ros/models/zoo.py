"""Imports every model module so that each registers itself (see ``registry``)."""

from . import calderoni  # noqa: F401
from . import das  # noqa: F401
from . import fastdepth  # noqa: F401
from . import fastdepth_nyu  # noqa: F401
from . import siamese_convlstm  # noqa: F401
from . import valdez  # noqa: F401
from . import hf  # noqa: F401  (transformers is imported only when such a model is built)
from . import onnx_model  # noqa: F401  (onnxruntime is imported only when it is used)
