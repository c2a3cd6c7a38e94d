"""Install the project's requirements next to kedro-vertex-ci without replacing what the action runs on.

The action image is a tested set of versions (kedro, kfp, protobuf, google clients, …). A project's
``requirements.txt`` that asks for other versions of those would silently replace them and the compiler
would run on an untested mix. So every distribution installed in the action's environment becomes a
``name==version`` constraint: pip installs what the project adds, and a real conflict fails fast with the
requirement, its line and the action's pin named.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from kedro_vertex_ci.errors import ConfigError, Problem

from .workflow_commands import Runner

# Installers, not dependencies: pip may upgrade itself in build environments, so they are not pinned.
_UNPINNED = {"pip", "setuptools", "wheel"}
_LINE = re.compile(r"\(line (\d+)\)")


def canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def constraints_text(distributions: Iterable[tuple[str, str]]) -> str:
    """``name==version`` lines (sorted, one per distribution) for pip's ``-c``."""
    pins = {canonical_name(name): version for name, version in distributions if name}
    return "".join(f"{name}=={pins[name]}\n" for name in sorted(pins) if name not in _UNPINNED)


def installed_distributions() -> list[tuple[str, str]]:
    """What the action's own environment has installed: its pins."""
    from importlib.metadata import distributions

    return [(dist.metadata["Name"] or "", dist.version) for dist in distributions()]


def conflict_error(requirements: Path, output: str) -> ConfigError | None:
    """A one-problem error from pip's ResolutionImpossible report, or None if pip failed for another reason."""
    if "conflict is caused by" not in output and "conflicting dependencies" not in output:
        return None
    lines = output.splitlines()
    causes: list[str] = []
    if any("conflict is caused by" in line for line in lines):
        start = next(i for i, line in enumerate(lines) if "conflict is caused by" in line) + 1
        for line in lines[start:]:
            if not line.strip():
                break
            causes.append(line.strip())
    cannot = [line for line in lines if "Cannot install" in line] or lines
    line_number = next((int(m.group(1)) for m in map(_LINE.search, cannot) if m), None)
    cause = "; ".join(causes) or "see pip's report in the log"
    return ConfigError([Problem(
        str(requirements.name), "", f"conflicts with the versions the kedro-vertex-ci action runs on ({cause}). "
        "The action keeps its own pins (shown as '(constraint)') so the compiler runs on a tested set: accept "
        "those versions in your requirements, or set the input requirements: '' if compiling needs nothing more",
        line_number)])


def install_requirements(requirements: Path, runner: Runner, *, cache_dir: Path | None = None,
                         python: str = sys.executable) -> float:
    """pip install -r REQUIREMENTS -c <the action's pins>; returns the seconds it took."""
    with tempfile.TemporaryDirectory(prefix="kvc-constraints-") as folder:
        constraints = Path(folder) / "constraints.txt"
        constraints.write_text(constraints_text(installed_distributions()), encoding="utf-8")
        # Not -q: pip prints "The conflict is caused by" only at its normal verbosity.
        command = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                   "-r", str(requirements), "-c", str(constraints)]
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            command += ["--cache-dir", str(cache_dir)]
        started = time.perf_counter()
        result = subprocess.run(command, cwd=requirements.parent, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
    if result.returncode != 0:
        runner.log(result.stdout.rstrip())
        runner.log(result.stderr.rstrip())
        conflict = conflict_error(requirements, result.stdout + "\n" + result.stderr)
        if conflict is not None:
            raise conflict
        raise ConfigError(f"pip install -r {requirements.name} failed (exit {result.returncode}); see the log above")
    for line in result.stdout.splitlines():
        if line.startswith("Successfully installed"):
            runner.log(line)
    runner.log(f"installed {requirements.name} in {seconds:.1f} s (the action's own versions kept as constraints)")
    return seconds
