"""Kedro is the oracle: on generated projects, kedro-vertex-ci's steps and run-local agree with Kedro itself.

Projects come from :mod:`kedro_vertex_ci.testing.featuregen` (random DAGs dressed in Kedro's features), a
fixed seed and a rotating one (``KVC_ORACLE_SEED`` to replay; every failure message names its seed).

- Step DAG (every case, every grouping, in-process): every edge of ``Pipeline.node_dependencies`` is implied
  by the step graph, every step edge is explained by a Kedro edge, ``--from-nodes``/``--to-nodes`` keep what
  Kedro's ``from_nodes``/``to_nodes`` keep, and a refused tag grouping really has a cycle.
- Whole runs (fewer cases, summed into one pipeline): ``run-local`` with identity, tag and auto grouping
  writes byte-identical files and makes the same hook calls per node as ``kedro run``, with no logging error
  and every node in the project's own ``info.log``; a ``--from-nodes`` rerun into the same run keeps them.

``make fuzz-kedro`` runs the same checks on thousands of cases (``tests/equivalence/fuzz_kedro.py``).
"""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path

import pytest

from kedro_vertex_ci.testing.featuregen import GROUPINGS, KINDS, generate_cases, write_feature_project
from tests.equivalence import oracle

FIXED_SEED = 20261130
ROTATING_SEED = int(os.environ.get("KVC_ORACLE_SEED") or time.time())
DAG_CASES = {FIXED_SEED: (150, 50), ROTATING_SEED: (60, 20)}  # seed -> (plain cases, catch-all cases)
RUN_CASES = 6  # per run project; each is run by kedro and by run-local with every grouping


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

RUN_VARIANTS = {"plain": FIXED_SEED, "catchall": ROTATING_SEED}


def _fresh_copy(source: Path, target: Path) -> Path:
    ignore = shutil.ignore_patterns("data", "hooklog", "info.log*", ".kedro-vertex-ci", "__pycache__")
    shutil.copytree(source, target, ignore=ignore)
    (target / "data").mkdir()
    return target


@pytest.fixture(scope="module", params=sorted(RUN_VARIANTS))
def kedro_oracle(request, tmp_path_factory):
    """A run project per variant, run once by Kedro: (project, files Kedro wrote, hook calls per node)."""
    variant = request.param
    seed = RUN_VARIANTS[variant]
    package = f"kvc_run_{variant}_{seed}"
    root = tmp_path_factory.mktemp(f"oracle-{variant}")
    cases = generate_cases(
        seed, RUN_CASES, package, catch_all=variant == "catchall", allow_unrunnable=False, acyclic_tags=True
    )
    fp = write_feature_project(root, package, cases, catch_all=variant == "catchall", batch_size=RUN_CASES)
    reference = _fresh_copy(fp.path, root / "kedro-run" / package)
    oracle.kedro_run(reference, "__default__")
    files, hooks = oracle.data_files(reference), oracle.hook_calls(reference)
    assert len(files) >= RUN_CASES and len(hooks) >= 2 * RUN_CASES  # the oracle really ran
    return fp, seed, files, hooks


@pytest.mark.slow
@pytest.mark.parametrize("grouping", GROUPINGS)
def test_run_local_writes_what_kedro_run_writes(kedro_oracle, grouping, tmp_path):
    fp, seed, files, hooks = kedro_oracle
    label = f"{fp.path.name} [{grouping}] {_replay(seed)}"
    project = _fresh_copy(fp.path, tmp_path / fp.path.name)
    result = oracle.run_local(project, grouping, "__default__")
    assert result["_exit"] == 0, (
        f"{label}: run-local failed: {oracle.failed_steps(result)} {result['_stderr'][-2000:]}"
    )
    problems = oracle.compare_files(label, files, oracle.data_files(project))
    problems += oracle.compare_hooks(label, hooks, oracle.hook_calls(project))
    problems += oracle.logging_errors(result)
    missing = set(hooks) - oracle.info_log_nodes(project)
    if missing:
        problems.append(f"{label}: info.log (conf/logging.yml) lacks the nodes {sorted(missing)}")
    assert not problems, "\n".join(problems[:40])

    node = random.Random(seed).choice(sorted(hooks))
    again = oracle.run_local(
        project, grouping, "__default__", "--run-id", result["run_id"], "--from-nodes", node
    )
    assert again["_exit"] == 0, f"{label}: --from-nodes {node} failed: {oracle.failed_steps(again)}"
    assert not oracle.compare_files(f"{label} after --from-nodes {node}", files, oracle.data_files(project))


def test_the_generator_is_a_function_of_its_seed(tmp_path):
    first = generate_cases(7, 30, "kvc_same")
    assert generate_cases(7, 30, "kvc_same") == first
    assert generate_cases(8, 30, "kvc_same") != first
    a = write_feature_project(tmp_path / "a", "kvc_same", first)
    b = write_feature_project(tmp_path / "b", "kvc_same", first)
    files = sorted(p.relative_to(a.path) for p in a.path.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b.path) for p in b.path.rglob("*") if p.is_file())
    assert all((a.path / f).read_bytes() == (b.path / f).read_bytes() for f in files)
