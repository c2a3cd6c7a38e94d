"""``run-local --runner docker`` on the bundled example, in its offline-built image, end to end.

The docker client the runner calls is a thin recorder in front of the real one (each call's argv appended
to a file, then exec): the containers really run on the private engine, and the test can read the exact
``docker run`` lines, e.g. the CPU and memory limits the spec asked for.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import EXAMPLE, Built, tail

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BIN = Path(sys.executable).parent
OUTPUTS = (
    "data/01_raw/companies.csv",
    "data/03_primary/model_input_table.parquet",
    "data/06_models/regressor.pickle",
    "data/08_reporting/metrics.json",
    "data/08_reporting/fleet_report.csv",
    "data/08_reporting/capacity_prices.csv",
)
INTERMEDIATES = ("X_test", "y_test", "fleet_summary")  # not in the catalog: files under the root
GIB = 2**30
RECORDER = """#!/bin/bash
# Record this call (arguments separated by \\037, one call per line), then run the real client. The line is
# built first and appended in one write: steps start in parallel, and per-argument appends interleaved.
sep=$(printf '\\037'); line=""
for arg in "$@"; do line+="$arg$sep"; done
printf '%s\\n' "$line" >>"$KVC_TEST_DOCKER_CALLS"
exec {real} "$@"
"""


def _recorded_runs(calls: Path) -> list[list[str]]:
    runs = [line.split("\x1f")[:-1] for line in calls.read_text().splitlines()]
    return [argv for argv in runs if argv[:1] == ["run"]]


def _flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def _nodes(argv: list[str]) -> set[str]:
    return {argv[i + 1] for i, arg in enumerate(argv) if arg == "--node"}


@pytest.fixture(scope="module")
def docker_run(docker_env: dict[str, str], example_image: Built, tmp_path_factory) -> tuple[Path, dict, list]:
    """(project copy, run-local --json result, recorded docker run argvs)."""
    work = tmp_path_factory.mktemp("docker-run-local")
    project = work / "spaceflights_lite"
    ignore = shutil.ignore_patterns("data", ".kedro-vertex-ci", "*.egg-info", "__pycache__", "pipeline.json")
    shutil.copytree(EXAMPLE, project, ignore=ignore)
    config = project / "conf" / "base" / "vertexai.yml"  # one step per node: data must cross containers
    config.write_text(config.read_text().replace("    cls: auto\n", "    cls: identity\n", 1))
    recorder_bin, calls = work / "bin", work / "docker-calls.txt"
    recorder_bin.mkdir()
    real = shutil.which("docker", path=docker_env["PATH"])
    assert real, "the docker CLI is part of the test environment (make test installs docker.io)"
    (recorder_bin / "docker").write_text(RECORDER.format(real=real))
    (recorder_bin / "docker").chmod(0o755)
    env = {
        **docker_env,
        "PATH": os.pathsep.join((str(recorder_bin), str(BIN), docker_env["PATH"])),
        "KVC_TEST_DOCKER_CALLS": str(calls),
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }
    argv = [str(BIN / "kedro-vertex-ci"), "run-local", "--runner", "docker", "--image", example_image.tag]
    argv += ["--json", "--run-id", "in-docker"]
    proc = subprocess.run(
        argv, cwd=project, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert proc.returncode == 0, tail(proc.stdout, 5000) + tail(proc.stderr)
    return project, json.loads(proc.stdout), _recorded_runs(calls)


def test_every_step_ran_in_a_container_of_the_image(docker_run, example_image: Built):
    _, result, runs = docker_run
    assert result["runner"] == "docker" and result["state"] == "succeeded"
    steps = result["steps"]
    assert len(steps) >= 8 and all(s["state"] == "done" for s in steps)
    assert len(runs) == len(steps)
    for argv in runs:
        assert "--rm" in argv and _flag(argv, "--network") == "host"
        assert example_image.tag in argv
        assert argv[argv.index(example_image.tag) + 1 : argv.index(example_image.tag) + 2] == ["step"]


def test_outputs_and_intermediates_crossed_containers_through_the_mounts(docker_run):
    project, result, runs = docker_run
    for output in OUTPUTS:
        assert (project / output).is_file(), output
    metrics = json.loads((project / "data/08_reporting/metrics.json").read_text())
    assert metrics["r2"] > 0.8  # the model trained inside a container learned the generated price
    root = Path(result["pipeline_root"])
    written = {p.stem for p in (root / "kedro-vertex-ci" / "in-docker").iterdir()}
    assert set(INTERMEDIATES) <= written, written
    assert all(f"{root}:{root}" in argv for argv in runs)  # the root at the same path inside and out


def test_cpu_and_memory_limits_of_the_spec_reach_docker_run(docker_run):
    """vertexai.yml: __default__ 1 CPU / 2Gi, tag reporting 500m / 1Gi, train_model 2 CPUs / 4Gi."""
    _, _, runs = docker_run
    by_nodes = {frozenset(_nodes(argv)): argv for argv in runs}
    train = next(argv for nodes, argv in by_nodes.items() if "train_model" in nodes)
    host_cpus = os.cpu_count() or 1
    assert _flag(train, "--cpus") == f"{min(2.0, host_cpus):g}"  # capped at the host's cores
    assert _flag(train, "--memory") == str(4 * GIB)
    report = next(argv for nodes, argv in by_nodes.items() if "format_fleet_report" in nodes)
    assert (_flag(report, "--cpus"), _flag(report, "--memory")) == ("0.5", str(GIB))
    generate = next(argv for nodes, argv in by_nodes.items() if "generate_companies" in nodes)
    assert (_flag(generate, "--cpus"), _flag(generate, "--memory")) == ("1", str(2 * GIB))
