"""``action-rehearsal``: run the GitHub Action locally, in dry-run mode, on a synthesized event."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..rehearsal import GitFacts

_ACTION_HOME = "/opt/kedro-vertex-action/src"  # where the Action's Dockerfile puts its source


@click.command("action-rehearsal")
@click.option(
    "--event",
    type=click.Choice(["push", "pull_request", "merge", "schedule", "workflow_dispatch"]),
    default="push",
    show_default=True,
    help="The event to rehearse (merge = a push to the default branch).",
)
@click.option("--branch", default=None, help="Branch pushed or proposed [default: the current branch].")
@click.option("--pr", "pr_number", type=click.IntRange(min=1), default=None, help="Pull request number [default: 1].")
@click.option("--repo", default=None, metavar="OWNER/NAME", help="GitHub repository [default: from the origin remote].")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="NAME=VALUE",
    help="An Action input as in the workflow's `with:` (repeatable; wins over the workflow file).",
)
@click.option(
    "--workflow",
    "workflow_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Workflow whose kedro-vertex-action step gives the inputs [default: .github/workflows/kedro-vertex.yml "
    "if present].",
)
@click.option("--action-image", default=None, help="Run this Action image instead of building one.")
@click.option(
    "--action-source",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A checkout of the Action's repository to build the image from [default: the checkout this "
    "kedro-vertex-ci runs from, if it is one].",
)
@click.option("--build-arg", "build_args", multiple=True, metavar="NAME=VALUE", help="Build argument for the Action image.")
@click.option("--network", default="none", show_default=True, help="docker run --network for the Action container.")
@click.option("--no-docker", is_flag=True, help="Run the Action's code in this process instead of its container.")
@click.pass_obj
def action_rehearsal(
    ctx: Any,
    event: str,
    branch: str | None,
    pr_number: int | None,
    repo: str | None,
    inputs: tuple[str, ...],
    workflow_file: Path | None,
    action_image: str | None,
    action_source: Path | None,
    build_args: tuple[str, ...],
    network: str,
    no_docker: bool,
) -> None:
    """Rehearse the GitHub Action on this clone: what it would build, compile, submit, schedule and comment.

    Synthesizes the event payload and runner environment from the local git state and runs the Action with
    dry-run: true. No cloud API and no GitHub API is called.
    """
    from ..errors import ConfigError
    from ..rehearsal import parse_inputs, rehearse

    given = parse_inputs(inputs)
    git_root, facts, notes = _git_facts(ctx.project, repo)
    source = _action_source(action_source)
    if no_docker and source is None:
        raise ConfigError("--no-docker runs the Action's code, which is not installed with kedro-vertex-ci: pass "
                          "--action-source PATH (a checkout of the Action's repository)")
    defaults = _input_defaults(source, action_image, no_docker)
    workflow_inputs = _workflow_inputs(git_root, workflow_file, notes)
    merged = {**defaults, **workflow_inputs, **given}
    if "working-directory" not in workflow_inputs and "working-directory" not in given:
        merged["working-directory"] = ctx.project.relative_to(git_root).as_posix() or "."
    if no_docker and merged.get("requirements"):
        notes.append("--no-docker: the project's requirements are taken from this environment (not installed)")
        merged["requirements"] = ""
    with tempfile.TemporaryDirectory(prefix="kvc-rehearsal-") as scratch:
        folders = {name: Path(scratch) / name for name in ("file_commands", "workflow")}
        for folder in folders.values():
            folder.mkdir()
        paths = None if not no_docker else {"workspace": str(git_root), **{k: str(v) for k, v in folders.items()}}
        plan = rehearse(event, facts, merged, branch=branch, pr_number=pr_number, paths=paths)
        _write_event(folders, plan.payload)
        for note in (*notes, *plan.notes):
            click.secho(f"Note: {note}", fg="yellow", err=True)
        mode = "in this process" if no_docker else "in the Action's container"
        click.secho(f"Rehearsing a {event} of {facts.repository}@{facts.sha[:12]} ({mode}, dry run)", bold=True)
        if no_docker:
            assert source is not None
            code = _run_in_process(source, plan.env)
        else:
            image = action_image or _build_action_image(source, build_args)
            code = _run_in_container(image, plan.env, git_root, folders, network)
        _show_results(folders["file_commands"])
    click.get_current_context().exit(code)


def _git(project: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(project), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _git_facts(project: Path, repo: str | None) -> tuple[Path, GitFacts, list[str]]:
    """(git root, facts, notes) from the clone holding the project; a folder outside git still rehearses."""
    from ..rehearsal import ZERO_SHA, GitFacts, github_repository

    notes: list[str] = []
    top = _git(project, "rev-parse", "--show-toplevel")
    root = Path(top).resolve() if top else project
    if not top:
        notes.append(f"{project} is not in a git repository: the commit is {ZERO_SHA[:12]}…")
    sha = _git(project, "rev-parse", "HEAD") or ZERO_SHA
    branch = _git(project, "branch", "--show-current") or "main"
    default = (_git(project, "symbolic-ref", "--short", "refs/remotes/origin/HEAD") or "").removeprefix("origin/")
    remote = github_repository(_git(project, "remote", "get-url", "origin") or "")
    name = repo or remote
    if name is None:
        name = f"local/{root.name}"
        notes.append(f"no GitHub origin remote: the repository is called {name} (pass --repo OWNER/NAME)")
    message = _git(project, "log", "-1", "--format=%s") or "local commit"
    return root, GitFacts(name, sha, branch, default or "main", message), notes


def _action_source(given: Path | None) -> Path | None:
    """The Action's repository: the given folder, else the checkout this package runs from (if it is one)."""
    from ..errors import ConfigError

    if given is not None:
        if not (given / "action.yml").is_file() or not (given / "action").is_dir():
            raise ConfigError(f"--action-source {given}: no action.yml and action/ there")
        return given.resolve()
    here = Path(__file__).resolve().parents[2]
    return here if (here / "action.yml").is_file() and (here / "action" / "__init__.py").is_file() else None


