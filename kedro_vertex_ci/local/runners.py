"""Start one step's process: on this machine (:class:`SubprocessRunner`) or in the project image
(:class:`DockerRunner`). Each runner builds its command line with a pure method, then runs it with stdout and
stderr going to the step's log file. No shell: the argv list is passed as is.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..runtime.hosts import HOSTS_FILE_ENV

# Set in every step: telemetry and prompts must never block a step.
QUIET_ENV = {"KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "PYTHONUNBUFFERED": "1"}
# Passed by name into containers (``-e NAME``: the value never appears on the docker command line).
PASSTHROUGH_PREFIXES = ("KEDRO_CONFIG_",)
PASSTHROUGH_NAMES = ("STORAGE_EMULATOR_HOST", "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "GOOGLE_CLOUD_PROJECT")


@dataclass(frozen=True)
class Invocation:
    """One step ready to start: rendered command/args, the container's env and resources."""

    task: str
    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cpu: float | None = None
    memory: int | None = None


class _ProcessTracker:
    """Remembers live processes so Ctrl-C can stop them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen[bytes]] = set()

    def run(self, argv: Sequence[str], log: Path, env: Mapping[str, str], cwd: Path | None) -> int:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env),
                cwd=cwd,
            )
            with self._lock:
                self._live.add(proc)
            try:
                return proc.wait()
            finally:
                with self._lock:
                    self._live.discard(proc)

    def terminate(self) -> None:
        with self._lock:
            live = list(self._live)
        for proc in live:
            proc.terminate()


def venv_bin() -> Path:
    """The folder holding this interpreter's console scripts (the venv's ``bin``)."""
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix) / ("Scripts" if os.name == "nt" else "bin")
    return Path(sys.executable).parent


class SubprocessRunner:
    """Each step as a local process in the current environment, from the project root."""

    name = "subprocess"

    def __init__(self, project: Path, base_env: Mapping[str, str] | None = None):
        self.project = project
        self.base_env = dict(os.environ if base_env is None else base_env)
        self._tracker = _ProcessTracker()

    def environment(self, inv: Invocation) -> dict[str, str]:
        """Our env + the container's env + quiet flags, with the venv's bin first on PATH."""
        env = {**self.base_env, **inv.env, **QUIET_ENV}
        env["PATH"] = os.pathsep.join(p for p in (str(venv_bin()), env.get("PATH", "")) if p)
        # network.host_aliases: a dry run on this machine must not rewrite its /etc/hosts.
        env.setdefault(HOSTS_FILE_ENV, str(self.project / ".kedro-vertex-ci" / "hosts"))
        return env

    def argv(self, inv: Invocation) -> list[str]:
        return [*inv.command, *inv.args]

    def run(self, inv: Invocation, log: Path) -> int:
        return self._tracker.run(self.argv(inv), log, self.environment(inv), self.project)

    def terminate(self) -> None:
        self._tracker.terminate()


class DockerRunner:
    """Each step in a container of the project image, like a Vertex worker.

    ``--network host`` (steps reach loopback fakes), the local root mounted at the same path so
    ``{{$.pipeline_root}}`` means the same inside and out, CPU and memory limits from the spec. The container
    ``command`` replaces the image ENTRYPOINT and ``args`` its CMD, as on Kubernetes.
    """

    name = "docker"

    def __init__(
        self,
        image: str | None = None,
        mounts: Sequence[tuple[str, str]] = (),
        workdir: str | None = None,
        docker: str = "docker",
        host_cpus: int | None = None,
        base_env: Mapping[str, str] | None = None,
    ):
        self.image = image
        self.mounts = tuple(mounts)
        self.workdir = workdir
        self.docker = docker
        self.host_cpus = host_cpus or os.cpu_count() or 1
        self.base_env = dict(os.environ if base_env is None else base_env)
        self._tracker = _ProcessTracker()

    def argv(self, inv: Invocation) -> list[str]:
        """The full ``docker run`` command line for one step."""
        argv = [self.docker, "run", "--rm", "--network", "host"]
        for host, inside in self.mounts:
            argv += ["-v", f"{host}:{inside}"]
        if self.workdir:
            argv += ["-w", self.workdir]
        if inv.cpu:
            argv += ["--cpus", _docker_cpus(inv.cpu, self.host_cpus)]
        if inv.memory:
            argv += ["--memory", str(max(inv.memory, 6 * 2**20))]  # docker's floor is 6 MiB
        for name in sorted({**inv.env, **QUIET_ENV}):
            argv += ["-e", f"{name}={({**inv.env, **QUIET_ENV})[name]}"]
        for name in sorted(self._passthrough()):
            argv += ["-e", name]
        if inv.command:
            argv += ["--entrypoint", inv.command[0]]
        argv.append(self.image or inv.image)
        argv += [*inv.command[1:], *inv.args]
        return argv

    def _passthrough(self) -> set[str]:
        return {
            n
            for n in self.base_env
            if n in PASSTHROUGH_NAMES or any(n.startswith(p) for p in PASSTHROUGH_PREFIXES)
        }

    def run(self, inv: Invocation, log: Path) -> int:
        return self._tracker.run(self.argv(inv), log, self.base_env, None)

    def terminate(self) -> None:
        self._tracker.terminate()


def plan_mounts(
    root: Path,
    pipeline_root: str | None,
    project_data: Path | None,
    workdir: str | None,
    extra: Sequence[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    """Bind mounts for a Docker dry run (pure).

    The local root at the same path, so ``{{$.pipeline_root}}`` means the same inside and out (not needed for
    a ``gs://`` root). The project's ``data`` folder at ``<workdir>/data``: on Vertex the catalog points at
    Cloud Storage, locally each step is a fresh container, so catalog files written by one step reach the next
    only through a shared folder.
    """
    binds: list[tuple[str, str]] = []
    if not (pipeline_root or "").startswith("gs://"):
        binds.append((str(root), str(root)))
    if project_data is not None and workdir:
        binds.append((str(project_data), workdir.rstrip("/") + "/data"))
    binds.extend(extra)
    return binds


def image_workdir(image: str, docker: str = "docker", env: Mapping[str, str] | None = None) -> str:
    """The image's WORKDIR (where Kedro runs in it); ConfigError if the engine lacks the image or is down."""
    from ..errors import ConfigError

    argv = [docker, "image", "inspect", "--format", "{{.Config.WorkingDir}}", image]
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=30, env=None if env is None else dict(env)
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ConfigError(f"--runner docker: cannot run {docker!r} ({err}); is Docker installed?") from err
    if proc.returncode != 0:
        detail = (
            proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit code {proc.returncode}"
        )
        raise ConfigError(
            f"--runner docker: image {image!r} is not available to the Docker engine ({detail}). "
            "Build it first (kedro-vertex-ci build, or docker build), or pass --image"
        )
    return proc.stdout.strip() or "/"


def _docker_cpus(cpu: float, host_cpus: int) -> str:
    """Docker refuses ``--cpus`` above the host's core count: cap it (a dry run needs no more)."""
    value = min(cpu, float(host_cpus))
    return f"{value:g}"
