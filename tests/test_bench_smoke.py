"""Every benchmark of ``make bench`` runs at tiny size, so none can rot unnoticed (a smoke test, not a timing).

Our side must yield numbers wherever our entry point exists; kedro-vertexai's side runs only when
bench/.venv-kvai exists, and otherwise must say "baseline not installed" instead of failing.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from benchlib import measures as m  # noqa: E402
from benchlib.procs import NOT_INSTALLED, Repeats, Stats, Tools, bench_env, run_process  # noqa: E402
from benchlib.reading import reading  # noqa: E402
from benchlib.report import plot_compile, write_report  # noqa: E402

from kedro_vertex_ci.testing import make_project  # noqa: E402

pytestmark = pytest.mark.slow

ONCE = Repeats(runs=1, slow_runs=1, warmup=False)
TOOLS = Tools.discover()


def _ours_expected(command: str) -> type | str:
    """Stats where ``kedro-vertex-ci COMMAND`` exists, else the harness's "not measured yet" text."""
    missing = m.missing_command(TOOLS, command)
    return Stats if missing is None else missing


def _assert_side(cell: object, expected: type | str) -> None:
    if isinstance(expected, type):
        assert isinstance(cell, expected), cell
        assert cell.values and all(v > 0 for v in cell.values)
    else:
        assert cell == expected


def _theirs_expected(tools: Tools = TOOLS) -> type | str:
    return Stats if tools.theirs is not None else NOT_INSTALLED


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench")