def _input_defaults(source: Path | None, image: str | None, no_docker: bool) -> dict[str, str]:
    """Every input's default, as GitHub passes them: from the action.yml the image carries, else the source's.

    Without either the Action applies its own defaults; only the token, which GitHub always passes, is set.
    """
    import yaml

    from ..rehearsal import REHEARSAL_TOKEN, action_input_defaults

    text = None
    if image is not None and not no_docker:
        proc = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "cat", image,
                               f"{_ACTION_HOME}/action.yml"], capture_output=True, text=True, timeout=120)
        text = proc.stdout if proc.returncode == 0 else None
    if text is None and source is not None:
        text = (source / "action.yml").read_text(encoding="utf-8")
    defaults = action_input_defaults(yaml.safe_load(text) or {}) if text else {}
    return {**defaults, "github-token": REHEARSAL_TOKEN}


def _workflow_inputs(git_root: Path, given: Path | None, notes: list[str]) -> dict[str, str]:
    import yaml

    from ..errors import ConfigError
    from ..rehearsal import resolve_expressions, workflow_inputs

    path = given or git_root / ".github" / "workflows" / "kedro-vertex.yml"
    if given is None and not path.is_file():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"--workflow {path}: cannot read it ({err.strerror})") from err
    except (yaml.YAMLError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError,
            RecursionError) as err:
        raise ConfigError(f"{path}: not valid YAML ({(str(err).splitlines() or [type(err).__name__])[0]})") from err
    found, unresolved = resolve_expressions(workflow_inputs(loaded if isinstance(loaded, dict) else {}, str(path)))
    notes.append(f"inputs from {path}")
    notes.extend(unresolved)
    return found


