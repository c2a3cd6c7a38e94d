"""A warm fork server for ``run-local``: import the step runtime's libraries once, fork one child per step.

Most of a local step is interpreter start and imports (Kedro, pandas, this package), about a second each.
This process pays that once per run and forks a child for every ``kedro-vertex-ci step`` the run starts. The
child becomes what the plain subprocess would have been: its own session, the step's cwd and exact env,
stdin from /dev/null, stdout and stderr appended to the step's log, default signal handlers; then it runs
:func:`kedro_vertex_ci.runtime.main.main` with the step's argv and exits with its code.

Only libraries are imported before forking, never the user's project package or settings (a bootstrapped
project would leak into every step). The server is single-threaded on purpose: forking a process that runs
Python threads is unsafe.

Protocol, JSON lines: requests on stdin, replies on the original stdout (fd 1 is pointed at stderr so a
stray print from an import cannot corrupt it)::

    {"id": "7", "argv": ["kedro-vertex-ci", "step", ...], "env": {...}, "cwd": "/p", "log_path": "/p/x.log"}
    -> {"id": "7", "pid": 1234}        then  {"id": "7", "exit_code": 0}
    {"kill": "7"}                      SIGTERM to the child's process group, SIGKILL if it lingers
    -> {"ready": true}                 once, after the imports; {"id": ..., "error": "..."} if a fork fails

The server exits when stdin closes, stopping its children first.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import re
import selectors
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Imported before forking. Third-party ones only when installed; the project's own code never.
# Every module a step imports after the fork that is not the project's: left out, each costs every step again
# (pydantic.main alone, which kedro.validation reaches through ``pydantic.BaseModel``, ~0.1 s CPU per step).
CORE_MODULES = (
    "kedro_vertex_ci.runtime.main",
    "kedro_vertex_ci.runtime.session",
    "kedro_vertex_ci.runtime.resolvers",
    "kedro_vertex_ci.runtime.intermediate",
    "kedro_vertex_ci.runtime.timing",
    "kedro_vertex_ci.argv",
    "kedro_vertex_ci.dynamic_config",
    "kedro.framework.session",
    "kedro.framework.session.store",
    "kedro.framework.project",
    "kedro.framework.context",
    "kedro.config",
    "kedro.io",
    "kedro.validation",
    "fsspec.implementations.local",
    "omegaconf",
    "pydantic",
    "pydantic.main",
    "cloudpickle",
    "kedro_vertex_ci.runtime.zstdio",  # the zstd binding (backports.zstd before Python 3.14)
)
OPTIONAL_MODULES = (
    "numpy",
    "pandas",
    "kedro_datasets",
    "kedro_datasets.pandas",
    "kedro_datasets.json",
    "kedro_datasets.pickle",
    "kedro_telemetry.plugin",  # loaded by every step when installed (even with telemetry off)
    "requests",
)
# Heavy libraries known to import without side effects that break a fork (no Python threads; their native
# pools have fork handlers). Preloaded only as far as the project's source imports them.
PROJECT_LIBRARIES = ("numpy", "pandas", "pyarrow", "scipy", "sklearn", "kedro_datasets")
_IMPORT_RE = re.compile(
    r"^[ \t]*(?:from|import)[ \t]+((?:" + "|".join(PROJECT_LIBRARIES) + r")(?:\.[A-Za-z_]\w*)*)\b", re.M
)
MAX_SOURCE_BYTES = 2**20  # a generated or vendored giant is not worth reading for this
KILL_GRACE = 3.0  # seconds between SIGTERM and SIGKILL
# Signals a fresh interpreter does not leave at SIG_DFL (Python sets these at start-up).
_PYTHON_DEFAULTS: dict[str, Any] = {
    "SIGINT": signal.default_int_handler,
    "SIGPIPE": signal.SIG_IGN,
    "SIGXFSZ": signal.SIG_IGN,
}


def project_libraries(project: Path) -> list[str]:
    """The modules of :data:`PROJECT_LIBRARIES` the project's ``src`` imports (read as text, never run)."""
    found: set[str] = set()
    for path in sorted((project / "src").rglob("*.py")):
        try:
            if path.stat().st_size <= MAX_SOURCE_BYTES:
                found.update(_IMPORT_RE.findall(path.read_text(encoding="utf-8", errors="replace")))
        except OSError:
            continue
    return sorted(found)


