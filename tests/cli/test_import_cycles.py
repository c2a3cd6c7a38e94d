"""The CLI and its commands form no import cycle (issue 10): commands get the context from ``commands.context``."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "kedro_vertex_ci"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level_imports(path: Path, everywhere: bool = False) -> set[str]:
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return _imports_in(path.read_text(encoding="utf-8"), package, everywhere)


def _imports_in(source: str, package: str, everywhere: bool = False) -> set[str]:
    """Modules imported at module level, ``if TYPE_CHECKING:`` blocks included (a cycle to mypy too);
    with ``everywhere``, also inside functions (``cli.py`` registers the commands from a function)."""
    found: set[str] = set()
    tree = ast.parse(source)
    body = list(ast.walk(tree)) if everywhere else list(tree.body)
    while body:
        node = body.pop()
        if isinstance(node, ast.If) and not everywhere:
            body.extend(node.body + node.orelse)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module:  # "from . import x" names submodules x, not the package being imported
                found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _graph(paths: list[Path], everywhere: bool = False) -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in paths}
    return {
        name: {t for t in _module_level_imports(p, everywhere) if t in modules and t != name}
        for name, p in modules.items()
    }


def test_cli_and_commands_import_each_other_in_one_direction_only() -> None:
    paths = [PACKAGE / "cli.py", PACKAGE / "plugin.py", *sorted((PACKAGE / "commands").glob("*.py"))]
    graph = _graph(paths, everywhere=True)
    tuple(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError naming the cycle
    importers = {name for name, targets in graph.items() if "kedro_vertex_ci.cli" in targets}
    assert importers == {"kedro_vertex_ci.plugin"}


def test_the_whole_package_has_no_module_level_import_cycle() -> None:
    graph = _graph(sorted(PACKAGE.rglob("*.py")))
    tuple(graphlib.TopologicalSorter(graph).static_order())


def test_a_type_checking_import_of_the_cli_counts_as_an_import() -> None:
    """The checker itself: the old ``if TYPE_CHECKING: from ..cli import Ctx`` in commands/local.py is seen."""
    old = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..cli import Ctx\n"
    assert "kedro_vertex_ci.cli" in _imports_in(old, "kedro_vertex_ci.commands")
    assert "kedro_vertex_ci.commands.context" in _module_level_imports(PACKAGE / "commands" / "local.py")
    sibling = _imports_in("from . import kubeflow\n", "kedro_vertex_ci.commands")
    assert sibling == {"kedro_vertex_ci.commands.kubeflow"}
