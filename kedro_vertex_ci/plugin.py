"""Kedro project-command entry point: ``kedro vertex-ci …``.

Kedro imports this module for every ``kedro`` command, so it must stay as light as the CLI module itself.
"""

from __future__ import annotations

import click

from .cli import cli as _vertex_ci


@click.group(name="kedro-vertex-ci")
def commands() -> None:
    """kedro-vertex-ci commands."""


commands.add_command(_vertex_ci, name="vertex-ci")
