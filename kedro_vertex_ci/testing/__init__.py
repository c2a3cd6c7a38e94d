"""Helpers shared by the test suite and the benchmarks (not used at run time by the plugin)."""

from .projectgen import (
    SHAPES,
    GenNode,
    build_nodes,
    edges_for,
    expected_outputs,
    make_project,
    package_name_for,
)

__all__ = [
    "SHAPES",
    "GenNode",
    "build_nodes",
    "edges_for",
    "expected_outputs",
    "make_project",
    "package_name_for",
]
