"""Step start overhead: ``kedro-vertex-ci step`` on a one-node step vs a bare ``kedro run --nodes X``.

Creates a throwaway project with ``kedro new`` (offline), then times whole processes (fork to exit, median
and min of --repeat rounds after a warm-up; the commands alternate within each round so that load changes
on the machine hit them alike) in the same project and environment:

- floor: ``kedro run --nodes make`` (its output is a free MemoryDataset, nothing is written);
- ``kedro-vertex-ci step --node make`` with no intermediate output (pure runtime overhead);
- the same with ``--write numbers`` (the step also writes its output under the pipeline root);
- ``kedro-vertex-ci step --node total`` reading that intermediate back (bare ``kedro run --nodes total``
  cannot run at all: its input is an empty MemoryDataset in a fresh process).

Target (issue 3): every step row ≤ floor + 0.3 s (wall median). CPU time (user + sys of the process) is
printed too: on a loaded machine it shows the overhead more steadily than wall time. Prints a markdown table.
Usage: python bench/step_start.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
BUDGET = 0.3

NODES = """
def make(n):
    return list(range(n))


def total(numbers):
    return sum(numbers)
"""

PIPELINES = """
from kedro.pipeline import Pipeline, node

from .nodes import make, total


def register_pipelines():
    return {
        "__default__": Pipeline(
            [node(make, "params:n", "numbers", name="make"), node(total, "numbers", "sum", name="total")]
        )
    }
"""

SETTINGS = """
# kedro-mlflow may be installed next to us; its hooks need an MLflow store this project does not have.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow",)
"""


def make_project(parent: Path) -> Path:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    subprocess.run(
        [
            str(BIN / "kedro"),
            "new",
            "--name",
            "stepbench",
            "--tools",
            "none",
            "--example",
            "n",
            "--telemetry",
            "no",
        ],
        cwd=parent,
        env=env,
        check=True,
        capture_output=True,
    )
    project = parent / "stepbench"
    package = project / "src" / "stepbench"
    (package / "nodes.py").write_text(NODES)
    (package / "pipeline_registry.py").write_text(PIPELINES)
    (package / "settings.py").write_text(SETTINGS)
    (project / "conf" / "base" / "parameters.yml").write_text("n: 1000\n")
    return project


def run_once(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall time and CPU time (user + sys of the child) of one whole process."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def time_round_robin(cases: list[list[str]], cwd: Path, repeat: int) -> list[list[tuple[float, float]]]:
    """Samples per case; cases alternate within each round so load drift hits them all alike."""
    for cmd in cases:  # warm-up (pyc, page cache; also writes the intermediate the read case needs)
        run_once(cmd, cwd)
    samples: list[list[tuple[float, float]]] = [[] for _ in cases]
    for _ in range(repeat):
        for index, cmd in enumerate(cases):
            samples[index].append(run_once(cmd, cwd))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        project = make_project(Path(work))
        root = str(Path(work) / "root")
        step = [
            str(BIN / "kedro-vertex-ci"),
            "step",
            "--run-id",
            "bench",
            "--job-name",
            "bench",
            "--root",
            root,
        ]
        cases = [
            ("floor: `kedro run --nodes make`", [str(BIN / "kedro"), "run", "--nodes", "make"]),
            ("`kedro-vertex-ci step --node make`", [*step, "--node", "make"]),
            ("`… step --node make --write numbers`", [*step, "--node", "make", "--write", "numbers"]),
            ("`… step --node total --read numbers`", [*step, "--node", "total", "--read", "numbers"]),
        ]
        samples = time_round_robin([cmd for _, cmd in cases], project, args.repeat)
        results = [(label, runs) for (label, _), runs in zip(cases, samples, strict=True)]
    floor = statistics.median(wall for wall, _ in results[0][1])
    floor_cpu = statistics.median(cpu for _, cpu in results[0][1])
    print(
        f"Step start, whole process, {args.repeat} rounds, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}\n"
    )
    print(
        f"| command | wall median s | wall min s | wall − floor | CPU median s | CPU − floor | ≤ floor + {BUDGET} s |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for index, (label, runs) in enumerate(results):
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        if index == 0:
            print(f"| {label} | {wall:.2f} | {min(w for w, _ in runs):.2f} |  | {cpu:.2f} |  |  |")
            continue
        verdict = "yes" if wall - floor <= BUDGET else "NO"
        print(
            f"| {label} | {wall:.2f} | {min(w for w, _ in runs):.2f} | {wall - floor:+.2f} | {cpu:.2f} "
            f"| {cpu - floor_cpu:+.2f} | {verdict} |"
        )


if __name__ == "__main__":
    main()
