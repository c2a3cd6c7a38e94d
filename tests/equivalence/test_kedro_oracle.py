"""Kedro is the oracle: on generated projects, kedro-vertex-ci's steps and run-local agree with Kedro itself.

Projects come from :mod:`kedro_vertex_ci.testing.featuregen` (random DAGs dressed in Kedro's features), a
fixed seed and a rotating one (``KVC_ORACLE_SEED`` to replay; every failure message names its seed).

- Step DAG (every case, every grouping, in-process): every edge of ``Pipeline.node_dependencies`` is implied
  by the step graph, every step edge is explained by a Kedro edge, ``--from-nodes``/``--to-nodes`` keep what
  Kedro's ``from_nodes``/``to_nodes`` keep, and a refused tag grouping really has a cycle.
- Whole runs (200 cases: 8 projects of 25, 4 from the fixed seed, 4 from the rotating one, every other one
  with a catch-all pattern): ``run-local`` with identity, tag and auto grouping writes byte-identical files
  and makes the same hook calls per node as ``kedro run``, with no logging error and every node in the
  project's own ``info.log``; in 3 of the 24 runs (one per grouping) a ``--from-nodes`` rerun of one
  node of each of 8 cases into the same run id keeps them. Every failure line names its case as ``SEED:cNNN[:catchall]``, which
  ``python -m tests.equivalence.fuzz_kedro --replay`` runs alone.

``make fuzz-kedro`` runs the same checks on thousands of cases (``tests/equivalence/fuzz_kedro.py``).
"""

from __future__ import annotations

import os
import random
import time

import pytest

from kedro_vertex_ci.testing.featuregen import GROUPINGS, KINDS, generate_cases, write_feature_project
from tests.equivalence import oracle

FIXED_SEED = 20261130
ROTATING_SEED = int(os.environ.get("KVC_ORACLE_SEED") or time.time())
DAG_CASES = {FIXED_SEED: (150, 50), ROTATING_SEED: (60, 20)}  # seed -> (plain cases, catch-all cases)


def _replay(seed: int) -> str:
    return f"seed {seed} (replay: KVC_ORACLE_SEED={seed} pytest tests/equivalence/test_kedro_oracle.py)"


@pytest.mark.parametrize("seed", sorted(DAG_CASES), ids=lambda s: "fixed" if s == FIXED_SEED else "rotating")
def test_step_dags_agree_with_kedro_on_generated_projects(tmp_path, seed):
    plain, catch_all = DAG_CASES[seed]
    problems: list[str] = []
    features: set[str] = set()
    for variant, count in (("plain", plain), ("catchall", catch_all)):
        package = f"kvc_dag_{variant}_{seed}"
        cases = generate_cases(seed, count, package, catch_all=variant == "catchall")
        features.update(f for c in cases for f in c.features)
        fp = write_feature_project(tmp_path, package, cases, catch_all=variant == "catchall")
        problems += oracle.check_dag_project(fp, random.Random(seed))
    assert not problems, f"{_replay(seed)}: {len(problems)} disagreement(s) with Kedro:\n" + "\n".join(
        problems[:40]
    )
    assert set(KINDS) <= features and {"namespace", "params_whole", "dict_inputs", "dict_outputs"} <= features


# --- whole runs -----------------------------------------------------------------------------------------

# Projects of oracle.RUN_PROJECT_SIZE cases each (seed, seed + 1, ...); every other one with a catch-all
# {default} pattern. Name -> (the seed KVC_ORACLE_SEED replays it with, the project).
RUN_PROJECTS = {
    **{f"fixed{i}": (FIXED_SEED, oracle.RunProject(FIXED_SEED + i, catch_all=i % 2 == 1)) for i in range(4)},
    **{
        f"rotating{i}": (ROTATING_SEED, oracle.RunProject(ROTATING_SEED + i, catch_all=i % 2 == 0))
        for i in range(4)
    },
}
# Project -> the grouping whose run is followed by a --from-nodes rerun (one per grouping; a rerun is a whole
# run-local start for a few steps, so it is checked on a sample).
RERUNS = {"fixed0": "identity", "fixed1": "tag", "rotating0": "auto"}