def _write_event(folders: Mapping[str, Path], payload: Mapping[str, Any]) -> None:
    import json

    (folders["workflow"] / "event.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    for name in ("output", "summary", "env"):
        (folders["file_commands"] / name).touch()


def _build_action_image(source: Path | None, build_args: tuple[str, ...]) -> str:
    """The Action image built from its repository's Dockerfile with the local engine (reused when unchanged)."""
    from ..errors import ConfigError
    from ..local.imagebuild import ensure_image, parse_build_args

    if source is None:
        raise ConfigError("no Action image: pass --action-image IMAGE, --action-source PATH, or --no-docker")
    log = Path(tempfile.gettempdir()) / "kvc-action-image-build.log"
    click.echo(f"Building the Action image from {source / 'Dockerfile'} (reused when unchanged)…", err=True)
    built = ensure_image(source, "auto", parse_build_args(build_args), log, name="kedro-vertex-action")
    return built.tag


def _run_in_container(image: str, env: Mapping[str, str], git_root: Path, folders: Mapping[str, Path], network: str) -> int:
    """``docker run`` as GitHub runs a container action; values reach it by name, never on the command line."""
    from ..rehearsal import FILE_COMMANDS, WORKFLOW_DIR, WORKSPACE

    argv = ["docker", "run", "--rm", "--network", network, "--workdir", WORKSPACE,
            "-v", f"{git_root}:{WORKSPACE}", "-v", f"{folders['file_commands']}:{FILE_COMMANDS}",
            "-v", f"{folders['workflow']}:{WORKFLOW_DIR}"]
    for name in sorted(env):
        argv += ["-e", name]
    argv.append(image)
    proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    _relay(line.decode("utf-8", errors="replace") for line in proc.stdout)
    return proc.wait()


def _run_in_process(source: Path, env: Mapping[str, str]) -> int:
    """The Action's own ``run`` in this interpreter, its output relayed as the container's would be."""
    import io
    import sys

    sys.path.insert(0, str(source))
    try:
        from action.main import run  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(source))
    buffer = io.StringIO()
    code = int(run({**os.environ, **env}, stream=buffer))
    _relay(buffer.getvalue().splitlines(keepends=True))
    return code


def _relay(lines: Any) -> None:
    """Print the Action's log as a runner shows it: groups as headings, annotations coloured, masks applied;
    the pull request comment a dry run shows is rendered as the Markdown GitHub would display."""
    from ..rehearsal_view import LogView

    view = LogView()
    comment: list[str] | None = None
    for raw in lines:
        line = raw.rstrip("\n")
        if line.startswith("::group::Pull request comment"):
            comment = []
        elif comment is not None and line == "::endgroup::":
            _print_markdown("Pull request comment it would write", "\n".join(comment))
            comment = None
            continue
        shown = view.render(line)
        if shown is None:
            continue
        if comment is not None and not line.startswith("::group::"):
            comment.append(shown.text)
        else:
            click.secho(shown.text, fg=shown.colour, bold=shown.bold)


def _print_markdown(title: str, markdown: str) -> None:
    from rich.console import Console
    from rich.markdown import Markdown
    from rich.rule import Rule

    console = Console(highlight=False)
    console.print(Rule(title))
    console.print(Markdown(_without_diagrams(markdown)) if markdown.strip() else "  (empty)")


def _show_results(file_commands: Path) -> None:
    """The outputs the step would set and the job summary it would write, rendered in the terminal."""
    from rich.console import Console
    from rich.rule import Rule

    from ..rehearsal_view import parse_outputs

    console = Console(highlight=False)
    outputs = parse_outputs((file_commands / "output").read_text(encoding="utf-8", errors="replace"))
    console.print(Rule("Step outputs"))
    for name, value in outputs.items():
        console.print(f"  {name} = {value!r}")
    _print_markdown("Job summary", (file_commands / "summary").read_text(encoding="utf-8", errors="replace"))


def _without_diagrams(markdown: str) -> str:
    """Mermaid blocks are drawn by GitHub, not a terminal: say one is there instead of printing its source."""
    import re

    return re.sub(r"```mermaid\n.*?```", "*(a Mermaid diagram of the steps, drawn on GitHub)*", markdown, flags=re.DOTALL)
