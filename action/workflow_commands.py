"""GitHub Actions workflow commands and files: log groups, masks, annotations, outputs, the job summary.

Pure formatting functions return strings; :class:`Runner` is the one object that writes them (to stdout
and to the ``GITHUB_OUTPUT`` / ``GITHUB_STEP_SUMMARY`` files), so the orchestrator can be run against
temporary files in tests exactly as on a runner.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


def escape_data(text: str) -> str:
    """Escape a command's message part (GitHub's rule: % CR LF)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a command property value (% CR LF plus the separators ``:`` and ``,``)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str = "", **properties: object) -> str:
    """One ``::name k=v,...::message`` line; properties that are None are left out."""
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items() if value is not None)
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def error_annotation(message: str, *, file: str | None = None, line: int | None = None, title: str | None = None) -> str:
    """An ``::error`` annotation that GitHub pins to ``file:line`` in the PR's changed files."""
    return command("error", message, file=file, line=line, title=title)


def output_entry(name: str, value: str) -> str:
    """A ``$GITHUB_OUTPUT`` entry; multi-line values use a random heredoc delimiter absent from the value."""
    if "\n" not in value and "\r" not in value:
        return f"{name}={value}\n"
    delimiter = f"ghadelimiter_{secrets.token_hex(8)}"
    while delimiter in value:
        delimiter = f"ghadelimiter_{secrets.token_hex(8)}"
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


class Runner:
    """Talks to the Actions runner: stdout commands plus the output and summary files.

    Every string printed goes through :meth:`log`, which replaces masked secrets, so a token can never reach
    the log even before GitHub's own masking applies (``::add-mask::`` only masks later lines).
    """

    def __init__(self, *, output_file: Path | None, summary_file: Path | None, stream: TextIO | None = None):
        self.output_file = output_file
        self.summary_file = summary_file
        self.stream = stream or sys.stdout
        self._secrets: list[str] = []

    def mask(self, value: str | None) -> None:
        """Register a secret with the runner (and with our own log filter) before it is ever printed."""
        if not value or value in self._secrets:
            return
        self._secrets.append(value)
        for line in value.splitlines() or [value]:
            if line.strip():
                self._write(f"::add-mask::{escape_data(line)}")

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def log(self, text: str = "") -> None:
        self._write(self.redact(text))

    def error(self, message: str, *, file: str | None = None, line: int | None = None, title: str | None = None) -> None:
        self._write(self.redact(error_annotation(message, file=file, line=line, title=title)))

    def notice(self, message: str, *, title: str | None = None) -> None:
        self._write(self.redact(command("notice", message, title=title)))

    def warning(self, message: str, *, title: str | None = None) -> None:
        self._write(self.redact(command("warning", message, title=title)))

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        """A collapsible log section; always closed, even when the body raises."""
        self._write(f"::group::{escape_data(title)}")
        try:
            yield
        finally:
            self._write("::endgroup::")

    def set_outputs(self, outputs: Mapping[str, str]) -> None:
        """Append outputs to ``$GITHUB_OUTPUT`` (or print them when run outside Actions)."""
        text = "".join(output_entry(name, value) for name, value in outputs.items())
        if self.output_file is None:
            self.log(text.rstrip("\n"))
            return
        with self.output_file.open("a", encoding="utf-8") as handle:
            handle.write(self.redact(text))

    def add_summary(self, markdown: str) -> None:
        """Append Markdown to the job summary (or print it when run outside Actions)."""
        if self.summary_file is None:
            self.log(markdown)
            return
        with self.summary_file.open("a", encoding="utf-8") as handle:
            handle.write(self.redact(markdown).rstrip("\n") + "\n")

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()
