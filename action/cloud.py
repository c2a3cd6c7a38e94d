"""The cloud operations the action orchestrates, as one small interface over ``kedro_vertex_ci.gcp``.

:class:`Cloud` is what ``main.run`` talks to; ``action.gcp_cloud`` holds the real one (credentials from
Workload Identity Federation, clients at the configured endpoints) and imports this module, never the other
way round. Keeping the action's needs in one interface keeps ``main`` readable and lets the dry run prove it
never reaches the cloud.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Built:
    image: str  # repository:tag that was pushed
    digest: str  # sha256:...
    build_id: str | None = None
    log_url: str | None = None
    reused: bool = False  # the tag already existed: nothing was built

    @property
    def pinned(self) -> str:
        """The image reference pinned by digest (what the compiled spec should run)."""
        repository = self.image.rsplit("@", 1)[0]
        last = repository.rsplit("/", 1)[-1]
        if ":" in last:
            repository = repository[: repository.rfind(":")]
        return f"{repository}@{self.digest}"


@dataclass(frozen=True)
class Submitted:
    job_id: str
    run_url: str
    state: str | None = None
    reused: bool = False  # this commit's run already existed: nothing was submitted


@dataclass(frozen=True)
class Scheduled:
    name: str
    cron: str


@dataclass(frozen=True)
class CloudTarget:
    """Where to act: taken from the inputs, else from ``vertexai.yml``."""

    project_id: str
    region: str
    workload_identity_provider: str | None
    service_account: str | None


@dataclass(frozen=True)
class RunScope:
    """Which runs belong together: this pipeline of this project, at a commit, on a PR or branch."""

    sha: str
    branch: str | None = None
    pr_number: int | None = None
    run_id: str | None = None  # GITHUB_RUN_ID: a later workflow run has a larger id


class Cloud(Protocol):
    def build(self, project: Path, image: str, *, sha: str, branch: str | None, reuse: bool) -> Built: ...

    def find_run(self, compiled: Any, scope: RunScope) -> Submitted | None: ...

    def cancel_superseded(self, compiled: Any, scope: RunScope) -> list[str]: ...

    def run_once(self, compiled: Any, *, labels: Mapping[str, str], params: Mapping[str, str],
                 scope: RunScope | None) -> Submitted: ...

    def wait(self, submitted: Submitted) -> str: ...

    def schedule(self, compiled: Any, settings: Any) -> Scheduled: ...

    def unschedule(self, compiled: Any) -> list[str]: ...


def earlier_workflow_run(their_run: str | None, our_run: str | None) -> bool:
    """Whether a run's workflow run came before ours (unknown on either side: assume it did)."""
    if not (their_run and our_run and their_run.isdigit() and our_run.isdigit()):
        return True
    return int(their_run) < int(our_run)


def kedro_pipeline_of(compiled: Any) -> str:
    return str(getattr(compiled.plan, "kedro_pipeline", "__default__"))
