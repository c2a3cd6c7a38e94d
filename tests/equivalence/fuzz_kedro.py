"""``make fuzz-kedro``: the Kedro-oracle checks of ``test_kedro_oracle.py`` on thousands of generated cases.

Usage: ``python -m tests.equivalence.fuzz_kedro [--seed S] [--cases 3000] [--runs 1000] [--work DIR]``, or
``--replay SEED:cNNN[:catchall]`` to run one case of a failure message again, alone.

Step DAGs of ``--cases`` cases (projects of 200, every other one with a catch-all ``{default}`` pattern) are
checked in-process against ``Pipeline.node_dependencies`` and ``from_nodes``/``to_nodes``; ``--runs`` cases
(projects of 25, seeds ``S``, ``S + 1``, …) are run by Kedro and by ``run-local`` with every grouping and
compared file by file and hook by hook, each run followed by a ``--from-nodes`` rerun (one node of each of
8 cases). Exit 1 with every disagreement, each naming its case as ``SEED:cNNN[:catchall]``; 0 when Kedro
and we agree everywhere.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from kedro_vertex_ci.testing.featuregen import GROUPINGS, generate_cases, write_feature_project
from tests.equivalence import oracle

DAG_PROJECT_SIZE = 200


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


def run_projects(seed: int, cases: int) -> list[oracle.RunProject]:
    """Projects of RUN_PROJECT_SIZE cases holding ``cases`` cases, every other one with a catch-all pattern."""
    size = oracle.RUN_PROJECT_SIZE
    return [
        oracle.RunProject(seed + i, catch_all=i % 2 == 1, size=min(size, cases - i * size))
        for i in range((cases + size - 1) // size)
    ]


def check_project(work: Path, spec: oracle.RunProject, only: str | None = None) -> list[str]:
    """Kedro's run of the project, then run-local with every grouping, each followed by a rerun."""
    folder = work / spec.package
    fp = spec.write(folder / "generated", only=only)
    reference = oracle.kedro_reference(fp, folder)
    problems: list[str] = []
    for grouping in GROUPINGS:
        problems += oracle.check_run(spec, fp, reference, grouping, folder, rerun=True)
    return problems


def fuzz_runs(work: Path, seed: int, cases: int) -> list[str]:
    problems: list[str] = []
    done = 0
    for spec in run_projects(seed, cases):
        problems += check_project(work, spec)
        done += spec.size
        print(f"fuzz-kedro: {done}/{cases} cases run by Kedro and run-local ({len(problems)} problems)", flush=True)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=None, help="default: the current time (printed)")
    parser.add_argument("--cases", type=int, default=3000, help="cases whose step DAGs are checked")
    parser.add_argument("--runs", type=int, default=1000, help="cases run by Kedro and by run-local")
    parser.add_argument("--replay", metavar="SEED:cNNN[:catchall]", help="run just this case (from a failure)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kvc-fuzz-kedro-") as tmp:
        work = args.work or Path(tmp)
        if args.replay:
            try:
                spec, case = oracle.parse_case_token(args.replay)
            except ValueError as err:
                parser.error(str(err))
            print(f"fuzz-kedro: case {args.replay} alone, run by Kedro and run-local (work: {work})", flush=True)
            problems = check_project(work, spec, only=case)
        else:
            seed = int(time.time()) if args.seed is None else args.seed
            print(f"fuzz-kedro: seed {seed} (replay: make fuzz-kedro FUZZ_SEED={seed})", flush=True)
            problems = fuzz_dags(work / "dags", seed, args.cases) + fuzz_runs(work / "runs", seed, args.runs)
    for problem in problems:
        print(problem)
    print(f"fuzz-kedro: {len(problems)} disagreement(s) with Kedro", flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
