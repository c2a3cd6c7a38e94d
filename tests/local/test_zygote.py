"""run-local's warm fork server: steps forked from one preloaded process behave like fresh subprocesses."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kedro_vertex_ci.argv import STEP_COMMAND
from kedro_vertex_ci.local.runners import Invocation, PreloadedSubprocessRunner, SubprocessRunner
from kedro_vertex_ci.local.zygote import project_libraries
from kedro_vertex_ci.testing.projectgen import make_project, package_name_for

BIN = Path(sys.executable).parent
VERTEXAI = {"project_id": "demo-project", "region": "europe-west4", "run_config": {"image": "img:1"}}

# Nodes added to a generated project: each does one thing a step's process must own alone.
_NODES = '''

import os
import sys
import time
from pathlib import Path


def set_env(start):
    os.environ["KVC_ZYGOTE_LEAK"] = "leaked"
    return start


def read_env(start):
    return os.environ.get("KVC_ZYGOTE_LEAK", "clean") + "|" + os.environ.get("KVC_STEP_VAR", "")


def fail(start):
    raise ValueError("boom from a node")


def wait_for_file(start):
    """Write this process's pid, then block until the test removes the pid file (or 60 s pass)."""
    marker = Path(os.environ["KVC_PID_DIR"]) / f"{os.getpid()}.pid"
    marker.write_text(f"{os.getpid()} {os.getsid(0)}")
    deadline = time.monotonic() + 60
    while marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return os.getpid()


def identity(start):
    return {"pid": os.getpid(), "ppid": os.getppid(), "argv0": os.path.basename(sys.argv[0]), "cwd": os.getcwd(),
            "stdin": sys.stdin.read(), "fd0": os.readlink("/proc/self/fd/0"), "fds": _open_fds()}


def _open_fds():
    """fd -> what it is (file path, or pipe/socket/anon_inode without the inode number)."""
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own fd, closed already
        found[fd] = target.split(":")[0] if ":" in target and not target.startswith("/") else target
    return found
'''

_PIPELINE = '''"""Hand-written nodes for the zygote tests."""

from kedro.pipeline import Pipeline, node

from .nodes import fail, identity, read_env, set_env, source, wait_for_file


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(source, "params:start", "ds_0", name="node_0"),
            node(set_env, "params:start", "set_out", name="set_env"),
            node(read_env, "params:start", "env_seen", name="read_env"),
            node(fail, "params:start", "never", name="fail"),
            node(wait_for_file, "params:start", "waited", name="wait_a"),
            node(wait_for_file, "params:start", "waited_b", name="wait_b"),
            node(identity, "params:start", "identity", name="identity"),
        ]
    )
