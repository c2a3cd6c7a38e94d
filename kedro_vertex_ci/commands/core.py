"""``init`` and ``compile``: the offline commands (no credentials, no network)."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command("init")
@click.argument("project_id")
@click.argument("region")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@click.option("--github", "with_github", is_flag=True,
              help="Also write the GitHub workflow, dependabot.yml, Dockerfile, .dockerignore and gcp-setup.sh.")
@click.option("--github-repo", default=None, metavar="OWNER/NAME",
              help="GitHub repository the workflow runs in (default: the github.com remote named origin).")
@click.option("--action-ref", default=None, metavar="REF",
              help="Version of the kedro-vertex Action to pin: a tag (resolved to its commit) or a commit SHA "
                   "(default: the latest v1 release).")
@click.option("--target", type=click.Choice(["vertex", "kfp"]), default="vertex", show_default=True,
              help="Where runs go: Vertex AI, or a self-hosted Kubeflow Pipelines (needs --kfp-host).")
@click.option("--kfp-host", default=None, metavar="URL",
              help="--target kfp: the KFP API URL, e.g. https://kubeflow.example.com/pipeline.")
@click.option("--kfp-auth", type=click.Choice(["none", "token", "iap", "dex"]), default="dex", show_default=True,
              help="--target kfp: how to get past the KFP API's guard (docs/kubeflow.md).")
@click.pass_obj
def init_command(ctx, project_id: str, region: str, force: bool, with_github: bool,  # type: ignore[no-untyped-def]
                 github_repo: str | None, action_ref: str | None, target: str, kfp_host: str | None,
                 kfp_auth: str) -> None:
    """Write conf/base/vertexai.yml (every option, commented) for PROJECT_ID and REGION."""
    import yaml

    from ..config import parse_config
    from ..config_template import render_template
    from ..errors import ConfigError, Problem
    from ..fsutil import atomic_write
    from ..kedro_io import bootstrap
    from ..scaffold.gitignore import planned_gitignore

    if (target == "kfp") != (kfp_host is not None):
        raise ConfigError([Problem("--kfp-host", "", "--target kfp and --kfp-host URL go together")])
    info = bootstrap(ctx.project)
    config_file = ctx.project / "conf" / "base" / "vertexai.yml"
    text = render_template(project_id, region, info.project_name, kfp_host=kfp_host, kfp_auth=kfp_auth)
    parse_config(yaml.safe_load(text))  # never write a config that fails our own validation
    written: list[Path] = []
    if config_file.exists() and not force and not with_github:
        raise ConfigError([Problem(str(config_file), "", "already exists; pass --force to overwrite it")])
    if with_github and config_file.exists() and not force:
        _check_utf8(config_file)  # the GitHub setup reads project, region, bucket and accounts from it
    gitignore = planned_gitignore(ctx.project)  # read (and refused) before anything is written
    if with_github:  # writes vertexai.yml too where missing (or forced), with the runtime service account
        written += _write_github(ctx.project, project_id=project_id, region=region, force=force,
                                 project_name=info.project_name, github_repo=github_repo, action_ref=action_ref,
                                 kfp_host=kfp_host, kfp_auth=kfp_auth)
    elif not config_file.exists() or force:
        written.append(atomic_write(config_file, text))
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


def _write_github(project: Path, *, project_id: str, region: str, force: bool, project_name: str,
                  github_repo: str | None, action_ref: str | None, kfp_host: str | None = None,
                  kfp_auth: str = "dex") -> list[Path]:
    import yaml

    from ..config import parse_config
    from ..scaffold.github import plan_scaffold, skipped_files, write_plan
    from ..scaffold.pins import resolve_action, resolve_checkout

    action, checkout = resolve_action(action_ref), resolve_checkout()
    plan = plan_scaffold(project, project_id=project_id, region=region, project_name=project_name,
                         github_repository=github_repo, force=force, action=action, checkout=checkout,
                         kfp_host=kfp_host, kfp_auth=kfp_auth)
    vertexai = project / "conf" / "base" / "vertexai.yml"
    if vertexai in plan.files:
        parse_config(yaml.safe_load(plan.files[vertexai]))  # never write a config that fails our own validation
    kept = skipped_files(plan) if not force else []
    written = write_plan(plan, force=force)
    for path in kept:
        click.echo(f"kept {os.path.relpath(path, project)} (pass --force to overwrite)")
    for note in plan.notes:
        click.secho(f"Note: {note}", fg="yellow", err=True)
    if not action.pinned:
        workflow = next(path for path in plan.files if path.name == "kedro-vertex.yml")
        click.secho(
            f"Note: could not resolve {action.repository}@{action.ref} to a commit (offline?); the workflow uses "
            f"the tag. Pin it later with: kedro-vertex-ci pin-actions {os.path.relpath(workflow)}",
            fg="yellow", err=True)
    script = os.path.relpath(plan.setup_script)
    click.echo(f"Next: review and run {script} once (gcloud and gh logged in), then push a branch.")
    if kfp_host:
        from ..scaffold.github import KFP_SETTINGS

        click.echo(f"Kubeflow Pipelines at {kfp_host}: the workflow also needs the {KFP_SETTINGS[kfp_auth]} "
                   "(Settings > Secrets and variables > Actions).")
    return written


@click.command("pin-actions")
@click.argument("workflow", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def pin_actions_command(workflow: Path) -> None:
    """Pin every `uses: owner/repo@TAG` in WORKFLOW to the tag's commit SHA (the tag stays as a comment)."""
    from ..errors import KvcError
    from ..fsutil import atomic_write
    from ..scaffold.pins import pin_workflow_text, resolve

    text = workflow.read_text(encoding="utf-8")
    pinned, unresolved = pin_workflow_text(text, lambda repo, ref: resolve(repo, ref))
    if pinned != text:
        atomic_write(workflow, pinned)
        click.echo(f"pinned {workflow}")
    if unresolved:
        raise KvcError(f"{workflow}: could not resolve {', '.join(unresolved)} to a commit with `git ls-remote` "
                       f"(offline, or no such tag); the line is left as it was")


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
