"""``init --github``: the GitHub workflow and dependabot.yml, the project Dockerfile and .dockerignore, and
the one-time GCP setup script.

Rendering is pure (values in, text out); :func:`write_plan` is the one function that touches the disk, and
it never overwrites a file unless asked to. Git is asked (read-only) for the default branch, the repository
root and the GitHub repository name; the action pins are resolved by the caller (:mod:`.pins`).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import ConfigError, Problem
from ..fsutil import atomic_write, current_umask
from .pins import ACTION_MAJOR, ACTION_REPOSITORY, CHECKOUT_REPOSITORY, CHECKOUT_SHA, CHECKOUT_VERSION, Pin

WORKFLOW_PATH = Path(".github/workflows/kedro-vertex.yml")
DEPENDABOT_PATH = Path(".github/dependabot.yml")
SETUP_SCRIPT = "gcp-setup.sh"
# The project image's base, pinned by digest (python:3.11-slim-bookworm).
PROJECT_BASE_IMAGE = (
    "python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91"
)
RUNTIME_SA_NAME = "kedro-pipelines"  # what the Vertex AI steps run as
CI_SA_NAME = "kedro-vertex-ci"  # what the workflow impersonates
_GITHUB_REMOTE = re.compile(r"github\.com[:/](?P<repo>[^/\s]+/[^/\s]+?)(?:\.git)?/?$")


@dataclass(frozen=True)
class GitFacts:
    """What git says about the folder (all optional: the project may not be a git checkout yet)."""

    root: Path | None
    default_branch: str
    github_repository: str | None


def _template(name: str) -> str:
    return resources.files("kedro_vertex_ci").joinpath("templates", "github", name).read_text(encoding="utf-8")


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    leftover = re.search(r"@@[A-Z_]+@@", text)
    if leftover:
        raise ValueError(f"template placeholder {leftover.group(0)} was not filled")
    return text


OFFLINE_ACTION = Pin(ACTION_REPOSITORY, ACTION_MAJOR)
# What the action step needs in its env for each kfp.auth mode (container actions see the step's env).
KFP_STEP_ENV = {
    "token": "        env: # the Kubeflow Pipelines bearer token (kfp.auth.token_env in vertexai.yml)\n"
             "          KFP_TOKEN: ${{ secrets.KFP_TOKEN }}\n",
    "dex": "        env: # the Kubeflow Pipelines login through Dex (kfp.auth in vertexai.yml)\n"
           "          DEX_USERNAME: ${{ secrets.KFP_DEX_USERNAME }}\n"
           "          DEX_PASSWORD: ${{ secrets.KFP_DEX_PASSWORD }}\n",
    "iap": "        env: # the OAuth client id of the IAP in front of Kubeflow (not a secret)\n"
           "          IAP_CLIENT_ID: ${{ vars.KFP_IAP_CLIENT_ID }}\n",
}
KFP_SETTINGS = {
    "none": "nothing more",
    "token": "repository secret KFP_TOKEN (a bearer token for the KFP API)",
    "dex": "repository secrets KFP_DEX_USERNAME and KFP_DEX_PASSWORD (a Kubeflow login)",
    "iap": "repository variable KFP_IAP_CLIENT_ID (IAP's OAuth client id); grant the CI service account "
           "roles/iam.serviceAccountOpenIdTokenCreator on kfp.auth.service_account",
}
OFFLINE_CHECKOUT = Pin(CHECKOUT_REPOSITORY, CHECKOUT_SHA, CHECKOUT_VERSION)


def render_workflow(
    default_branch: str,
    *,
    working_directory: str = ".",
    action: Pin = OFFLINE_ACTION,
    checkout: Pin = OFFLINE_CHECKOUT,
    kfp_auth: str | None = None,
) -> str:
    """The workflow YAML. ``default_branch`` may be ``$default-branch`` (organisation templates).

    With ``kfp_auth`` (a Kubeflow Pipelines target) the action step gets the login its ``kfp.auth`` mode reads,
    from repository secrets (variables for what is not secret), under the names vertexai.yml expects.

    When the project is a subfolder of the repository, pushes and pull requests that touch neither it nor
    the workflow do not start a run (``paths:``).
    """
    sub = working_directory not in ("", ".")
    workdir = f"          working-directory: {working_directory}\n" if sub else ""
    paths = f'    paths: ["{working_directory}/**", "{WORKFLOW_PATH.as_posix()}"]\n' if sub else ""
    return _fill(
        _template("kedro-vertex.yml"),
        {
            "DEFAULT_BRANCH": default_branch,
            "CHECKOUT_USES": checkout.uses(),
            "ACTION_USES": action.uses(),
            "WORKING_DIRECTORY": workdir,
            "PATHS": paths,
            "STEP_ENV": KFP_STEP_ENV.get(kfp_auth or "none", ""),
        },
    )


def render_dependabot(working_directory: str = ".") -> str:
    """Weekly update PRs for the pinned actions, the Dockerfile's base image and the project's requirements;
    a release must be a week old first (a compromised release is usually pulled within days)."""
    folder = "/" if working_directory in ("", ".") else f"/{working_directory}"
    entries = [("github-actions", "/"), ("docker", folder), ("pip", folder)]
    lines = ["# Keeps the pins of the kedro-vertex workflow and image fresh (written by `kedro-vertex-ci init --github`).",
             "version: 2", "updates:"]
    for ecosystem, directory in entries:
        lines += [f"  - package-ecosystem: {ecosystem}", f'    directory: "{directory}"',
                  "    schedule:", "      interval: weekly", "    cooldown:", "      default-days: 7"]
    return "\n".join(lines) + "\n"


def kedro_vertex_ci_requirement() -> str:
    """``kedro-vertex-ci==<this version>``: the image runs the step runtime of the version that compiles the
    spec (the Action of the same release), so steps understand the compiled command lines."""
    from .. import __version__

    return f"kedro-vertex-ci=={__version__}"


def render_dockerfile(*, has_requirements: bool, base_image: str = PROJECT_BASE_IMAGE) -> str:
    """The project image: its requirements and kedro-vertex-ci in a cached layer, then the project."""
    return _fill(
        _template("Dockerfile"),
        {
            "BASE_IMAGE": base_image,
            "REQUIREMENTS_COPY": "COPY requirements.txt ./" if has_requirements else "",
            "REQUIREMENTS_ARGS": "-r requirements.txt " if has_requirements else "",
            "KVC_REQUIREMENT": kedro_vertex_ci_requirement(),
        },
    ).replace("\n\nRUN python3 -m venv", "\nRUN python3 -m venv")


def render_dockerignore() -> str:
    return _template("dockerignore")


def _bucket_of(root: str | None, project_id: str) -> tuple[str, str]:
    """(bucket, the pipeline root's path inside it with a trailing slash, or "") of ``run_config.root``."""
    if root and root.startswith("gs://"):
        bucket, _, path = root.removeprefix("gs://").partition("/")
        path = path.strip("/")
        return bucket, f"{path}/" if path else ""
    return f"{project_id}-vertex-pipelines", ""


def _artifact_repository(image: str | None) -> str:
    """The Artifact Registry repository in ``REGION-docker.pkg.dev/PROJECT/REPO/NAME`` (else ``kedro``)."""
    parts = (image or "").split("/")
    if len(parts) >= 4 and parts[0].endswith("-docker.pkg.dev"):
        return parts[2]
    return "kedro"


@dataclass(frozen=True)
class SetupValues:
    """Everything gcp-setup.sh needs, all from one vertexai.yml (plus the GitHub repository)."""

    project_id: str
    region: str
    github_repository: str
    bucket: str
    root_prefix: str
    artifact_repository: str
    runtime_service_account: str


def runtime_service_account(project_id: str) -> str:
    return f"{RUNTIME_SA_NAME}@{project_id}.iam.gserviceaccount.com"


def setup_values(vertexai_text: str, github_repository: str, *, project_id: str, region: str) -> SetupValues:
    """Project, region, bucket, registry and runtime account as the vertexai.yml text says (the given
    project and region only where the file has none)."""
    import yaml

    try:
        loaded = yaml.safe_load(vertexai_text) or {}
    except (yaml.YAMLError, ValueError, KeyError, TypeError, AttributeError, RecursionError):  # the compile reports it exactly
        loaded = {}
    loaded = loaded if isinstance(loaded, dict) else {}
    run_config = loaded.get("run_config") if isinstance(loaded.get("run_config"), dict) else {}
    project_id, region = str(loaded.get("project_id") or project_id), str(loaded.get("region") or region)
    bucket, prefix = _bucket_of(run_config.get("root"), project_id)
    account = str(run_config.get("service_account") or runtime_service_account(project_id))
    return SetupValues(
        project_id=project_id, region=region, github_repository=github_repository, bucket=bucket,
        root_prefix=prefix, artifact_repository=_artifact_repository(run_config.get("image")),
        runtime_service_account=account.rsplit("/", 1)[-1],
    )


def render_gcp_setup(values: SetupValues) -> str:
    """gcp-setup.sh: pool, provider bound to the repository id, runtime and CI accounts with the least
    rights each needs, Cloud Build's rights, the bucket lifecycle rule and the repository variables."""
    import shlex

    return _fill(
        _template("gcp-setup.sh"),
        {
            "PROJECT_ID": shlex.quote(values.project_id),
            "REGION": shlex.quote(values.region),
            "GITHUB_REPO": shlex.quote(values.github_repository),
            "BUCKET": shlex.quote(values.bucket),
            "ROOT_PREFIX": shlex.quote(values.root_prefix) if values.root_prefix else '""',
            "AR_REPOSITORY": shlex.quote(values.artifact_repository),
            "RUNTIME_SA": shlex.quote(values.runtime_service_account),
            "CI_SA_NAME": CI_SA_NAME,
        },
    )


_SERVICE_ACCOUNT_LINE = re.compile(r"^  # service_account: \S+@\S+\.iam\.gserviceaccount\.com$", re.MULTILINE)


def with_runtime_service_account(vertexai_text: str, project_id: str) -> str:
    """The template with ``run_config.service_account`` set to the runtime account gcp-setup.sh creates."""
    line = f"  service_account: {runtime_service_account(project_id)}"
    replaced, count = _SERVICE_ACCOUNT_LINE.subn(line, vertexai_text, count=1)
    if count:
        return replaced
    return vertexai_text.replace("\nrun_config:\n", f"\nrun_config:\n{line}\n", 1)


def _git(folder: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = result.stdout.strip()
    return out if result.returncode == 0 and out else None


def detect_default_branch(folder: Path) -> str:
    """origin's HEAD, else ``init.defaultBranch``, else the current branch, else ``main``."""
    remote_head = _git(folder, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD")
    if remote_head:
        return remote_head.removeprefix("refs/remotes/origin/")
    return _git(folder, "config", "init.defaultBranch") or _git(folder, "symbolic-ref", "--quiet", "--short", "HEAD") or "main"


def detect_git(folder: Path) -> GitFacts:
    root = _git(folder, "rev-parse", "--show-toplevel")
    remote = _git(folder, "config", "--get", "remote.origin.url") or ""  # as written, before insteadOf
    match = _GITHUB_REMOTE.search(remote)
    return GitFacts(
        root=Path(root).resolve() if root else None,
        default_branch=detect_default_branch(folder),
        github_repository=match["repo"] if match else None,
    )


_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class ScaffoldPlan:
    """What ``init --github`` writes (path -> text), which file is the setup script, and notes to print."""

    files: dict[Path, str]
    setup_script: Path
    notes: tuple[str, ...] = ()


def plan_scaffold(
    project: Path,
    *,
    project_id: str,
    region: str,
    project_name: str | None = None,
    github_repository: str | None = None,
    force: bool = False,
    action: Pin = OFFLINE_ACTION,
    checkout: Pin = OFFLINE_CHECKOUT,
    kfp_host: str | None = None,
    kfp_auth: str = "dex",
) -> ScaffoldPlan:
    """Every file ``init --github`` would write, with its text; nothing is written here.

    Raises :class:`ConfigError` when the GitHub repository is unknown (no github.com remote and no
    ``--github-repo``): the setup script binds the identity pool to that repository and has no placeholder.
    """
    project = project.resolve()
    git = detect_git(project)
    repository = github_repository or git.github_repository
    if not repository:
        raise ConfigError([Problem("--github-repo", "", "the GitHub repository is unknown: no github.com remote "
                                   "named origin; pass --github-repo OWNER/NAME")])
    if not _REPOSITORY.match(repository):
        raise ConfigError([Problem("--github-repo", "", f"expected OWNER/NAME, got {repository!r}")])
    repo_root = git.root if git.root and project.is_relative_to(git.root) else project
    working_directory = project.relative_to(repo_root).as_posix() if repo_root != project else "."
    files = {
        repo_root / WORKFLOW_PATH: render_workflow(git.default_branch, working_directory=working_directory,
                                                   action=action, checkout=checkout,
                                                   kfp_auth=kfp_auth if kfp_host else None),
        repo_root / DEPENDABOT_PATH: render_dependabot(working_directory),
        project / "Dockerfile": render_dockerfile(has_requirements=(project / "requirements.txt").is_file()),
        project / ".dockerignore": render_dockerignore(),
    }
    vertexai = project / "conf" / "base" / "vertexai.yml"
    notes: list[str] = []
    if vertexai.exists() and not force:
        vertexai_text = vertexai.read_bytes().decode("utf-8", errors="replace")  # init refuses non-UTF-8 first
        notes += _kept_config_notes(vertexai_text, project_id, region)
        if kfp_host and "target: kfp" not in vertexai_text:
            notes.append(f"conf/base/vertexai.yml is kept as it is: set run_config.target: kfp and a kfp section "
                         f"(host: {kfp_host}, auth.mode: {kfp_auth}) in it, or pass --force to rewrite it")
    else:
        from ..config_template import render_template

        vertexai_text = with_runtime_service_account(
            render_template(project_id, region, project_name or project.name, kfp_host=kfp_host,
                            kfp_auth=kfp_auth), project_id)
        files[vertexai] = vertexai_text
    values = setup_values(vertexai_text, repository, project_id=project_id, region=region)
    script = project / SETUP_SCRIPT
    files[script] = render_gcp_setup(values)
    return ScaffoldPlan(files=files, setup_script=script, notes=tuple(notes))


def _kept_config_notes(vertexai_text: str, project_id: str, region: str) -> list[str]:
    """What the user should know when the existing vertexai.yml, not the command line, drives the setup."""
    import yaml

    try:
        loaded = yaml.safe_load(vertexai_text) or {}
    except (yaml.YAMLError, ValueError, KeyError, TypeError, AttributeError, RecursionError):  # the compile reports it exactly
        return []
    if not isinstance(loaded, dict):
        return []
    notes = []
    for key, given in (("project_id", project_id), ("region", region)):
        if str(loaded.get(key)) != given:
            notes.append(f"conf/base/vertexai.yml has {key}: {loaded.get(key)} (not {given}); {SETUP_SCRIPT} "
                         f"and the workflow use the file's value (--force rewrites the file)")
    run_config = loaded.get("run_config") if isinstance(loaded.get("run_config"), dict) else {}
    if not run_config.get("service_account"):
        notes.append(f"add `service_account: {runtime_service_account(str(loaded.get('project_id')))}` under "
                     f"run_config in conf/base/vertexai.yml so the steps run as the account {SETUP_SCRIPT} creates")
    return notes


def write_github_scaffold(
    project: Path,
    *,
    force: bool,
    project_id: str,
    region: str,
    project_name: str | None = None,
    github_repository: str | None = None,
    action: Pin = OFFLINE_ACTION,
    checkout: Pin = OFFLINE_CHECKOUT,
) -> list[Path]:
    """Write the workflow and dependabot.yml (at the git root), Dockerfile, .dockerignore, gcp-setup.sh and
    vertexai.yml where missing.

    A file that already exists is kept as it is (the user's own Dockerfile stays) unless ``force``; an
    identical file is never rewritten. Returns the paths written; :func:`skipped_files` names the others.
    """
    plan = plan_scaffold(project, project_id=project_id, region=region, project_name=project_name,
                         github_repository=github_repository, force=force, action=action, checkout=checkout)
    return write_plan(plan, force=force)


def write_plan(plan: ScaffoldPlan, *, force: bool) -> list[Path]:
    written = []
    for path, text in plan.files.items():
        if path.exists() and (not force or _same_bytes(path, text)):
            continue
        executable = 0o777 & ~current_umask() if path == plan.setup_script else None
        written.append(atomic_write(path, text, mode=executable))
    return written


def skipped_files(plan: ScaffoldPlan) -> list[Path]:
    """Files ``write_plan`` would keep (they exist and differ): say so, and mention --force."""
    return [path for path, text in plan.files.items() if path.exists() and not _same_bytes(path, text)]


def _same_bytes(path: Path, text: str) -> bool:
    """Compared as bytes: a user's Dockerfile in another encoding is theirs to keep, not a crash."""
    return path.read_bytes() == text.encode("utf-8")
