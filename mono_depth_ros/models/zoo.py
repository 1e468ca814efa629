"""Imports every model module so that each registers itself (see ``registry``)."""

from . import fastdepth  # noqa: F401
