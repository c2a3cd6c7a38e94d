"""docs/troubleshooting.md quotes every message the tool prints for auth, build, submit, schedule and the
Action: each literal piece (of 16 characters or more) of those messages must appear there verbatim, so a
reworded hint in the code fails until the page says the same. docs/quickstart-gcp.md follows the scaffold."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "troubleshooting.md"
# Where the messages live: every error raised in these files, and the texts the hint builders return.
SOURCES = (
    "kedro_vertex_ci/gcp/hints.py",
    "kedro_vertex_ci/gcp/auth.py",
    "kedro_vertex_ci/gcp/cloudbuild.py",
    "kedro_vertex_ci/gcp/schedules.py",
    "kedro_vertex_ci/argv.py",
    "action/main.py",
    "action/inputs.py",
    "action/events.py",
    "action/gcp_cloud.py",
    "action/github_api.py",
)
HINT_FUNCTIONS = {"explain", "explain_refresh_error", "version_mismatch", "_explain", "validate_provider"}
# Files whose raised errors are internal (step argv decoding): only their hint functions count.
FUNCTIONS_ONLY = {"kedro_vertex_ci/argv.py"}
MIN_PIECE = 16


def _pieces(node: ast.AST) -> Iterator[str]:
    """The literal text of a message expression: constants and the constant parts of f-strings."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            yield sub.value
        elif isinstance(sub, ast.JoinedStr):
            for value in sub.values:
                if isinstance(value, ast.Constant):
                    yield str(value.value)


def _messages(tree: ast.Module, raised: bool = True) -> Iterator[ast.AST]:
    for node in ast.walk(tree):
        if raised and isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            name = getattr(node.exc.func, "id", getattr(node.exc.func, "attr", ""))
            if name.endswith("Error") and name != "AssertionError":
                yield from node.exc.args
        elif isinstance(node, ast.FunctionDef) and node.name in HINT_FUNCTIONS:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Return) and sub.value is not None:
                    yield sub.value
                elif isinstance(sub, (ast.Assign, ast.AugAssign)) and _assigns_text(sub):
                    yield sub.value
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_FORK_HINT" for t in node.targets):
            yield node.value


def _assigns_text(node: ast.Assign | ast.AugAssign) -> bool:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return any(getattr(target, "id", "") == "text" for target in targets)


def _normalise(text: str) -> str:
    return " ".join(text.split())


def hint_pieces() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for relative in SOURCES:
        tree = ast.parse((ROOT / relative).read_text())
        for message in _messages(tree, raised=relative not in FUNCTIONS_ONLY):
            for piece in _pieces(message):
                piece = _normalise(piece)
                if len(piece) >= MIN_PIECE:
                    found.setdefault(piece, set()).add(relative)
    return found


def test_the_extraction_finds_the_known_hints() -> None:
    pieces = hint_pieces()
    assert len(pieces) > 40
    assert any("API is not enabled in project" in p for p in pieces)
    assert any("names a pool, not a provider" in p for p in pieces)


def test_every_hint_in_the_code_is_in_troubleshooting_md() -> None:
    doc = _normalise(DOC.read_text())
    missing = sorted(f"{piece!r} ({', '.join(sorted(files))})" for piece, files in hint_pieces().items()
                     if piece not in doc)
    assert not missing, "docs/troubleshooting.md lacks:\n" + "\n".join(missing)


def test_quickstart_lists_the_commands_in_order() -> None:
    text = (ROOT / "docs" / "quickstart-gcp.md").read_text()
    desk = [text.index(c) for c in ("kedro-vertex-ci init ", "kedro-vertex-ci build", "kedro-vertex-ci run-once",
                                    "kedro-vertex-ci schedule")]
    assert desk == sorted(desk)
    ci = [text.index(c) for c in ("init acme-ml europe-west4 --github\n", "bash gcp-setup.sh", "git push", "gh pr merge")]
    assert ci == sorted(ci)
    for doc in ("quickstart-gcp.md", "troubleshooting.md"):
        assert f"docs/{doc}" in (ROOT / "README.md").read_text()
    assert re.search(r"roles/iam\.serviceAccountUser", text)