'''


def _env() -> dict[str, str]:
    env = dict(os.environ, KEDRO_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1")
    env["PATH"] = os.pathsep.join((str(BIN), env.get("PATH", "")))
    env["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
    return env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    catalog = {
        name: {"type": "json.JSONDataset", "filepath": f"data/{name}.json"}
        for name in ("env_seen", "identity", "waited", "waited_b")
    }
    root = make_project(tmp_path, "zygote_demo", "chain", 1, vertexai=VERTEXAI, catalog=catalog)
    src = root / "src" / package_name_for("zygote_demo")
    (src / "nodes.py").write_text((src / "nodes.py").read_text() + _NODES)
    (src / "pipeline.py").write_text(_PIPELINE)
    (root / "pids").mkdir()
    return root


@pytest.fixture
def runner(project: Path):
    env = _env()
    env["KVC_PID_DIR"] = str(project / "pids")
    preloaded = PreloadedSubprocessRunner(project, base_env=env)
    yield preloaded
    preloaded.close()


def _step(project: Path, node: str, run_id: str = "r1", *extra: str, env=None) -> Invocation:
    args = ("--node", node, "--run-id", run_id, "--root", str(project / "root"), "--project", str(project))
    return Invocation(task=node, image="img:1", command=STEP_COMMAND, args=(*args, *extra), env=env or {})


def _log(project: Path, name: str) -> Path:
    return project / "logs" / f"{name}.log"


def _without_times(text: str) -> str:
    """Rich prints the time only when it changed: drop the column so two runs compare."""
    return re.sub(r"^(\[\d\d/\d\d/\d\d \d\d:\d\d:\d\d\]| {19})", "", text, flags=re.M)


def test_only_the_step_command_with_the_same_import_time_env_is_forked(runner, project):
    assert runner.uses_zygote(_step(project, "node_0"))
    other = Invocation(task="x", image="i", command=("python", "-c", "pass"), args=())
    assert not runner.uses_zygote(other)
    assert not runner.uses_zygote(_step(project, "node_0", env={"KEDRO_LOGGING_CONFIG": "/x.yml"}))


def test_a_forked_step_writes_the_same_outputs_and_log_as_a_plain_subprocess(runner, project):
    plain = SubprocessRunner(project, base_env=runner.base_env)
    assert plain.run(_step(project, "read_env", "plain"), _log(project, "plain")) == 0
    plain_output = json.loads((project / "data" / "env_seen.json").read_text())
    (project / "data" / "env_seen.json").unlink()

    assert runner.run(_step(project, "read_env", "forked"), _log(project, "forked")) == 0
    assert json.loads((project / "data" / "env_seen.json").read_text()) == plain_output == "clean|"
    plain_log = _without_times(_log(project, "plain").read_text())
    forked_log = _without_times(_log(project, "forked").read_text())
    assert "read_env" in plain_log
    assert forked_log == plain_log


def test_the_forked_child_is_a_fresh_step_process(runner, project):
    assert runner.run(_step(project, "identity"), _log(project, "identity")) == 0
    seen = json.loads((project / "data" / "identity.json").read_text())
    assert seen["argv0"] == "kedro-vertex-ci"
    assert seen["cwd"] == str(project)
    assert seen["stdin"] == ""  # /dev/null, never the server's request pipe
    assert seen["pid"] != os.getpid() and seen["pid"] != runner._zygote._proc.pid  # type: ignore[union-attr]


# A `kedro new` project's logging (Kedro <= 0.19 starters ship it): a file handler opened when logging is
# configured, i.e. while the step starts, before any node runs.
_FILE_LOGGING = """
version: 1
disable_existing_loggers: False
formatters:
  simple:
    format: "%(name)s - %(levelname)s - %(message)s"
handlers:
  console:
    class: logging.StreamHandler
    formatter: simple
    stream: ext://sys.stdout
  info_file_handler:
    class: logging.handlers.RotatingFileHandler
    level: INFO
    formatter: simple
    filename: info.log
    maxBytes: 10485760
    backupCount: 20
    encoding: utf8
    delay: False
loggers:
  kedro:
    level: INFO
root:
  handlers: [console, info_file_handler]
"""


@pytest.mark.parametrize("forked", [True, False], ids=["forked", "plain"])
def test_a_step_keeps_the_projects_file_logging_intact(runner, project, forked):
    """Regression: the forked child closed fd 0, Kedro's info.log handler got fd 0, and /dev/null was then
    dup2()ed over it: 'Logging error … Bad file descriptor' in every log, one line per step in info.log."""
    (project / "conf" / "logging.yml").write_text(_FILE_LOGGING)
    chosen = runner if forked else SubprocessRunner(project, base_env=runner.base_env)
    assert chosen.run(_step(project, "identity"), _log(project, "identity")) == 0
    log = _log(project, "identity").read_text()
    assert "Logging error" not in log and "Bad file descriptor" not in log, log
    info = (project / "info.log").read_text()
    assert "Running node: identity" in info and "Completed 1 out of 1 tasks" in info, info
    console = [line for line in log.splitlines() if line.startswith("kedro.")]
    assert len(info.splitlines()) == len(console)  # every record the console got, the file got too
    assert json.loads((project / "data" / "identity.json").read_text())["fd0"] == os.devnull


def test_a_forked_step_has_the_open_files_of_a_fresh_one(runner, project):
    """Nothing of the fork server (request pipe, reply pipe, wake-up pipe, selector) leaks into a step."""
    plain = SubprocessRunner(project, base_env=runner.base_env)
    assert plain.run(_step(project, "identity", "plain"), _log(project, "plain")) == 0
    fresh = json.loads((project / "data" / "identity.json").read_text())["fds"]
    assert runner.run(_step(project, "identity", "forked"), _log(project, "forked")) == 0
    forked = json.loads((project / "data" / "identity.json").read_text())["fds"]
    fresh = {fd: target.replace("plain.log", "<step>.log") for fd, target in fresh.items()}
    forked = {fd: target.replace("forked.log", "<step>.log") for fd, target in forked.items()}
    assert forked == fresh


def test_exit_codes_0_1_2_and_124_propagate(runner, project):
    assert runner.run(_step(project, "node_0"), _log(project, "ok")) == 0
    assert runner.run(_step(project, "fail"), _log(project, "fail")) == 1
    assert "boom from a node" in _log(project, "fail").read_text()
    assert runner.run(_step(project, "no_such_node"), _log(project, "bad")) == 2
    assert "no_such_node" in _log(project, "bad").read_text()
    (project / "pids-2").mkdir()  # nobody removes its marker here: the node waits until the timeout
    timed = _step(project, "wait_a", "r1", "--timeout", "1", env={"KVC_PID_DIR": str(project / "pids-2")})
    begin = time.monotonic()
    assert runner.run(timed, _log(project, "timeout")) == 124  # signal.alarm works in the forked child
    assert time.monotonic() - begin < 15
    assert "timed out" in _log(project, "timeout").read_text()


def test_a_node_changing_os_environ_does_not_leak_into_the_next_step(runner, project):
    assert runner.run(_step(project, "set_env"), _log(project, "set")) == 0
    assert runner.run(_step(project, "read_env", env={"KVC_STEP_VAR": "mine"}), _log(project, "read")) == 0
    assert json.loads((project / "data" / "env_seen.json").read_text()) == "clean|mine"
    assert "KVC_STEP_VAR" not in os.environ


def _wait_for_pids(folder: Path, count: int, timeout: float = 60) -> dict[int, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {}
        for marker in folder.glob("*.pid"):
            text = marker.read_text().split()
            if len(text) == 2:
                found[int(text[0])] = int(text[1])
        if len(found) >= count:
            return found
        time.sleep(0.02)
    pytest.fail(f"only {len(list(folder.glob('*.pid')))} of {count} steps started")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_steps_run_at_once_in_their_own_forked_processes(runner, project):
    codes: dict[str, int] = {}

    def run(node: str) -> None:
        codes[node] = runner.run(_step(project, node), _log(project, node))

    threads = [threading.Thread(target=run, args=(n,)) for n in ("wait_a", "wait_b")]
    for thread in threads:
        thread.start()
    pids = _wait_for_pids(project / "pids", 2)  # both are blocked at the same time
    assert len(pids) == 2
    assert all(sid == pid for pid, sid in pids.items())  # each leads its own session
    for marker in (project / "pids").glob("*.pid"):
        marker.unlink()
    for thread in threads:
        thread.join(timeout=60)
    assert codes == {"wait_a": 0, "wait_b": 0}
    waited = json.loads((project / "data" / "waited.json").read_text())
    waited_b = json.loads((project / "data" / "waited_b.json").read_text())
    assert {waited, waited_b} == set(pids)


def test_terminate_kills_the_forked_steps(runner, project):
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(runner.run(_step(project, "wait_a"), _log(project, "k")))
    )
    thread.start()
    (pid,) = _wait_for_pids(project / "pids", 1)
    runner.terminate()
    thread.join(timeout=20)
    assert codes == [-signal.SIGTERM]
    assert not _alive(pid)


def test_closing_the_runner_stops_the_server_and_its_children(runner, project):
    thread = threading.Thread(target=lambda: runner.run(_step(project, "wait_a"), _log(project, "c")))
    thread.start()
    (pid,) = _wait_for_pids(project / "pids", 1)
    server = runner._zygote._proc  # type: ignore[union-attr]
    runner.close()
    thread.join(timeout=20)
    assert server.poll() is not None
    assert not _alive(pid)


def _run_local(project: Path, *extra: str, **popen) -> subprocess.Popen[str]:
    argv = [str(BIN / "kedro-vertex-ci"), "run-local", "--json", *extra]
    env = _env()
    env["KVC_PID_DIR"] = str(project / "pids")
    popen.setdefault("preexec_fn", lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # not inherited SIG_IGN
    return subprocess.Popen(argv, cwd=project, env=env, text=True, stdout=subprocess.PIPE, **popen)


@pytest.mark.parametrize("preload", [True, False])
def test_run_local_gives_the_same_result_with_and_without_preload(project, preload):
    flag = "--preload" if preload else "--no-preload"
    proc = _run_local(project, "--run-id", "same", flag, "--to-nodes", "read_env,identity,node_0")
    out, _ = proc.communicate(timeout=180)
    result = json.loads(out)
    assert proc.returncode == 0, out
    assert {s["name"]: s["state"] for s in result["steps"] if s["selected"]} == {
        "node-0": "done",
        "read-env": "done",
        "identity": "done",
    }
    assert json.loads((project / "data" / "env_seen.json").read_text()) == "clean|"
    seen = json.loads((project / "data" / "identity.json").read_text())
    assert seen["argv0"] == "kedro-vertex-ci"
    assert (seen["ppid"] != proc.pid) is preload  # forked by the server, or started by run-local itself


def test_ctrl_c_on_run_local_kills_the_forked_steps(project):
    proc = _run_local(project, "--to-nodes", "wait_a,wait_b", stderr=subprocess.PIPE)
    pids = _wait_for_pids(project / "pids", 2, timeout=120)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids), "a forked step outlived run-local"


def test_only_known_libraries_the_project_source_imports_are_preloaded(tmp_path):
    src = tmp_path / "src" / "pkg"
    src.mkdir(parents=True)
    (src / "nodes.py").write_text(
        "import numpy as np\n"
        "import pkg.settings\n"
        "# import scipy  (a comment, not an import)\n"
        "def train():\n"
        "    from sklearn.ensemble import RandomForestRegressor\n"
        "    import torch\n"
    )
    assert project_libraries(tmp_path) == ["numpy", "sklearn.ensemble"]
    assert project_libraries(tmp_path / "missing") == []


_IMPORTS_AFTER_FORK = '''
import json, os, sys
from pathlib import Path
from kedro_vertex_ci.local import zygote

