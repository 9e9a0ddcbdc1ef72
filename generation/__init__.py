"""Atelier's model code: text and image engines in plain Python.

Nothing here imports Django (a test enforces it). torch, transformers and
diffusers are imported lazily, inside the functions that need them, so that
importing this package stays cheap for the web process.
"""
from __future__ import annotations

from generation.errors import GenerationError, ValidationError

__all__ = ["GenerationError", "ValidationError"]
