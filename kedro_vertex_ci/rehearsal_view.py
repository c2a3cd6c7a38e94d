"""How a rehearsal shows what the Action wrote: its log as a runner renders it, and its step outputs.

Pure: workflow commands in, display lines out. ``::add-mask::`` values are hidden from every later line, as
the runner does, so a rehearsal prints no secret the real run would not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_COMMAND = re.compile(r"^::(?P<name>[a-z-]+)(?: (?P<props>[^:]*))?::(?P<message>.*)$")
_ESCAPES = (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%"))
_COLOURS = {"error": "red", "warning": "yellow", "notice": "cyan"}


@dataclass(frozen=True)
class Shown:
    text: str
    colour: str | None = None
    bold: bool = False


@dataclass
class LogView:
    """Turns the Action's stdout into what a reader sees; remembers masks across lines."""

    masks: list[str] = field(default_factory=list)

    def render(self, line: str) -> Shown | None:
        match = _COMMAND.match(line)
        if match is None:
            return Shown(self._masked(line))
        name, message = match.group("name"), _unescape(match.group("message"))
        if name == "add-mask":
            if message:
                self.masks.append(message)
            return None
        if name == "group":
            return Shown(f"▸ {self._masked(message)}", bold=True)
        if name in ("endgroup", "debug"):
            return None
        if name in _COLOURS:
            where = _location(match.group("props") or "")
            label = name.capitalize() + (f" ({where})" if where else "")
            return Shown(self._masked(f"{label}: {message}"), colour=_COLOURS[name])
        return Shown(self._masked(line))

    def _masked(self, text: str) -> str:
        for secret in sorted(self.masks, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


def _unescape(text: str) -> str:
    for escaped, plain in _ESCAPES:
        text = text.replace(escaped, plain)
    return text


def _location(props: str) -> str:
    values = dict(part.split("=", 1) for part in props.split(",") if "=" in part)
    parts = [_unescape(values[k]) for k in ("title", "file") if values.get(k)]
    if values.get("line") and values.get("file"):
        parts[-1] += f":{values['line']}"
    return ", ".join(parts)


def parse_outputs(text: str) -> dict[str, str]:
    """The ``$GITHUB_OUTPUT`` file: ``name=value`` lines and ``name<<DELIMITER`` blocks; the last write wins."""
    outputs: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block: list[str] = []
            while index < len(lines) and lines[index] != delimiter:
                block.append(lines[index])
                index += 1
            index += 1
            outputs[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs
