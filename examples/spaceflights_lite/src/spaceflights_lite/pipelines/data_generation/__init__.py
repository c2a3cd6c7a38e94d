"""Deterministic synthetic raw data: the example needs no download."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
