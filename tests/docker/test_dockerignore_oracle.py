"""``.dockerignore``: our file set equals what ``docker build`` copies, on generated trees and patterns.

The oracle is the running Docker engine: ``FROM scratch`` + ``COPY . /ctx``, then the image's files are
listed with ``docker export``. A handful of builds (one per seeded case, plus the documented examples) keeps
this around ten seconds.
"""

from __future__ import annotations

import io
import os
import random
import tarfile
from pathlib import Path

import pytest

from kedro_vertex_ci.gcp.source import collect_files

from .conftest import docker

pytestmark = [pytest.mark.docker, pytest.mark.slow]

DIRS = ["", "src", "src/pkg", "Build", "build", "docs", "docs/api", "lib", "temp", "a b", "node_modules",
        "src/pkg/__pycache__", "notes"]
FILES = ["x.py", "x.pyc", "x.pyo", "keep.txt", "README.md", "README-secret.md", "temp1", "tempa",
         "temp12", "b.txt", "c.log", "ab.log", "z file.txt", "main.go", "Makefile", "a+b.txt", "$x"]
PATTERNS = ["*.py[co]", "[Bb]uild", "[Bb]uild/", "**/*.pyc", "!keep.txt", "!**/keep.txt", "/docs", "docs/**",
            "*/temp*", "*/*/temp*", "temp?", "*.md", "!README*.md", "README-secret.md", "src/pkg  ",
            "  lib/  ", "# a comment", " #not-a-comment", "./lib/", "lib/../src/x.py", "**", "!src",
            "!src/pkg/x.py", "src/**/keep.txt", "[a-c]*.txt", "[^a]*.log", "**/__pycache__", "a b",
            "!a b/b.txt", "*", "!*.go", "node_modules", "!node_modules/keep.txt", "**/*.log", "?.txt",
            "a+b.txt", "$x", "!**/README.md", "src/*", "!src/pkg", "notes/*", "!notes/keep.txt",
            "temp/**", "!temp/b.txt", "**/temp1", "src/**/*.py", "\\#x", "*/*.md"]
DOCUMENTED = """# comment
*/temp*
*/*/temp*
temp?
*.md
!README*.md
README-secret.md
*.py[co]
[Bb]uild/
"""


def _tree(root: Path, rng: random.Random, files: int) -> None:
    for _ in range(files):
        folder = rng.choice(DIRS)
        path = root / folder / rng.choice(FILES)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{folder}\n", encoding="utf-8")


def _docker_files(env: dict[str, str], context: Path, tag: str) -> set[str]:
    (context / "Dockerfile").write_text("FROM scratch\nCOPY . /ctx\n", encoding="utf-8")
    built = docker(env, "build", "-q", "-t", tag, str(context), timeout=300)
    assert built.returncode == 0, built.stderr
    container = docker(env, "create", tag, "/none")
    assert container.returncode == 0, container.stderr
    name = container.stdout.strip()
    try:
        exported = docker_bytes(env, "export", name)
    finally:
        docker(env, "rm", name)
        docker(env, "rmi", "-f", tag)
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        return {m.name.removeprefix("ctx/") for m in tar.getmembers() if m.isfile() and m.name.startswith("ctx/")}


def docker_bytes(env: dict[str, str], *args: str) -> bytes:
    import subprocess

    done = subprocess.run(["docker", *args], env=env, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def _case(tmp_path: Path, seed: int) -> tuple[Path, str]:
    rng = random.Random(seed)
    context = tmp_path / f"case{seed}"
    context.mkdir()
    _tree(context, rng, 70)
    lines = rng.sample(PATTERNS, rng.randint(6, 14))
    return context, "\n".join(lines) + rng.choice(["\n", "", "\r\n"])


SEEDS = int(os.environ.get("KVC_DOCKERIGNORE_CASES", "4"))  # make fuzz-cli runs more


@pytest.mark.parametrize("seed", ["documented", *range(1, SEEDS + 1)])
def test_dockerignore_file_set_equals_docker_build(docker_env: dict[str, str], tmp_path: Path, seed: object) -> None:
    if seed == "documented":
        context = tmp_path / "documented"
        context.mkdir()
        _tree(context, random.Random(0), 90)
        text = DOCUMENTED
    else:
        context, text = _case(tmp_path, int(str(seed)))
    (context / ".dockerignore").write_text(text, encoding="utf-8")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY . /ctx\n", encoding="utf-8")
    ours = set(collect_files(context))
    theirs = _docker_files(docker_env, context, f"kvc-cli-dockerignore-{seed}:oracle")
    if seed == "documented":
        assert any(n.endswith("README.md") for n in theirs), "the exception re-includes README.md"
        assert not {"x.pyc", "x.pyo"} & theirs and not any(n.startswith(("build/", "Build/")) for n in theirs)
        assert any(n.endswith("/x.pyc") for n in theirs), "Docker anchors *.py[co] at the context root"
    assert ours == theirs, f".dockerignore:\n{text}\nonly ours: {sorted(ours - theirs)}\nonly Docker's: {sorted(theirs - ours)}"
