"""What every command needs to find the project, apart from the CLI module so commands never import it.

``cli.py`` builds a :class:`Ctx` from the group's options; each command reads it with ``@click.pass_obj``. The
``-e/--env`` option is accepted on the group and on every subcommand (the ``kedro run -e`` habit): the
subcommand's value wins.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import click


@dataclass(frozen=True)
class Ctx:
    """The project root and the Kedro environment (None = Kedro's default run environment)."""

    project: Path
    env: str | None


def find_project_root(start: Path) -> Path:
    """The nearest folder holding a ``pyproject.toml`` with a ``[tool.kedro]`` table, else ``start``."""
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        try:
            if pyproject.is_file() and "[tool.kedro]" in pyproject.read_text(encoding="utf-8", errors="replace"):
                return folder
        except OSError:  # an unreadable pyproject.toml above the project is not ours to report
            continue
    return start


def _set_env(click_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None and isinstance(click_ctx.obj, Ctx):
        click_ctx.obj = dataclasses.replace(click_ctx.obj, env=value or None)


def env_option(short: bool = True) -> click.Option:
    """A subcommand's ``-e/--env``: overrides the group's ``-e`` and ``$KEDRO_ENV`` for this command."""
    return click.Option(
        ["-e", "--env"] if short else ["--env"],
        default=None,
        expose_value=False,
        callback=_set_env,
        help="Kedro environment (same as the group's -e; default: $KEDRO_ENV, else Kedro's default).",
    )


def add_env_option(command: click.Command) -> None:
    """Give ``command`` (and each subcommand of a group) an ``-e/--env`` unless it has one."""
    taken = {opt for p in command.params for opt in getattr(p, "opts", ())}
    if "--env" not in taken:
        command.params.append(env_option(short="-e" not in taken))
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_env_option(sub)
