"""Start one step's process: on this machine (:class:`SubprocessRunner`) or in the project image
(:class:`DockerRunner`). Each runner builds its command line with a pure method, then runs it with stdout and
stderr going to the step's log file. No shell: the argv list is passed as is.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..argv import STEP_COMMAND
from ..runtime.hosts import HOSTS_FILE_ENV

# Set in every step: telemetry and prompts must never block a step.
QUIET_ENV = {"KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1", "PYTHONUNBUFFERED": "1"}
# Passed by name into containers (``-e NAME``: the value never appears on the docker command line).
PASSTHROUGH_PREFIXES = ("KEDRO_CONFIG_", "AWS_")  # AWS_*: an s3:// (MinIO) root of a Kubeflow target
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


KILL_GRACE = 3.0  # seconds between SIGTERM and SIGKILL when run-local stops its steps


class _ProcessTracker:
    """Starts each step in its own session (process group) and can stop them all, children included.

    A step's whole group is signalled, so processes a step started die with it; whatever is left in the
    group when the step's main process exits is killed too (on Vertex the container would end them).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen[bytes]] = set()
        self._stopping = False

    def run(self, argv: Sequence[str], log: Path, env: Mapping[str, str], cwd: Path | None) -> int:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            with self._lock:
                if self._stopping:
                    raise RuntimeError("run-local is stopping")
                proc = subprocess.Popen(
                    list(argv),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=dict(env),
                    cwd=cwd,
                    start_new_session=True,  # run-local, not the terminal, decides when steps stop
                )
                self._live.add(proc)
            try:
                return proc.wait()
            finally:
                _signal_group(proc.pid, signal.SIGKILL)  # leftovers of a step die with it
                with self._lock:
                    self._live.discard(proc)

    def terminate(self, grace: float = KILL_GRACE) -> None:
        """SIGTERM every step's group now, SIGKILL what is left after ``grace``; start nothing new."""
        with self._lock:
            self._stopping = True
            live = list(self._live)
        for proc in live:
            _signal_group(proc.pid, signal.SIGTERM)
        if live:
            timer = threading.Timer(grace, self._kill, args=(live,))
            timer.daemon = True
            timer.start()

    def _kill(self, procs: Sequence[subprocess.Popen[bytes]]) -> None:
        for proc in procs:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pid: int, signum: int) -> None:
    """Signal the process group ``pid`` leads (gone already is fine)."""
    if os.name != "posix":
        return
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


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

    def close(self) -> None:
        """Nothing outlives a run here; the preloading runner stops its fork server."""


# Read by the interpreter or by libraries while they import: a step whose value differs from the fork
# server's would not start as a fresh process would, so it gets one.
# No fork on Windows; on macOS forking after system frameworks loaded can crash (CPython's own
# multiprocessing stopped forking there): plain subprocesses on both.
FORK_IS_SAFE = sys.platform.startswith("linux")
IMPORT_TIME_ENV_PREFIXES = ("PYTHON", "KEDRO_LOGGING", "OPENBLAS", "OMP_", "MKL_", "LD_", "NUMEXPR")


class PreloadedSubprocessRunner(SubprocessRunner):
    """Like :class:`SubprocessRunner`, but ``kedro-vertex-ci step`` steps are forked from a warm server.

    Same argv, env, cwd and log file, one process per step; only interpreter start and library imports are
    shared (``local/zygote.py``). Any other command, or a step whose import-time env differs, runs as a
    plain subprocess.
    """

    def __init__(self, project: Path, base_env: Mapping[str, str] | None = None):
        super().__init__(project, base_env)
        self._zygote: _Zygote | None = None
        self._start_lock = threading.Lock()
        self._closed = False

    def uses_zygote(self, inv: Invocation) -> bool:
        return (
            FORK_IS_SAFE
            and tuple(inv.command) == STEP_COMMAND
            and _import_time(self.environment(inv)) == _import_time(self._server_env())
        )

    def _server_env(self) -> dict[str, str]:
        return self.environment(Invocation(task="", image="", command=(), args=()))

    def run(self, inv: Invocation, log: Path) -> int:
        if not self.uses_zygote(inv):
            return super().run(inv, log)
        zygote = self._ensure_zygote()
        try:
            zygote.wait_ready()
        except RuntimeError:  # the server could not import the runtime: the step will say why itself
            return super().run(inv, log)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"")  # truncated, as the plain runner's open(log, "wb")
        return zygote.run(self.argv(inv), self.environment(inv), self.project, log)

    def start(self) -> None:
        """Start the server now (it imports in the background), e.g. while the project compiles."""
        self._ensure_zygote()

    def _ensure_zygote(self) -> _Zygote:
        with self._start_lock:
            if self._closed:
                raise RuntimeError("the run is over")
            if self._zygote is None:
                self._zygote = _Zygote(self._server_env(), self.project)
            return self._zygote

    def terminate(self) -> None:
        super().terminate()
        if self._zygote is not None:
            self._zygote.kill_all()

    def close(self) -> None:
        with self._start_lock:
            self._closed = True
            zygote, self._zygote = self._zygote, None
        if zygote is not None:
            zygote.stop()


def _import_time(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_ENV_PREFIXES)}


