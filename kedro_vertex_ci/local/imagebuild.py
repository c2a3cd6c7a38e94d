"""Build the project's image with the local Docker engine for ``run-local --runner docker``.

The build context is exactly the one Cloud Build receives (:mod:`kedro_vertex_ci.gcp.source`: the same ignore
rules, the same files left out, the same deterministic tarball), piped to ``docker build -``. The image is
tagged by a hash of that tarball (plus the build arguments), so an unchanged project is never rebuilt and a
changed one always is: the tag itself says whether the image is stale.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, KvcError

BUILD_MODES = ("auto", "always", "never")
LOCAL_REPOSITORY = "kvc-local"
_TAIL_LINES = 30
_ENGINE_TIMEOUT = 15


class DockerUnavailable(KvcError):
    """No Docker engine answers: nothing can be built or run in containers."""


class ImageBuildFailed(KvcError):
    """``docker build`` of the project's Dockerfile failed; the message holds the end of its log."""


@dataclass(frozen=True)
class BuildContext:
    """The project's build context as Cloud Build would receive it, and the local tag it maps to."""

    project: Path
    files: tuple[str, ...]
    tarball: bytes
    tag: str

    @property
    def digest(self) -> str:
        return self.tag.rpartition(":")[2]


@dataclass(frozen=True)
class LocalImage:
    """The image a Docker dry run uses: its tag, whether it was built now, and how long that took."""

    tag: str
    built: bool
    seconds: float
    log: Path | None = None


def project_slug(project: Path) -> str:
    """A Docker repository name from the project folder (lowercase, ``[a-z0-9._-]``)."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", project.name.lower()).strip("._-")
    return slug or "project"


def parse_build_args(items: Sequence[str]) -> dict[str, str]:
    """``--build-arg KEY=VALUE`` items as a mapping (``KEY`` alone is an error: we pass no host values)."""
    args: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ConfigError(f"--build-arg {item!r}: expected NAME=VALUE (NAME: letters, digits, _)")
        args[key] = value
    return args


def build_context(project: Path, build_args: Mapping[str, str], name: str | None = None) -> BuildContext:
    """The context Cloud Build would get, tagged ``kvc-local/<name>:<hash of tarball + build args>``."""
    from ..gcp.source import collect_files, make_tarball

    project = project.resolve()  # the tag is named after the folder: "." must name it too
    dockerfile = project / "Dockerfile"
    if not dockerfile.is_file():
        raise ConfigError(
            f"--runner docker --build: {dockerfile} does not exist. `kedro-vertex-ci init --github` writes one "
            "(or pass --build never with --image IMAGE)"
        )
    files = collect_files(project)
    if "Dockerfile" not in files:  # Docker always sends the Dockerfile, even when .dockerignore names it
        files = sorted([*files, "Dockerfile"])
    tarball = make_tarball(project, files)
    hasher = hashlib.sha256(tarball)
    for key in sorted(build_args):
        hasher.update(f"\0{key}={build_args[key]}".encode())
    tag = f"{LOCAL_REPOSITORY}/{name or project_slug(project)}:{hasher.hexdigest()[:16]}"
    return BuildContext(project=project, files=tuple(files), tarball=tarball, tag=tag)


def _docker(docker: str, args: Sequence[str], env: Mapping[str, str] | None, timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [docker, *args], capture_output=True, text=True, timeout=timeout,
            env=None if env is None else dict(env), check=False,
        )
    except FileNotFoundError as err:
        raise DockerUnavailable(
            f"the Docker client {docker!r} is not installed. Install Docker (docs.docker.com/get-docker), "
            "or run the steps as processes: run-local --runner subprocess"
        ) from err
    except subprocess.TimeoutExpired as err:
        raise DockerUnavailable(f"`{docker} {' '.join(args)}` did not answer within {timeout:g} s") from err


def check_engine(docker: str = "docker", env: Mapping[str, str] | None = None) -> str:
    """The engine's version; :class:`DockerUnavailable` naming how to start one when none answers."""
    proc = _docker(docker, ["version", "--format", "{{.Server.Version}}"], env, _ENGINE_TIMEOUT)
    if proc.returncode != 0 or not proc.stdout.strip():
        detail = (proc.stderr.strip().splitlines() or ["no answer"])[-1]
        host = (env or {}).get("DOCKER_HOST") or "the default socket"
        raise DockerUnavailable(
            f"no Docker engine answers on {host} ({detail}). Start one (Docker Desktop, or "
            "`sudo systemctl start docker`; in this repository `bash scripts/docker-engine.sh up` starts an "
            "offline one and prints the DOCKER_HOST to export), or run the steps as processes: "
            "run-local --runner subprocess"
        )
    return proc.stdout.strip()


def image_present(tag: str, docker: str = "docker", env: Mapping[str, str] | None = None) -> bool:
    return _docker(docker, ["image", "inspect", "--format", "{{.Id}}", tag], env, 60).returncode == 0


def build_image(
    context: BuildContext,
    build_args: Mapping[str, str],
    log_path: Path,
    on_line: Callable[[str], None] = lambda line: None,
    docker: str = "docker",
    env: Mapping[str, str] | None = None,
) -> float:
    """``docker build -`` of the context, its output in ``log_path`` and passed line by line to ``on_line``.

    Returns the seconds it took; :class:`ImageBuildFailed` with the last lines of the log when it fails.
    """
    argv = [docker, "build", "--label", f"org.kedro-vertex-ci.project={project_slug(context.project)}",
            "--label", f"org.kedro-vertex-ci.context={context.digest}", "-t", context.tag]
    for key in sorted(build_args):
        argv += ["--build-arg", f"{key}={build_args[key]}"]
    argv.append("-")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    with log_path.open("w", encoding="utf-8") as log:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    env=None if env is None else dict(env))
        except FileNotFoundError as err:
            raise DockerUnavailable(f"the Docker client {docker!r} is not installed") from err
        assert proc.stdin is not None and proc.stdout is not None
        _feed(proc, context.tarball)
        for raw in proc.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            log.write(line + "\n")
            tail.append(line)
            on_line(line)
        code = proc.wait()
    if code != 0:
        last = "\n".join(tail)
        raise ImageBuildFailed(
            f"docker build of {context.project / 'Dockerfile'} failed (exit {code}); last lines:\n{last}\n"
            f"full log: {log_path}"
        )
    return time.monotonic() - started


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    """Write the context to docker's stdin from a thread, so its output is read while it is still sent."""
    import threading

    def write() -> None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(data)
        except BrokenPipeError:  # docker stopped reading: its exit code and log say why
            pass
        finally:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass

    threading.Thread(target=write, daemon=True).start()


def ensure_image(
    project: Path,
    mode: str,
    build_args: Mapping[str, str],
    log_path: Path,
    on_line: Callable[[str], None] = lambda line: None,
    docker: str = "docker",
    env: Mapping[str, str] | None = None,
    name: str | None = None,
) -> LocalImage:
    """The local image for the project: reused when its context-hash tag exists (mode ``auto``), else built."""
    if mode not in BUILD_MODES:
        raise ConfigError(f"--build {mode!r}: expected one of {', '.join(BUILD_MODES)}")
    check_engine(docker, env)
    context = build_context(project, build_args, name)
    if mode == "auto" and image_present(context.tag, docker, env):
        return LocalImage(tag=context.tag, built=False, seconds=0.0)
    seconds = build_image(context, build_args, log_path, on_line, docker, env)
    return LocalImage(tag=context.tag, built=True, seconds=seconds, log=log_path)
