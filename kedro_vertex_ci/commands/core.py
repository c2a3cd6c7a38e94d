"""``init`` and ``compile``: the offline commands (no credentials, no network)."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command("init")
@click.argument("project_id")
@click.argument("region")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@click.option("--github", "with_github", is_flag=True, help="Also write the GitHub workflow, Dockerfile and .dockerignore.")
@click.pass_obj
def init_command(ctx, project_id: str, region: str, force: bool, with_github: bool) -> None:  # type: ignore[no-untyped-def]
    """Write conf/base/vertexai.yml (every option, commented) for PROJECT_ID and REGION."""
    import yaml

    from ..config import parse_config
    from ..config_template import render_template
    from ..errors import ConfigError, Problem
    from ..fsutil import atomic_write
    from ..kedro_io import bootstrap
    from ..scaffold.gitignore import planned_gitignore

    info = bootstrap(ctx.project)
    target = ctx.project / "conf" / "base" / "vertexai.yml"
    text = render_template(project_id, region, info.project_name)
    parse_config(yaml.safe_load(text))  # never write a config that fails our own validation
    written: list[Path] = []
    if target.exists() and not force and not with_github:
        raise ConfigError([Problem(str(target), "", "already exists; pass --force to overwrite it")])
    if with_github and target.exists() and not force:
        _check_utf8(target)  # the GitHub setup reads run_config from it
    gitignore = planned_gitignore(ctx.project)  # read (and refused) before anything is written
    if not target.exists() or force:
        written.append(atomic_write(target, text))
    if with_github:
        written += _write_github(ctx.project, project_id=project_id, region=region, force=force)
    if gitignore is not None:
        written.append(atomic_write(*gitignore))
    for path in written:
        click.echo(f"wrote {os.path.relpath(path, ctx.project)}")


def _check_utf8(path: Path) -> None:
    from ..errors import ConfigError, Problem

    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError([Problem(str(path), "", f"is not UTF-8 text (byte 0x{err.object[err.start]:02x} at "
                                                   f"offset {err.start}); save it as UTF-8")]) from None
    except OSError as err:
        raise ConfigError([Problem(str(path), "", f"cannot read it ({err.strerror})")]) from None


def _write_github(project: Path, *, project_id: str, region: str, force: bool) -> list[Path]:
    from ..scaffold.github import gcp_setup_commands, skipped_files, write_github_scaffold

    kept = skipped_files(project, project_id=project_id, region=region) if not force else []
    written = write_github_scaffold(project, force=force, project_id=project_id, region=region)
    for path in kept:
        click.echo(f"kept {os.path.relpath(path, project)} (pass --force to overwrite)")
    click.echo(gcp_setup_commands(project, project_id=project_id, region=region))
    return list(written)


@click.command("compile")
@click.option("-p", "--pipeline", default="__default__", show_default=True, help="Kedro pipeline to compile.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("pipeline.json"),
    show_default=True,
    help="Spec file to write (.json, or .yaml/.yml for YAML).",
)
@click.option("--image", default=None, help="Image to run the steps in (overrides run_config.image).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Override a parameter's default.")
@click.pass_obj
def compile_command(ctx, pipeline: str, output: Path, image: str | None, params: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    """Compile a Kedro pipeline into a Vertex AI pipeline spec, offline."""
    from ..compiler import compile_pipeline
    from ..fsutil import atomic_write, check_target
    from ..params import parse_overrides
    from ..spec import parse_spec, to_yaml_bytes

    check_target(output)  # before the compile: a typo in -o is reported at once
    compiled = compile_pipeline(ctx.project, ctx.env, pipeline, image, parse_overrides(params))
    for warning in compiled.warnings:
        click.secho(f"Warning: {warning}", fg="yellow", err=True)
    if output.suffix.lower() in {".yaml", ".yml"}:
        data = to_yaml_bytes(parse_spec(compiled.spec))
    else:
        data = compiled.spec_bytes
    atomic_write(output, data)
    click.echo(f"Compiled pipeline '{pipeline}' ({compiled.step_count} steps) to {output}")