def preload(project: Path | None = None) -> list[str]:
    """Import the step runtime's libraries; the names of the optional ones imported."""
    wanted = [*OPTIONAL_MODULES, *(project_libraries(project) if project else [])]
    with _framework_logging():
        for name in CORE_MODULES:
            importlib.import_module(name)
        found = []
        for name in dict.fromkeys(wanted):
            if importlib.util.find_spec(name.partition(".")[0]) is None:
                continue
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001, S112 - a library that fails to import is simply not preloaded
                continue
            found.append(name)
    if threading.active_count() > 1:
        raise RuntimeError(f"an import started Python threads ({threading.enumerate()}): forking is unsafe")
    _map_modules_to_files()
    return found


def _map_modules_to_files() -> None:
    """Fill :mod:`inspect`'s module-by-file cache for every module imported so far, once, before forking.

    Every Kedro start loads ``settings.py`` through dynaconf, which calls ``inspect.stack()``; its first call
    in a process walks all of ``sys.modules`` to map files to modules (~0.08 s CPU with Kedro imported).
    Forked steps inherit the map; ``inspect`` still adds the modules a step imports later by itself.
    """
    import inspect

    inspect.getmodule(inspect.currentframe())


@contextlib.contextmanager
def _framework_logging() -> Any:
    """Kedro configures logging on import from the project's conf/logging: use its own default instead.

    Each child configures logging again from its own env and cwd (:func:`_fresh_logging`).
    """
    spec = importlib.util.find_spec("kedro.framework.project")
    saved = os.environ.get("KEDRO_LOGGING_CONFIG")
    if spec is not None and spec.origin:
        folder = Path(spec.origin).parent
        default = folder / "rich_logging.yml"
        if importlib.util.find_spec("rich") is None or not default.is_file():
            default = folder / "default_logging.yml"
        os.environ["KEDRO_LOGGING_CONFIG"] = str(default)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("KEDRO_LOGGING_CONFIG", None)
        else:
            os.environ["KEDRO_LOGGING_CONFIG"] = saved


