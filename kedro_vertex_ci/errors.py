"""One exception family for the whole tool.

Every error a user can cause is a :class:`KvcError`; entry points (the CLI, the Action) turn it into a short
message and an exit code in exactly one handler, so no traceback reaches the user for bad input.
"""

from __future__ import annotations

from dataclasses import dataclass


class KvcError(Exception):
    """Base of every error kedro-vertex-ci reports to a user (exit code 1 unless a subclass says otherwise)."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: where (file, dotted key path, line) and what."""

    file: str
    key: str
    message: str
    line: int | None = None

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


class ConfigError(KvcError):
    """The configuration (vertexai.yml, --param values, the pipeline shape) is invalid. Exit code 2."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem(file="", key="", message=problems)]
        self.problems = list(problems)
        super().__init__("\n".join(p.render().lstrip(": ") for p in self.problems))


class ProjectError(KvcError):
    """The Kedro project cannot be found or loaded. Exit code 2."""

    exit_code = 2


class OutputError(KvcError):
    """A file or folder the user named cannot be written (not a folder, read-only, a device). Exit code 2."""

    exit_code = 2


class GroupingError(ConfigError):
    """Nodes cannot be grouped into steps (two group tags, a cycle between groups)."""


class StepFailed(KvcError):
    """A pipeline step (local or remote) failed."""


class CloudError(KvcError):
    """A Google Cloud or GitHub call failed for good; the message says what to fix."""


class AuthError(CloudError):
    """Credentials could not be found or exchanged; the message names the fix."""
