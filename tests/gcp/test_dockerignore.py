"""``.dockerignore`` by Docker's documented rules (the oracle test in tests/docker compares with the engine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kedro_vertex_ci.errors import ConfigError
from kedro_vertex_ci.gcp.source import collect_files

FILES = ["x.py", "x.pyc", "x.pyo", "src/y.pyc", "Build/a.txt", "build/b.txt", "builds/c.txt", "docs/README.md",
         "README.md", "README-secret.md", "notes.md", "a/temp1", "a/b/temp2", "temp3", "tempab",
         "src/keep.txt", "src/deep/keep.txt", "src/deep/drop.txt", "lib/z.py", "#hash", "sp ace.txt"]

CASES = [
    # Docker's documentation: anchored at the root, Go filepath.Match plus **
    ("*/temp*", {"a/temp1"}),
    ("*/*/temp*", {"a/b/temp2"}),
    ("temp?", {"temp3"}),
    ("**/*.pyc", {"x.pyc", "src/y.pyc"}),
    ("*.md\n!README*.md\nREADME-secret.md", {"README-secret.md", "notes.md"}),
    # character classes (the common Python .gitignore templates)
    ("*.py[co]", {"x.pyc", "x.pyo"}),
    ("[Bb]uild/", {"Build/a.txt", "build/b.txt"}),
    ("build", {"build/b.txt"}),
    # a leading / and ./ are the same anchored pattern; trailing spaces and slashes are trimmed
    ("/lib", {"lib/z.py"}),
    ("./lib/   ", {"lib/z.py"}),
    ("   temp3", {"temp3"}),
    # comments only at column 0; an escaped # is a name
    ("# temp3\n #hash", {"#hash"}),
    ("\\#hash", {"#hash"}),
    # exceptions: the last matching line decides; a folder is entered only for an exception under it
    ("src\n!src/deep/keep.txt", {"src/keep.txt", "src/deep/drop.txt", "src/y.pyc"}),
    ("src\n!**/keep.txt", {"src/keep.txt", "src/deep/keep.txt", "src/deep/drop.txt", "src/y.pyc"}),
    ("src/**\n!src/deep", {"src/keep.txt", "src/y.pyc"}),
    ("src/*\n!src", {"src/keep.txt", "src/y.pyc", "src/deep/keep.txt", "src/deep/drop.txt"}),
    ("a/../temp3", {"temp3"}),
    ("sp ace.txt", {"sp ace.txt"}),
]


def _project(tmp_path: Path, dockerignore: str) -> Path:
    for name in FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x", encoding="utf-8")
    (tmp_path / ".dockerignore").write_text(dockerignore, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("dockerignore", "excluded"), CASES, ids=[c[0].replace("\n", " | ") for c in CASES])
def test_docker_rules(tmp_path: Path, dockerignore: str, excluded: set[str]) -> None:
    shipped = set(collect_files(_project(tmp_path, dockerignore)))
    assert set(FILES) - shipped == excluded


def test_windows_line_endings_and_a_byte_order_mark(tmp_path: Path) -> None:
    shipped = set(collect_files(_project(tmp_path, "\ufeff*.py[co]\r\ntemp?\r\n")))
    assert set(FILES) - shipped == {"x.pyc", "x.pyo", "temp3"}


@pytest.mark.parametrize("bad", ["[abc", "src/[", "x\\"])
def test_a_pattern_docker_rejects_is_a_config_error_naming_file_and_line(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        collect_files(_project(tmp_path, f"# fine\n*.log\n{bad}\n"))
    assert ".dockerignore:3" in str(caught.value) and "syntax error in pattern" in str(caught.value)


def test_gcloudignore_keeps_gitignore_rules_with_character_classes(tmp_path: Path) -> None:
    project = _project(tmp_path, "")
    (project / ".dockerignore").unlink()
    (project / ".gcloudignore").write_text("*.py[co]\n[Bb]uild/\n", encoding="utf-8")
    shipped = set(collect_files(project))
    assert set(FILES) - shipped == {"x.pyc", "x.pyo", "src/y.pyc", "Build/a.txt", "build/b.txt"}
