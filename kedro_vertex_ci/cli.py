"""The ``kedro-vertex-ci`` command line: a thin shell over the core.

Only click and rich-free standard modules are imported here so that ``--help`` starts fast; every command
module under ``commands/`` imports its heavy dependencies inside the command body. The single error handler
in :func:`main` turns a :class:`~kedro_vertex_ci.errors.KvcError` into a short message and its exit code.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .commands.context import Ctx, add_env_option, find_project_root
from .errors import KvcError


class _Group(click.Group):
    """A click group that reports our errors itself, so ``kedro vertex-ci`` behaves like ``kedro-vertex-ci``."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except KvcError as err:
            report_error(err)
            ctx.exit(err.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--project",
    "project_path",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Kedro project root (default: the nearest parent with a Kedro pyproject.toml).",
)
@click.option(
    "-e",
    "--env",
    default=None,
    help="Kedro environment (default: $KEDRO_ENV, else Kedro's default run environment).",
)
@click.version_option(package_name="kedro-vertex-ci")
@click.pass_context
def cli(click_ctx: click.Context, project_path: Path | None, env: str | None) -> None:
    """Ship Kedro pipelines to Vertex AI Pipelines: compile offline, dry-run locally, build, run, schedule."""
    try:
        root = (project_path or find_project_root(Path.cwd())).resolve()
    except (OSError, RuntimeError) as err:  # the current folder was deleted; a symlink loop in --project
        raise click.UsageError(f"cannot find the project folder: {err}") from err
    click_ctx.obj = Ctx(project=root, env=env or os.environ.get("KEDRO_ENV") or None)


def _register_commands() -> None:
    from .commands import COMMANDS

    for command in COMMANDS:
        add_env_option(command)
        cli.add_command(command)


_register_commands()


def report_error(err: KvcError) -> None:
    """Print a user error the one way we print them: red, short, no traceback."""
    click.secho(f"Error: {err}", fg="red", err=True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (errors become exit codes in :class:`_Group`)."""
    args = sys.argv[1:] if argv is None else argv
    cli.main(args=args, prog_name="kedro-vertex-ci")