zygote.preload(Path.cwd())
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read)
    before = set(sys.modules)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    zygote._fresh_logging()
    from kedro_vertex_ci.runtime.main import main

    code = main(sys.argv[1:])
    os.write(write, json.dumps([code, sorted(set(sys.modules) - before)]).encode())
    os._exit(0)
os.close(write)
chunks = []
while chunk := os.read(read, 65536):
    chunks.append(chunk)
os.waitpid(pid, 0)
print(b"".join(chunks).decode())
'''


def test_a_forked_step_imports_only_the_project_itself(tmp_path):
    """Whatever a step imports after the fork it imports again in every step (pydantic.main alone was ~0.1 s
    CPU per step): the fork server must have imported everything but the project's own package."""
    from kedro_vertex_ci.testing.featuregen import generate_cases, write_feature_project

    package = "kvc_zygote_imports"
    fp = write_feature_project(tmp_path, package, generate_cases(3, 1, package, allow_unrunnable=False))
    assert "name='c000_n0'" in fp.cases[0].code and "namespace" not in fp.cases[0].code  # seed 3's case
    argv = ["--pipeline", "__default__", "--env", "identity", "--node", "c000_n0", "--run-id", "r1",
            "--job-name", "j", "--root", str(tmp_path / "root")]
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    proc = subprocess.run([sys.executable, "-c", _IMPORTS_AFTER_FORK, *argv], cwd=fp.path, env=env,
                          capture_output=True, text=True, timeout=300)
    code, imported = json.loads(proc.stdout.strip().splitlines()[-1])
    assert code == 0
    assert [m for m in imported if m.split(".")[0] != package] == []
    assert f"{package}.settings" in imported  # the step did start the project
