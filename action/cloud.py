"""The cloud operations the action orchestrates, as one small interface over ``kedro_vertex_ci.gcp``.

:class:`Cloud` is what ``main.run`` talks to; :func:`connect_gcp` builds the real one (credentials from
Workload Identity Federation, clients at the configured endpoints). Keeping the action's needs in one
interface keeps ``main`` readable and lets the dry run prove it never reaches this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Built:
    image: str  # repository:tag that was pushed
    digest: str  # sha256:...
    build_id: str | None = None
    log_url: str | None = None

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


class Cloud(Protocol):
    def build(self, project: Path, image: str, *, sha: str, branch: str | None) -> Built: ...

    def run_once(self, compiled: Any, *, labels: Mapping[str, str], params: Mapping[str, str]) -> Submitted: ...

    def wait(self, submitted: Submitted) -> str: ...

    def schedule(self, compiled: Any, *, cron: str | None) -> Scheduled: ...


def connect_gcp(
    target: CloudTarget,
    config: Any,
    environ: Mapping[str, str],
    mask: Callable[[str], None],
    log: Callable[[str], None],
) -> Cloud:
    """Authenticate (WIF from the job's OIDC token, or a credentials file) and return the real cloud."""
    from .gcp_cloud import GcpCloud  # google libraries load only when a cloud call is really made

    return GcpCloud.connect(target, config, environ, mask, log)
