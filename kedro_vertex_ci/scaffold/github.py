"""``init --github``: the GitHub workflow, the project Dockerfile and .dockerignore, and the GCP setup text.

Rendering is pure (values in, text out); :func:`write_github_scaffold` is the one function that touches the
disk, and it never overwrites a file unless asked to. Git is asked (read-only) for the default branch, the
repository root and the GitHub repository name.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..fsutil import atomic_write

WORKFLOW_PATH = Path(".github/workflows/kedro-vertex.yml")

# Pins for every `uses:` in the generated workflow: a full commit SHA and the tag it was cut from.
CHECKOUT_SHA, CHECKOUT_VERSION = "08c6903cd8c0fde910a37f88322edcfb5dd907a8", "v5.0.0"
# The released kedro-vertex action; scripts/release-action-image.sh stamps these at each release.
ACTION_REPOSITORY = "kedro-vertex-ci/kedro-vertex-action"
ACTION_SHA, ACTION_VERSION = "0000000000000000000000000000000000000000", "v0.1.0"
# The project image's base, pinned by digest (python:3.11-slim-bookworm).
PROJECT_BASE_IMAGE = (
    "python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91"
)
_GITHUB_REMOTE = re.compile(r"github\.com[:/](?P<repo>[^/\s]+/[^/\s]+?)(?:\.git)?/?$")
_SHA = re.compile(r"^[0-9a-f]{40}$")


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


def render_workflow(
    default_branch: str,
    *,
    working_directory: str = ".",
    action_repository: str = ACTION_REPOSITORY,
    action_sha: str = ACTION_SHA,
    action_version: str = ACTION_VERSION,
) -> str:
    """The workflow YAML. ``default_branch`` may be ``$default-branch`` (organisation templates)."""
    if not _SHA.match(action_sha):
        raise ValueError(f"the action must be pinned to a full commit SHA, got {action_sha!r}")
    workdir = "" if working_directory in ("", ".") else f"          working-directory: {working_directory}\n"
    return _fill(
        _template("kedro-vertex.yml"),
        {
            "DEFAULT_BRANCH": default_branch,
            "CHECKOUT_SHA": CHECKOUT_SHA,
            "CHECKOUT_VERSION": CHECKOUT_VERSION,
            "ACTION_REPOSITORY": action_repository,
            "ACTION_SHA": action_sha,
            "ACTION_VERSION": action_version,
            "WORKING_DIRECTORY": workdir,
        },
    )


def kedro_vertex_ci_requirement() -> str:
    """``kedro-vertex-ci==<installed version>``: the image runs the same step runtime that compiled the spec."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"kedro-vertex-ci=={version('kedro-vertex-ci')}"
    except PackageNotFoundError:
        return "kedro-vertex-ci"


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
    ).replace("\n\n\nRUN", "\nRUN")


def render_dockerignore() -> str:
    return _template("dockerignore")


def _bucket_of(root: str | None, project_id: str) -> str:
    if root:
        return root.removeprefix("gs://").split("/", 1)[0]
    return f"{project_id}-vertex-pipelines"


def _artifact_repository(image: str | None) -> str:
    """The Artifact Registry repository in ``REGION-docker.pkg.dev/PROJECT/REPO/NAME`` (else ``kedro``)."""
    parts = (image or "").split("/")
    if len(parts) >= 4 and parts[0].endswith("-docker.pkg.dev"):
        return parts[2]
    return "kedro"


def render_gcp_setup(
    *,
    project_id: str,
    region: str,
    github_repository: str | None,
    bucket: str,
    artifact_repository: str = "kedro",
) -> str:
    """The one-time gcloud/gh commands (pool, provider with an attribute condition on the repository id,
    service account, roles, workloadIdentityUser binding, repository variables), as copy-paste text."""
    return _fill(
        _template("gcp-setup.sh"),
        {
            "PROJECT_ID": project_id,
            "REGION": region,
            "GITHUB_REPO": github_repository or "OWNER/REPO",
            "BUCKET": bucket,
            "AR_REPOSITORY": artifact_repository,
        },
    )


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
    remote = _git(folder, "remote", "get-url", "origin") or ""
    match = _GITHUB_REMOTE.search(remote)
    return GitFacts(
        root=Path(root).resolve() if root else None,
        default_branch=detect_default_branch(folder),
        github_repository=match["repo"] if match else None,
    )


def _read_run_config(project: Path) -> dict[str, str]:
    """``run_config.root`` and ``.image`` from conf/base/vertexai.yml if it exists (best effort)."""
    import yaml

    path = project / "conf" / "base" / "vertexai.yml"
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError):  # ValueError: not UTF-8 (init checks that first)
        return {}
    run_config = loaded.get("run_config") if isinstance(loaded, dict) else None
    if not isinstance(run_config, dict):
        return {}
    return {key: str(run_config[key]) for key in ("root", "image") if run_config.get(key)}


def gcp_setup_commands(project: Path, *, project_id: str, region: str) -> str:
    """The setup text for this project: bucket and registry from its vertexai.yml, repo from git."""
    git = detect_git(project)
    run_config = _read_run_config(project)
    return render_gcp_setup(
        project_id=project_id,
        region=region,
        github_repository=git.github_repository,
        bucket=_bucket_of(run_config.get("root"), project_id),
        artifact_repository=_artifact_repository(run_config.get("image")),
    )


def planned_files(project: Path, *, project_id: str, region: str, project_name: str | None = None) -> dict[Path, str]:
    """Every file ``init --github`` would write, with its text (nothing is written here)."""
    project = project.resolve()
    git = detect_git(project)
    repo_root = git.root if git.root and project.is_relative_to(git.root) else project
    working_directory = project.relative_to(repo_root).as_posix() if repo_root != project else "."
    files = {
        repo_root / WORKFLOW_PATH: render_workflow(git.default_branch, working_directory=working_directory),
        project / "Dockerfile": render_dockerfile(has_requirements=(project / "requirements.txt").is_file()),
        project / ".dockerignore": render_dockerignore(),
    }
    vertexai = project / "conf" / "base" / "vertexai.yml"
    if not vertexai.exists():
        from ..config_template import render_template

        files[vertexai] = render_template(project_id, region, project_name or project.name)
    return files


def write_github_scaffold(
    project: Path, *, force: bool, project_id: str, region: str, project_name: str | None = None
) -> list[Path]:
    """Write the workflow (at the git root), Dockerfile, .dockerignore and vertexai.yml where missing.

    A file that already exists is kept as it is (the user's own Dockerfile stays) unless ``force``; an
    identical file is never rewritten. Returns the paths written; :func:`skipped_files` names the others.
    """
    written = []
    for path, text in planned_files(project, project_id=project_id, region=region, project_name=project_name).items():
        if path.exists() and (not force or _same_bytes(path, text)):
            continue
        written.append(atomic_write(path, text))
    return written


def skipped_files(project: Path, *, project_id: str, region: str) -> list[Path]:
    """Files ``write_github_scaffold`` would keep (they exist and differ): say so, and mention --force."""
    planned = planned_files(project, project_id=project_id, region=region)
    return [path for path, text in planned.items() if path.exists() and not _same_bytes(path, text)]


def _same_bytes(path: Path, text: str) -> bool:
    """Compared as bytes: a user's Dockerfile in another encoding is theirs to keep, not a crash."""
    return path.read_bytes() == text.encode("utf-8")