class _Zygote:
    """Client side of the fork server: worker threads send requests, one reader thread hands out replies."""

    def __init__(self, env: Mapping[str, str], cwd: Path):
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "kedro_vertex_ci.local.zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,  # the terminal's Ctrl-C goes to run-local, which stops the steps
        )
        self._write_lock = threading.Lock()  # requests are written whole, one at a time
        self._lock = threading.Lock()  # the waiting table, shared with the reader thread
        self._stopping = False
        self._waiting: dict[str, _Reply] = {}
        self._ids = itertools.count(1)
        self._ready = _Reply()
        self._reader = threading.Thread(target=self._read, name="kvc-zygote-reader", daemon=True)
        self._reader.start()

    def wait_ready(self) -> None:
        """Block until the imports are done; RuntimeError if the server could not start."""
        self._ready.wait_for("ready")

    def run(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path) -> int:
        rid = str(next(self._ids))
        reply = _Reply()
        request = {"id": rid, "argv": list(argv), "env": dict(env), "cwd": str(cwd), "log_path": str(log)}
        with self._write_lock:
            if self._stopping:
                raise RuntimeError("run-local is stopping")
            with self._lock:
                self._waiting[rid] = reply
            try:
                self._write(request)
            except BaseException:
                with self._lock:
                    self._waiting.pop(rid, None)
                raise
        try:
            return int(str(reply.wait_for("exit_code")))
        finally:
            with self._lock:
                self._waiting.pop(rid, None)

    def kill_all(self) -> None:
        """Stop every running step (its whole process group) and start no new one."""
        with self._write_lock:
            self._stopping = True
            with self._lock:
                ids = list(self._waiting)
            for rid in ids:
                self._write({"kill": rid})

    def stop(self) -> None:
        """Close its input: the server stops what still runs and exits (killed if still importing)."""
        if not self._ready.has("ready"):  # no step can have started: do not wait for the imports
            self._proc.kill()
        with self._write_lock:
            if self._proc.stdin and not self._proc.stdin.closed:
                try:
                    self._proc.stdin.close()
                except OSError:
                    pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=5)

    def _write(self, message: Mapping[str, object]) -> None:
        """Send one request; the caller holds the write lock."""
        stdin = self._proc.stdin
        if stdin is None or stdin.closed:
            raise RuntimeError("the preload server is stopped")
        try:
            stdin.write((json.dumps(message) + "\n").encode())
            stdin.flush()
        except OSError as err:
            raise RuntimeError(f"the preload server stopped ({err})") from err

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            message = json.loads(line)
            if "ready" in message or "fatal" in message:
                self._ready.put(message)
                continue
            with self._lock:
                reply = self._waiting.get(str(message.get("id")))
            if reply is not None:
                reply.put(message)
        gone = {"error": f"the preload server exited (code {self._proc.wait()})"}
        self._ready.put(gone)
        with self._lock:
            waiting = list(self._waiting.values())
        for reply in waiting:
            reply.put(gone)


class _Reply:
    """Messages for one request, waited for by one worker thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._messages: list[Mapping[str, object]] = []

    def put(self, message: Mapping[str, object]) -> None:
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()

    def has(self, key: str) -> bool:
        with self._cond:
            return any(key in message for message in self._messages)

    def wait_for(self, key: str) -> object:
        """The value of ``key`` once a message carries it; RuntimeError on an error message."""
        with self._cond:
            while True:
                for message in self._messages:
                    if key in message:
                        return message[key]
                    if "error" in message or "fatal" in message:
                        raise RuntimeError(str(message.get("error") or message.get("fatal")))
                self._cond.wait()


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
        self._names: set[str] = set()
        self._names_lock = threading.Lock()

    def argv(self, inv: Invocation, name: str | None = None) -> list[str]:
        """The full ``docker run`` command line for one step (``name``: the container's name)."""
        argv = [self.docker, "run", "--rm", "--network", "host"]
        if name:
            argv += ["--name", name]
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
        name = f"kvc-{_container_safe(inv.task)}-{uuid.uuid4().hex[:8]}"
        with self._names_lock:
            self._names.add(name)
        try:
            return self._tracker.run(self.argv(inv, name), log, self.base_env, None)
        finally:
            with self._names_lock:
                self._names.discard(name)

    def terminate(self) -> None:
        """SIGTERM the ``docker run`` clients (they pass it to the containers), then remove what is left.

        The client's death alone would leave its container running, so containers are named and removed
        with ``docker rm -f`` after the grace period.
        """
        self._tracker.terminate()
        with self._names_lock:
            names = sorted(self._names)
        if names:
            timer = threading.Timer(KILL_GRACE, self._remove, args=(names,))
            timer.daemon = False  # run-local waits for it: no container may outlive the run
            timer.start()

    def _remove(self, names: Sequence[str]) -> None:
        """``docker rm -f`` every container this run started before the stop (gone ones are no error).

        Not only those whose client still runs: the client is SIGKILLed after the same grace, and its
        container keeps running without it.
        """
        if names:
            subprocess.run(
                [self.docker, "rm", "-f", *names],
                capture_output=True,
                timeout=60,
                env=self.base_env,
                check=False,
            )


def _container_safe(task: str) -> str:
    return "".join(c if c.isalnum() or c in "_.-" else "-" for c in task)[:40] or "step"


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
    if "://" not in (pipeline_root or ""):
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