@pytest.fixture(scope="module", params=sorted(RUN_PROJECTS))
def kedro_oracle(request, tmp_path_factory):
    """A run project, run once by Kedro: (its name, spec, the project, what kedro run wrote and called)."""
    spec = RUN_PROJECTS[request.param][1]
    root = tmp_path_factory.mktemp(f"oracle-{request.param}")
    fp = spec.write(root / "generated")
    return request.param, spec, fp, oracle.kedro_reference(fp, root)


@pytest.mark.slow
@pytest.mark.parametrize("grouping", GROUPINGS)
def test_run_local_writes_what_kedro_run_writes(kedro_oracle, grouping, tmp_path):
    """Every case of every run project, with every grouping (and the --from-nodes reruns of RERUNS)."""
    name, spec, fp, reference = kedro_oracle
    rerun = RERUNS.get(name) == grouping
    problems = oracle.check_run(spec, fp, reference, grouping, tmp_path, rerun=rerun)
    assert not problems, (
        f"{len(problems)} disagreement(s) with kedro run in {name} ({spec.package}), "
        f"{_replay(RUN_PROJECTS[name][0])}; one case alone: {oracle.REPLAY_CASE} <SEED:cNNN[:catchall]>"
        " as each line starts:\n" + "\n".join(problems[:40])
    )


def test_at_least_200_cases_are_run_whole_per_make_test():
    specs = [spec for _, spec in RUN_PROJECTS.values()]
    assert sum(spec.size for spec in specs) >= 200
    assert {spec.catch_all for spec in specs} == {True, False}
    assert len({spec.package for spec in specs}) == len(specs)
    assert set(RERUNS.values()) == set(GROUPINGS) and set(RERUNS) <= set(RUN_PROJECTS)


def test_a_replayed_case_is_the_case_the_run_project_holds(tmp_path):
    spec = RUN_PROJECTS["fixed1"][1]
    token = spec.case_token("c017")
    again, case = oracle.parse_case_token(token)
    assert (again.seed, again.catch_all, case) == (spec.seed, spec.catch_all, "c017")
    alone = again.write(tmp_path, only=case)
    assert alone.cases == tuple(c for c in spec.cases() if c.name == "c017")
    assert alone.package == spec.package
    with pytest.raises(ValueError, match="SEED:cNNN"):
        oracle.parse_case_token("17:c017:catch")


def test_every_problem_line_starts_with_the_case_to_replay():
    spec = RUN_PROJECTS["fixed1"][1]
    label_of = oracle.case_labeller(spec, "tag")
    problems = oracle.compare_files(label_of, {"fac/c007/d1.json": b"1", "c012_d0.json": b"2"}, {"fac/c007/d1.json": b"3"})
    problems += oracle.compare_hooks(label_of, {"c003_ns.c003_n1": ["a"]}, {"c003_ns.c003_n1": ["b"]})
    tokens = [line.split(" ", 1)[0] for line in problems]
    assert tokens == [spec.case_token(c) for c in ("c012", "c007", "c003")]
    assert all(oracle.parse_case_token(t)[0] == oracle.RunProject(spec.seed, True, int(t.split(":")[1][1:]) + 1)
               for t in tokens)
    assert label_of("c001-ns-c001-n2 failed (exit 1): boom").startswith(spec.case_token("c001"))


def test_the_generator_is_a_function_of_its_seed(tmp_path):
    first = generate_cases(7, 30, "kvc_same")
    assert generate_cases(7, 30, "kvc_same") == first
    assert generate_cases(8, 30, "kvc_same") != first
    a = write_feature_project(tmp_path / "a", "kvc_same", first)
    b = write_feature_project(tmp_path / "b", "kvc_same", first)
    files = sorted(p.relative_to(a.path) for p in a.path.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b.path) for p in b.path.rglob("*") if p.is_file())
    assert all((a.path / f).read_bytes() == (b.path / f).read_bytes() for f in files)


def test_a_hung_run_local_is_a_finding_of_its_case_not_the_end_of_the_fuzz_run(tmp_path, monkeypatch):
    """``make fuzz-kedro`` runs for an hour: one run-local that never answers must be reported with its case
    (``check_run`` labels it), not end the campaign with a traceback."""
    monkeypatch.setattr(oracle, "RUN_TIMEOUT", 0.05)
    result = oracle.run_local(tmp_path, "identity", "__default__")
    assert result["_exit"] == "timeout" and result["steps"] == []
    assert result["_stderr"].startswith("no result after 0.05 s")