class Server:
    """The fork loop: requests in, pids and exit codes out; children reaped as SIGCHLD arrives."""

    def __init__(self, requests: int, replies: int):
        self.requests = requests
        self.replies = replies
        self.children: dict[int, str] = {}  # pid -> request id
        self.kill_at: dict[int, float] = {}  # pid -> when to SIGKILL
        self._buffer = b""
        self._selector: selectors.BaseSelector | None = None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)

    def serve(self) -> None:
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        selector = self._selector = selectors.DefaultSelector()
        selector.register(self.requests, selectors.EVENT_READ)
        selector.register(self._wake_r, selectors.EVENT_READ)
        self.reply({"ready": True, "pid": os.getpid()})
        open_input = True
        while open_input:
            for key, _ in selector.select(timeout=0.5):
                if key.fd == self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                elif not self._read_requests():
                    open_input = False
            self.reap()
            self._escalate()
        self.stop_all()

    def _read_requests(self) -> bool:
        chunk = os.read(self.requests, 65536)
        if not chunk:
            return False
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            if line.strip():
                self.handle(json.loads(line))
        return True

    def handle(self, request: Mapping[str, Any]) -> None:
        if "kill" in request:
            for pid, rid in self.children.items():
                if rid == str(request["kill"]):
                    self.terminate(pid)
            return
        rid = str(request["id"])
        for stream in (sys.stdout, sys.stderr):  # nothing buffered here may end up in a step's log
            stream.flush()
        try:
            pid = os.fork()
        except OSError as err:
            self.reply({"id": rid, "error": f"fork failed: {err}"})
            return
        if pid == 0:
            self._become_step(request)  # never returns
        self.children[pid] = rid
        self.reply({"id": rid, "pid": pid})

    def _become_step(self, request: Mapping[str, Any]) -> None:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            if self._selector is not None:  # its epoll fd: a fresh process has none
                self._selector.close()
            for fd in (self.requests, self.replies, self._wake_r, self._wake_w):
                os.close(fd)
            code = run_child(request)
        finally:
            os._exit(code)

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            rid = self.children.pop(pid, None)
            self.kill_at.pop(pid, None)
            if rid is not None:
                self.reply({"id": rid, "exit_code": os.waitstatus_to_exitcode(status)})

    def terminate(self, pid: int) -> None:
        _signal_group(pid, signal.SIGTERM)
        self.kill_at.setdefault(pid, time.monotonic() + KILL_GRACE)

    def _escalate(self) -> None:
        now = time.monotonic()
        for pid, when in list(self.kill_at.items()):
            if when <= now and pid in self.children:
                _signal_group(pid, signal.SIGKILL)
                del self.kill_at[pid]

    def stop_all(self) -> None:
        """Input closed: stop every child, wait for them (SIGKILL after the grace), report nothing more."""
        for pid in list(self.children):
            self.terminate(pid)
        deadline = time.monotonic() + KILL_GRACE + 2
        while self.children and time.monotonic() < deadline:
            self.reap()
            self._escalate()
            time.sleep(0.02)

    def reply(self, message: Mapping[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode()
        with contextlib.suppress(BrokenPipeError):
            while data:
                data = data[os.write(self.replies, data) :]


def _signal_group(pid: int, signum: int) -> None:
    """The child's whole process group; just the child if it has not called setsid() yet."""
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def run_child(request: Mapping[str, Any]) -> int:
    """In the forked child: become the step's process, run it, return its exit code."""
    os.setsid()
    _reset_signals()
    env = {str(k): str(v) for k, v in dict(request["env"]).items()}
    argv = [str(a) for a in request["argv"]]
    os.chdir(str(request["cwd"]))
    os.environ.clear()
    os.environ.update(env)
    _redirect(str(request["log_path"]))
    script = shutil.which(argv[0], path=env.get("PATH")) or argv[0]
    sys.argv = [script, *argv[1:]]
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # what the console script would have seen
    _reseed()
    try:
        _fresh_logging()
        from kedro_vertex_ci.runtime.main import main

        code = main(argv[2:])
    except SystemExit as exit_:
        code = _exit_code(exit_)
    except BaseException:  # noqa: BLE001 - as the interpreter would: traceback in the log, exit 1
        traceback.print_exc()
        code = 1
    return _finish(code)


def _reset_signals() -> None:
    for name in (
        "SIGCHLD",
        "SIGTERM",
        "SIGHUP",
        "SIGQUIT",
        "SIGUSR1",
        "SIGUSR2",
        "SIGALRM",
        *_PYTHON_DEFAULTS,
    ):
        signum = getattr(signal, name, None)
        if signum is not None:
            signal.signal(signum, _PYTHON_DEFAULTS.get(name, signal.SIG_DFL))


def _redirect(log_path: str) -> None:
    """stdin from /dev/null; stdout and stderr appended to the step's log (the runner created it).

    fd 0 was the server's request pipe, already closed, so /dev/null usually lands on fd 0 itself: it must
    then stay open. Closing it would let the next file the step opens (Kedro's ``info.log`` handler) take
    fd 0, and the step runtime's own stdin reset would later replace that file by /dev/null.
    """
    _point_fd(os.open(os.devnull, os.O_RDONLY), 0)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    _point_fd(log, 2)


def _point_fd(fd: int, target: int) -> None:
    """Make ``target`` refer to what ``fd`` refers to, and drop ``fd`` unless it is ``target`` already."""
    if fd != target:
        os.dup2(fd, target)
        os.close(fd)


def _reseed() -> None:
    """``random`` reseeds itself after fork; numpy's global generator does not: reseed it like a new process."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def _fresh_logging() -> None:
    """Configure logging as a fresh step process would: from this step's env and cwd, into its log."""
    rich_console = sys.modules.get("rich")
    if rich_console is not None:
        rich_console._console = None  # type: ignore[attr-defined]  # rebuilt for the log file on first use
    project = sys.modules.get("kedro.framework.project")
    if project is not None:
        project.LOGGING.__init__()


def _exit_code(exit_: SystemExit) -> int:
    if exit_.code is None or isinstance(exit_.code, int):
        return int(exit_.code or 0)
    print(exit_.code, file=sys.stderr)
    return 1


def _finish(code: int) -> int:
    """What interpreter shutdown does: wait for non-daemon threads, run atexit handlers, flush."""
    import atexit

    shutdown = getattr(threading, "_shutdown", None)
    for step in (shutdown, getattr(atexit, "_run_exitfuncs", None)):
        if step is not None:
            try:
                step()
            except BaseException:  # noqa: BLE001 - shutdown problems must not change the step's code
                traceback.print_exc()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return code


def main() -> None:
    # ``-m`` put the cwd (the project root) first on sys.path; a console script would have its own folder.
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.getcwd():
        sys.path[0] = os.path.dirname(sys.executable)
    replies = os.dup(1)
    os.dup2(2, 1)  # stray prints go to stderr, never into the replies
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # run-local decides when steps stop
    try:
        preload(Path.cwd())
    except Exception:  # noqa: BLE001 - reported to the runner, which falls back to plain processes
        os.write(replies, (json.dumps({"fatal": traceback.format_exc()}) + "\n").encode())
        sys.exit(1)
    Server(0, replies).serve()


if __name__ == "__main__":
    main()
