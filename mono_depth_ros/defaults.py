"""Package-wide defaults shared by the node, the CLI and the tools (light: imports nothing).

``config/depth.yaml`` repeats :data:`DEFAULT_MODEL` for ``ros2 launch`` (YAML cannot import it);
a test keeps the two equal.
"""

#: The model the node, ``evaluate``, ``bench`` and the demo run when none is named (its weights
#: are the spec's ``default_checkpoint``; see docs/models.md "Default weights").
DEFAULT_MODEL = "fastdepth_nyu_distilled"