def test_measured_processes_write_and_reuse_bytecode(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A shell's PYTHONDONTWRITEBYTECODE must not reach timed runs: with it, every run recompiled every module
    it imported (the 7.4 s 'compile with auto' reading of issue 14), which no pip-installed tool does."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    assert "PYTHONDONTWRITEBYTECODE" not in bench_env()
    (tmp_path / "probe_mod.py").write_text("VALUE = 1\n")
    cmd = [sys.executable, "-c", "import probe_mod"]
    result = run_process(cmd, tmp_path, {**bench_env(), "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0 and list((tmp_path / "__pycache__").glob("probe_mod.*.pyc"))
    assert 0 < result.cpu_seconds < result.seconds + 1


@pytest.fixture(scope="module")
def compiled(work: Path) -> m.Measure:
    return m.measure_compile(work, TOOLS, ONCE, sizes=(3,), shapes=("chain", "layered"), auto_n=3)


def test_compile_measures_both_tools_and_checks_the_specs(compiled: m.Measure) -> None:
    rows = compiled.tables[0].rows
    assert [(r[0], r[1]) for r in rows] == [("chain", 3), ("layered", 3), ("layered, auto", 3)]
    for row in rows[:2]:
        _assert_side(row[2], _ours_expected("compile"))
        _assert_side(row[3], _theirs_expected())
    assert set(compiled.raw) == {"chain/3", "layered/3", "layered-auto/3"}


def test_compile_with_auto_reports_wall_and_cpu_time(compiled: m.Measure) -> None:
    """P1's row: our compile with `grouping: auto`, its CPU time beside the wall time, judged in the reading."""
    auto = compiled.tables[0].rows[2]
    _assert_side(auto[2], _ours_expected("compile"))
    assert auto[3] == m.NO_AUTO
    if _ours_expected("compile") is Stats:
        assert len(auto[2].cpu) == len(auto[2].values) and all(c > 0 for c in auto[2].cpu)
        assert float(auto[6].split(" / ")[0]) > 0
        line = next(line for line in reading([compiled]) if line.startswith("Compile with auto"))
        assert "s CPU; goal ≤ 2 s" in line


def test_memory_reuses_compile_runs_or_measures_itself(work: Path, compiled: m.Measure) -> None:
    reused = m.measure_memory(work, TOOLS, ONCE, n=3, shape="layered", compile_result=compiled)
    own = m.measure_memory(work, TOOLS, ONCE, n=2, shape="chain")
    for result in (reused, own):
        ours_row, theirs_row = result.tables[0].rows
        if _ours_expected("compile") is Stats:
            assert isinstance(ours_row[1], Stats) and ours_row[1].unit == "MB" and ours_row[1].median > 10
        if TOOLS.theirs is None:
            assert theirs_row[1] == NOT_INSTALLED


def test_without_the_baseline_the_harness_says_so(work: Path) -> None:
    no_baseline = dataclasses.replace(TOOLS, theirs=None)
    result = m.measure_compile(work / "nobaseline", no_baseline, ONCE, sizes=(2,), shapes=("chain",))
    row = result.tables[0].rows[0]
    assert row[3] == NOT_INSTALLED
    assert row[5] == "–"
    _assert_side(row[2], _ours_expected("compile"))
    assert any("theirs baseline not installed" in line for line in reading([result]))


def test_step_start_runs_the_compiled_step_of_each_tool(work: Path) -> None:
    result = m.measure_step_start(work, TOOLS, ONCE)
    floor, ours, theirs, floor_theirs, floor_plain = (row[1] for row in result.tables[0].rows)
    _assert_side(floor, Stats)
    _assert_side(floor_plain, Stats)
    _assert_side(ours, _ours_expected("step"))
    _assert_side(floor_theirs, _theirs_expected())
    _assert_side(theirs, _theirs_expected())


def test_step_command_substitutes_vertex_placeholders() -> None:
    spec = {
        "root": {
            "inputDefinitions": {
                "parameters": {"start": {"defaultValue": 5}, "name": {"defaultValue": "a b"}}
            },
            "dag": {
                "tasks": {
                    "t": {
                        "componentRef": {"name": "c"},
                        "inputs": {
                            "parameters": {
                                "start": {"componentInputParameter": "start"},
                                "label": {"componentInputParameter": "name"},
                                "k": {"runtimeValue": {"constant": [1, 2]}},
                            }
                        },
                    }
                }
            },
        },
        "components": {"c": {"executorLabel": "e"}},
        "deploymentSpec": {
            "executors": {
                "e": {
                    "container": {
                        "command": ["run"],
                        "args": [
                            "{{$.pipeline_job_uuid}}",
                            "--root={{$.pipeline_root}}",
                            "s={{$.inputs.parameters['start']}}",
                            "{{$.inputs.parameters['label']}}",
                            "{{$.inputs.parameters['k']}}",
                        ],
                    }
                }
            }
        },
    }
    values = {"pipeline_job_uuid": "RID", "pipeline_job_name": "J", "pipeline_root": "/r"}
    assert m.step_command(spec, values) == ["run", "RID", "--root=/r", "s=5", "a b", "[1, 2]"]


def test_intermediate_data_local_and_gcs_emulator(work: Path) -> None:
    result = m.measure_data(work, TOOLS, ONCE, sizes_mb=(1,), targets=("local", "gcs"))
    rows = result.tables[0].rows
    assert [(r[0], r[2]) for r in rows] == [
        ("pandas DataFrame", "local"),
        ("numpy array", "local"),
        ("pandas DataFrame", "gcs"),
        ("numpy array", "gcs"),
    ]
    for row in rows:
        for cell in row[3:6]:
            _assert_side(cell, Stats)
        assert row[6].endswith("×") and row[7].endswith("×")
    lines = reading([result])
    assert len(lines) == 4 and all("bz2" in line for line in lines)


def test_checksum_cost_pairs(work: Path) -> None:
    """Local only: the gs:// probe is the same code with an emulator, already started by the test above."""
    result = m.measure_checksum(work, TOOLS, pairs=2, mb=1, targets=("local",))
    rows = result.tables[0].rows
    assert [(r[0], r[1]) for r in rows] == [("pandas DataFrame", "local"), ("numpy array", "local")]
    for row in rows:
        _assert_side(row[2], Stats)
        _assert_side(row[3], Stats)
        assert row[6].endswith("%") and row[7].count("%") == 2  # total, then save / load
    assert len(result.raw["local/1"]["objects"]["numpy array"]["checksum"]["with"]["cpu"]) == 2
    lines = reading([result])
    assert len(lines) == 2 and all(line.startswith("Checksum (") and "CPU time" in line for line in lines)


def test_grouping_estimates_each_strategy(work: Path) -> None:
    result = m.measure_grouping(work, TOOLS, ONCE, n=12, width=3, big=20, images=False, examples=False)
    layered = result.raw["layered 12 (width 3)"]
    assert layered["none"]["nodes"] == 12 and layered["measured"]["measured"] == 12
    assert layered["none"]["plans"]["identity"]["steps"] == 12 and layered["none"]["plans"]["tag"]["steps"] == 4
    none = layered["none"]["plans"]
    assert none["auto"]["wall"] <= min(none[k]["wall"] for k in ("identity", "tag", "single")) + 1e-6
    assert layered["none"]["optimum"]["wall"] <= none["auto"]["wall"] + 1e-6
    assert result.raw["layered 20 (width 3)"]["compile_seconds"]
    assert len(reading([result])) == len(result.raw)


def test_cli_start(work: Path) -> None:
    result = m.measure_cli(work, TOOLS, ONCE)
    cells = {row[0]: row[1] for row in result.tables[0].rows}
    _assert_side(cells["`kedro-vertex-ci --help`"], Stats)
    _assert_side(cells["`kedro --help`, Kedro alone"], Stats)
    _assert_side(cells["`kedro --help`, with kedro-vertex-ci"], Stats)
    _assert_side(cells["`kedro --help`, with kedro-vertexai"], _theirs_expected())


def test_dry_run_of_a_small_project(work: Path) -> None:
    project = make_project(work / "dry-src", "drysmall", "diamond", 4, vertexai=m.OURS_CONFIG)
    result = m.measure_dry_run(work, TOOLS, ONCE, example=project)
    rows = {(row[0], row[1]): row[2] for row in result.tables[0].rows}
    plain, ours = rows[("example", "`kedro run`")], rows[("example", "`kedro-vertex-ci run-local`")]
    assert "not measured" in str(rows[("`kedro new` + spaceflights-like", "both")])  # no pipelines/ folder
    _assert_side(plain, Stats)
    _assert_side(ours, _ours_expected("run-local"))


def test_report_and_plot_are_written(work: Path, compiled: m.Measure, tmp_path: Path) -> None:
    plotted = plot_compile(compiled, tmp_path / "plot.png")
    assert plotted == (_ours_expected("compile") is Stats or TOOLS.theirs is not None)
    out = tmp_path / "benchmarks.md"
    write_report(
        out, [compiled], {"cores": "2"}, reading([compiled]), "plot.png" if plotted else None, "test"
    )
    text = out.read_text()
    assert "## 1. Compile time" in text and "| chain | 3 |" in text
    if plotted:
        assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")


def test_action_overhead_stages_on_the_example(work: Path) -> None:
    """P7 at size one: the real action process against the fakes yields every stage (install: not offline)."""
    from benchlib.action_bench import CPU, STAGES, measure_action

    measure = measure_action(work, TOOLS, runs=1, example=m.find_example(), install=False)
    stages = {row[0]: row[1] for row in measure.tables[0].rows}
    assert set(stages) == {label for label, _, _ in STAGES} | {CPU}, stages
    assert all(isinstance(cell, Stats) and cell.values[0] > 0 for cell in stages.values()), stages
    total = stages["total: start → comment"].values[0]
    assert total >= sum(stages[label].values[0] for label, _, _ in STAGES[1:-1])
    assert any(line.startswith("Action: start → PR comment") for line in reading([measure]))
