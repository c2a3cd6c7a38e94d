"""P7: the GitHub Action's own overhead, and the real cost of installing a project's requirements in it.

1. Overhead, start → PR comment: the real action process (``python -P -m action``, as the container's
   entrypoint starts it) on the example project for a pull request, ``build: false``, against the loopback
   fakes (Google: STS, IAM, Vertex; GitHub: comments). Stages are read from the action's own log as it
   streams: start → compile begins (imports, inputs, event), compile, auth + run lookups (federation
   exchange, cancel superseded, "does this commit have a run"), submit, comment. Every repetition is a new
   commit, so nothing is reused and the previous repetition's run is cancelled as superseded.
2. Requirements install: a ``kedro new`` project's requirements.txt installed the way the action does it
   (``pip install -r requirements.txt -c <the action's pins>``) into an environment that already holds the
   action's packages (a venv that sees them through a .pth file), from PyPI: once with an empty pip cache
   (every job of a container action without actions/cache) and once with the wheel cache kept by the
   generated workflow's opt-in actions/cache step.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Any

from .procs import REPO, Stats, Tools, bench_env, last_lines

STAGES = (
    ("start → compile begins", "start", "compile_start"),
    ("compile", "compile_start", "compiled"),
    ("auth + run lookups", "compiled", "submit_start"),
    ("submit", "submit_start", "submitted"),
    ("comment", "submitted", "commented"),
    ("total: start → comment", "start", "commented"),
)
CPU = "CPU time of the whole action process (user + sys)"
GITHUB_TOKEN = "ghs_benchTokenNotSecret0123456789abcdefXYZ"


def _marks(lines: list[tuple[float, str]]) -> dict[str, float]:
    """Stage boundaries from the timestamped log lines of one action run."""
    marks: dict[str, float] = {"start": 0.0}
    for when, line in lines:
        if line.startswith("::group::Compile pipeline"):
            marks.setdefault("compile_start", when)
        elif line.startswith("::endgroup::") and "compile_start" in marks:
            marks.setdefault("compiled", when)
        elif line.startswith("::group::Submit the pipeline run"):
            marks.setdefault("submit_start", when)
        elif line.startswith("submitted "):
            marks.setdefault("submitted", when)
        elif line.startswith("PR #") and " comment " in line:
            marks.setdefault("commented", when)
    return marks


def run_action_once(python: Path, env: dict[str, str], cwd: Path) -> dict[str, float]:
    """One action process; its log lines timestamped as they arrive."""
    started = time.perf_counter()
    proc = subprocess.Popen([str(python), "-P", "-m", "action"], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    lines = [(time.perf_counter() - started, line.rstrip("\n")) for line in proc.stdout]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"the action exited {code}: {last_lines(chr(10).join(text for _, text in lines), 6)}")
    marks = _marks(lines)
    marks["cpu"] = usage.ru_utime + usage.ru_stime  # CPU seconds: what the wall time is on an idle machine
    missing = [name for _, _, name in STAGES if name not in marks]
    if missing:
        raise RuntimeError(f"the action's log lacks {missing}: {last_lines(chr(10).join(t for _, t in lines), 6)}")
    return marks


def measure_overhead(work: Path, tools: Tools, runs: int, example: Path) -> dict[str, Any]:
    """Stage timings (s) of ``runs`` action processes on the example, against fresh loopback fakes."""
    sys.path.insert(0, str(REPO))
    from tests.fakes.github_api import FakeGitHub
    from tests.fakes.google import OIDC_REQUEST_TOKEN, FakeGoogle

    workspace = work / "action-workspace"
    if workspace.exists():
        shutil.rmtree(workspace)
    shutil.copytree(example, workspace / example.name,
                    ignore=shutil.ignore_patterns(".kedro-vertex-ci", "__pycache__", "*.egg-info"))
    payload = json.loads((REPO / "tests" / "action" / "events" / "pull_request.json").read_text())
    google = FakeGoogle(impersonable={"deployer@bench.iam.gserviceaccount.com"}).start()
    samples: dict[str, list[float]] = {label: [] for label, _, _ in STAGES}
    samples[CPU] = []
    try:
        with FakeGitHub(GITHUB_TOKEN) as github:
            for index in range(runs):
                payload["pull_request"]["head"]["sha"] = f"{index + 1:040x}"
                event = work / "action-event.json"
                event.write_text(json.dumps(payload))
                env = bench_env({
                    "PYTHONPATH": str(REPO), "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request",
                    "GITHUB_EVENT_PATH": str(event), "GITHUB_REF": "refs/pull/17/merge", "GITHUB_SHA": "c" * 40,
                    "GITHUB_HEAD_REF": "feature/bench", "GITHUB_REPOSITORY": "acme/spaceflights",
                    "GITHUB_API_URL": github.url, "GITHUB_RUN_ID": str(1000 + index),
                    "GITHUB_WORKSPACE": str(workspace), "GITHUB_OUTPUT": str(work / "action-output"),
                    "GITHUB_STEP_SUMMARY": str(work / "action-summary.md"),
                    "ACTIONS_ID_TOKEN_REQUEST_URL": google.oidc_url,
                    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": OIDC_REQUEST_TOKEN,
                    "INPUT_GITHUB-TOKEN": GITHUB_TOKEN, "INPUT_WORKING-DIRECTORY": example.name,
                    "INPUT_REQUIREMENTS": "", "INPUT_BUILD": "false", "INPUT_PROJECT-ID": "bench-project",
                    "INPUT_WORKLOAD-IDENTITY-PROVIDER": google.provider_name,
                    "INPUT_SERVICE-ACCOUNT": "deployer@bench.iam.gserviceaccount.com",
                    "GOOGLE_CLOUD_PROJECT": "bench-project", "NO_GCE_CHECK": "True",
                    **{f"KEDRO_VERTEX_CI_{service}_ENDPOINT": google.url
                       for service in ("VERTEX", "STS", "IAMCREDENTIALS", "ARTIFACTREGISTRY")},
                })
                marks = run_action_once(tools.ours / "python", env, workspace)
                for label, begin, end in STAGES:
                    samples[label].append(marks[end] - marks[begin])
                samples[CPU].append(marks["cpu"])
    finally:
        google.stop()
    return {label: Stats(values) for label, values in samples.items()}


def kedro_new_requirements(work: Path, tools: Tools) -> Path:
    """The requirements.txt ``kedro new`` writes today (no tools, no example)."""
    folder = work / "kedro-new"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    done = subprocess.run([str(tools.ours / "kedro"), "new", "--name", "fresh", "--tools", "none", "--example", "n"],
                          cwd=folder, env=bench_env(), capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"kedro new failed: {last_lines(done.stdout + done.stderr)}")
    return folder / "fresh" / "requirements.txt"


def _environment_with_the_actions_packages(folder: Path, ours: Path) -> Path:
    """A new venv that sees the action's installed packages (as the action image has them) via a .pth file."""
    if folder.exists():
        shutil.rmtree(folder)
    venv.EnvBuilder(with_pip=True).create(folder)
    python = folder / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    theirs = subprocess.run([str(ours / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "zz-action-packages.pth").write_text(theirs + "\n")
    return python


def _pypi_only_env() -> dict[str, str]:
    """No machine-local wheel folders, mirrors or pip config: PyPI as a GitHub runner sees it."""
    env = {k: v for k, v in bench_env().items()
           if not k.startswith("PIP_") or k in ("PIP_CERT", "PIP_DEFAULT_TIMEOUT")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def measure_install(work: Path, tools: Tools) -> dict[str, Any]:
    """Wall time of the action's install of a `kedro new` requirements.txt: empty cache, then warm cache."""
    sys.path.insert(0, str(REPO))
    from action.requirements import constraints_text

    requirements = kedro_new_requirements(work, tools)
    pins = subprocess.run(
        [str(tools.ours / "python"), "-c",
         "import json, importlib.metadata as m; print(json.dumps([(d.metadata['Name'], d.version) "
         "for d in m.distributions()]))"], capture_output=True, text=True, check=True).stdout
    constraints = work / "action-constraints.txt"
    constraints.write_text(constraints_text([tuple(pair) for pair in json.loads(pins)]))
    cache = work / "pip-cache"
    if cache.exists():
        shutil.rmtree(cache)
    result: dict[str, Any] = {"requirements": requirements.read_text().split()}
    for label in ("empty pip cache (every job without actions/cache)", "warm wheel cache (opt-in actions/cache)"):
        python = _environment_with_the_actions_packages(work / "install-venv", tools.ours)
        started = time.perf_counter()
        done = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                               "--cache-dir", str(cache), "-r", str(requirements), "-c", str(constraints)],
                              env=_pypi_only_env(), capture_output=True, text=True, timeout=1800)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            result[label] = f"failed: {last_lines(done.stdout + done.stderr)}"
            break
        result[label] = Stats([seconds])
        if not _size_mb(cache):
            # pip's HTTP cache keeps only responses with cache headers (PyPI sends them); some mirrors don't.
            result["warm wheel cache (opt-in actions/cache)"] = (
                "not measured: pip cached nothing here (this machine's package index sends no cache headers), "
                "so a second install would be another cold one")
            break
    result["cache_mb"] = round(_size_mb(cache), 1)
    return result


def _size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6 if folder.exists() else 0.0


def measure_action(work: Path, tools: Tools, runs: int, example: Path | None, install: bool = True) -> Any:
    """The P7 measure for the report: stage table, install table, raw numbers."""
    from .measures import Measure, Table, _failed

    measure = Measure(
        "action",
        "9. The GitHub Action: own overhead and requirements install",
        "start → PR comment ≤ 10 s on the example (fakes, no build); the install measured, not assumed",
        notes=[
            "Overhead: the real `python -P -m action` process for a pull request with `build: false`, against "
            "the loopback fakes (no network latency: on GitHub add the round trips to Google and GitHub).",
            "Install: `pip install -r requirements.txt -c <the action's pins>` into an environment that already "
            "has the action's packages, from PyPI, with pip's local configuration ignored.",
        ],
    )
    stages = Table("Action overhead by stage (s) — min / median / max", ["stage", "time"])
    measure.tables.append(stages)
    if example is None:
        stages.rows.append(["all", "not measured (no example project in examples/)"])
    else:
        try:
            timings = measure_overhead(work, tools, runs, example)
            stages.rows += [[label, timings[label]] for label, _, _ in STAGES]
            stages.rows.append([CPU, timings[CPU]])
            measure.raw["overhead"] = {label: stats.to_json() for label, stats in timings.items()}
        except (RuntimeError, OSError, subprocess.SubprocessError) as err:
            stages.rows.append(["all", _failed(err)])
    installs = Table("Installing a `kedro new` requirements.txt in the action (s)", ["pip cache", "time"])
    measure.tables.append(installs)
    if not install:
        installs.rows.append(["both", "not measured in this run (--quick)"])
        return measure
    try:
        result = measure_install(work, tools)
    except (RuntimeError, OSError, subprocess.SubprocessError) as err:
        installs.rows.append(["both", _failed(err)])
        return measure
    measure.notes.append(f"requirements.txt of `kedro new`: {', '.join(result['requirements'])}; "
                         f"wheel cache afterwards: {result['cache_mb']} MB.")
    for label, value in result.items():
        if label not in ("requirements", "cache_mb"):
            installs.rows.append([label, value])
    measure.raw["install"] = {k: (v.to_json() if isinstance(v, Stats) else v) for k, v in result.items()}
    return measure
