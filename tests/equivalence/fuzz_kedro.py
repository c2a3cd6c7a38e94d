"""``make fuzz-kedro``: the Kedro-oracle checks of ``test_kedro_oracle.py`` on thousands of generated cases.

Usage: ``python -m tests.equivalence.fuzz_kedro [--seed S] [--cases 3000] [--runs 60] [--work DIR]``.
Step DAGs of ``--cases`` cases (projects of 200, every other one with a catch-all ``{default}`` pattern) are
checked in-process against ``Pipeline.node_dependencies`` and ``from_nodes``/``to_nodes``; ``--runs`` cases
(projects of 10) are run by Kedro and by ``run-local`` with every grouping and compared file by file and hook
by hook. Exit 1 with every disagreement and the seed to replay it; 0 when Kedro and we agree everywhere.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from kedro_vertex_ci.testing.featuregen import GROUPINGS, generate_cases, write_feature_project
from tests.equivalence import oracle

DAG_PROJECT_SIZE = 200
RUN_PROJECT_SIZE = 10


def fuzz_dags(work: Path, seed: int, cases: int) -> list[str]:
    problems: list[str] = []
    for k in range(0, cases, DAG_PROJECT_SIZE):
        catch_all = (k // DAG_PROJECT_SIZE) % 2 == 1
        package = f"kvc_fuzz_dag_{seed}_{k}"
        generated = generate_cases(seed + k, min(DAG_PROJECT_SIZE, cases - k), package, catch_all=catch_all)
        fp = write_feature_project(work, package, generated, catch_all=catch_all)
        problems += [f"seed {seed + k}: {p}" for p in oracle.check_dag_project(fp, random.Random(seed + k))]
        print(f"fuzz-kedro: step DAGs of {k + len(generated)}/{cases} cases checked", flush=True)
    return problems


def _fresh(source: Path, target: Path) -> Path:
    shutil.copytree(
        source, target, ignore=shutil.ignore_patterns("data", "hooklog", "info.log*", "__pycache__")
    )
    (target / "data").mkdir()
    return target


def fuzz_runs(work: Path, seed: int, cases: int) -> list[str]:
    problems: list[str] = []
    for k in range(0, cases, RUN_PROJECT_SIZE):
        catch_all = (k // RUN_PROJECT_SIZE) % 2 == 1
        package = f"kvc_fuzz_run_{seed}_{k}"
        generated = generate_cases(
            seed + k,
            min(RUN_PROJECT_SIZE, cases - k),
            package,
            catch_all=catch_all,
            allow_unrunnable=False,
            acyclic_tags=True,
        )
        fp = write_feature_project(
            work / "gen", package, generated, catch_all=catch_all, batch_size=RUN_PROJECT_SIZE
        )
        reference = _fresh(fp.path, work / "kedro" / package)
        oracle.kedro_run(reference, "__default__")
        files, hooks = oracle.data_files(reference), oracle.hook_calls(reference)
        for grouping in GROUPINGS:
            label = f"seed {seed + k} {package} [{grouping}]"
            project = _fresh(fp.path, work / grouping / package)
            result = oracle.run_local(project, grouping, "__default__")
            if result["_exit"] != 0:
                problems.append(f"{label}: run-local failed: {oracle.failed_steps(result)}")
                continue
            problems += oracle.compare_files(label, files, oracle.data_files(project))
            problems += oracle.compare_hooks(label, hooks, oracle.hook_calls(project))
            problems += oracle.logging_errors(result)
        print(f"fuzz-kedro: {k + len(generated)}/{cases} cases run by Kedro and run-local", flush=True)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=None, help="default: the current time (printed)")
    parser.add_argument("--cases", type=int, default=3000, help="cases whose step DAGs are checked")
    parser.add_argument("--runs", type=int, default=60, help="cases run by Kedro and by run-local")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp folder)")
    args = parser.parse_args(argv)
    seed = int(time.time()) if args.seed is None else args.seed
    print(f"fuzz-kedro: seed {seed} (replay: make fuzz-kedro FUZZ_SEED={seed})", flush=True)
    with tempfile.TemporaryDirectory(prefix="kvc-fuzz-kedro-") as tmp:
        work = args.work or Path(tmp)
        problems = fuzz_dags(work / "dags", seed, args.cases) + fuzz_runs(work / "runs", seed, args.runs)
    for problem in problems:
        print(problem)
    print(f"fuzz-kedro: seed {seed}: {len(problems)} disagreement(s) with Kedro", flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
