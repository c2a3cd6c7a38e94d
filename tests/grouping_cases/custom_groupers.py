"""User grouping classes the tests load by import path, as a project would from its own package."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kedro_vertex_ci.model import PipelineGraph


class PrefixGrouper:
    """Groups nodes by the text before the first ``separator`` in their name."""

    def __init__(self, separator: str = "_"):
        self.separator = separator

    def group(self, graph: PipelineGraph) -> Mapping[str, Sequence[str]]:
        groups: dict[str, list[str]] = {}
        for node in graph.nodes:
            groups.setdefault(node.name.split(self.separator, 1)[0], []).append(node.name)
        return groups


class FixedGrouper:
    """Returns whatever it was given: lets a test feed any (possibly broken) grouping."""

    def __init__(self, groups: object):
        self.groups = groups

    def group(self, graph: PipelineGraph) -> object:
        return self.groups


class FailingGrouper:
    """A grouper with a bug: its error must reach the user as a GroupingError, not a traceback."""

    def group(self, graph: PipelineGraph) -> Mapping[str, Sequence[str]]:
        return {"all": [{}["no_such_node"]]}
