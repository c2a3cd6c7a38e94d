"""The measures of issue 6, one function each. Every function runs at any size, so the smoke test can run
it tiny; each side of a comparison is a whole process started the way a user (or Vertex) starts it.

A side that cannot run yields a string cell instead of numbers: ``baseline not installed`` when
kedro-vertexai's venv is missing, ``not measured yet (...)`` when our entry point does not exist yet, and
``failed: ...`` when a command exits non-zero. Numbers are never made up.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kedro_vertex_ci.testing import make_project

from .procs import (
    BENCH,
    NOT_INSTALLED,
    REPO,
    MeasureError,
    ProcResult,
    Repeats,
    Stats,
    Tools,
    bench_env,
    checked,
    last_lines,
    repeat,
    run_process,
    with_path,
)

Cell = Any  # Stats | float | int | str


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)


@dataclass
class Measure:
    """The outcome of one measure: tables for the report, notes, and the raw numbers for JSON."""

    key: str
    title: str
    goal: str
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)


OURS_CONFIG: dict[str, Any] = {
    "project_id": "bench-project",
    "region": "europe-west1",
    "run_config": {
        "image": "bench-image:latest",
        "root": "gs://bench-bucket/pipelines",
        "experiment_name": "bench",
        "grouping": {"cls": "identity"},
        "resources": {"__default__": {"cpu": "1", "memory": "2048Mi"}},
    },
}

AUTO_SHAPE = "layered-auto"  # measure 1's row of our compile with `grouping: auto` (raw key prefix)
NO_AUTO = "no such grouping"

# kedro-vertexai 1.0.0's own `init` output fails its own validation; the bench repairs exactly these lines
# and refuses to go on if one of them is not found (so a changed template cannot slip through silently).
THEIR_TEMPLATE_FIXES: tuple[tuple[str, str, str], ...] = (
    (r"(?m)^(\s*experiment_name:).*$", r'\1 ""', 'experiment_name "": else compile needs Google credentials'),
    (r"(?m)^(\s*cpu:) 8$", r'\1 "8"', 'cpu: 8 → "8" (must be a string)'),
    (r"(?m)^(\s*gpu:) 1$", r'\1 "1"', 'gpu: 1 → "1" (must be a string)'),
    (r"(?m)^(\s*max_run_count:) none$", r"\1 null", "max_run_count: none → null"),
)


def _failed(error: Exception) -> str:
    """The cell shown instead of a number when a command failed."""
    return f"failed: {error}"


def _kvc(tools: Tools) -> Path:
    return tools.ours / "kedro-vertex-ci"


def missing_command(tools: Tools, command: str) -> str | None:
    """``None`` when ``kedro-vertex-ci COMMAND`` exists, else the "not measured yet" reason."""
    exe = _kvc(tools)
    if not exe.exists():
        return f"not measured yet (no {exe})"
    result = subprocess.run(
        [str(exe), command, "--help"], capture_output=True, text=True, env=bench_env(), timeout=120
    )
    if result.returncode != 0:
        return f"not measured yet (kedro-vertex-ci has no '{command}' command)"
    return None


def _ours_env(tools: Tools, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return with_path(tools.ours, bench_env(extra))


def _theirs_env(tools: Tools, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    assert tools.theirs is not None
    return with_path(tools.theirs, bench_env(extra))


def their_config(tools: Tools, work: Path) -> str:
    """kedro-vertexai's own ``init`` output with the repairs of :data:`THEIR_TEMPLATE_FIXES` (cached)."""
    cached = work / "kvai-vertexai.yml"
    if cached.exists():
        return cached.read_text()
    scratch = make_project(work / "kvai-init", "kvaiinit", "chain", 1)
    result = run_process(
        [str(tools.theirs / "kedro"), "vertexai", "init", "bench-project", "europe-west1"],
        scratch,
        _theirs_env(tools),
        timeout=300,
    )
    checked(result, "kedro vertexai init")
    text = (scratch / "conf" / "base" / "vertexai.yml").read_text()
    for pattern, replacement, why in THEIR_TEMPLATE_FIXES:
        text, count = re.subn(pattern, replacement, text)
        if count == 0:
            raise MeasureError(f"kedro-vertexai init template changed: cannot apply fix '{why}'")
    cached.write_text(text)
    return text


# --------------------------------------------------------------------------------------------------------
# 1 + 7. Compile time and peak memory


def _compile_ours(project: Path, tools: Tools) -> Callable[[], ProcResult]:
    cmd = [str(_kvc(tools)), "compile", "-o", "bench-spec.json"]
    return lambda: run_process(cmd, project, _ours_env(tools))


def _compile_theirs(project: Path, tools: Tools) -> Callable[[], ProcResult]:
    assert tools.theirs is not None
    cmd = [str(tools.theirs / "kedro"), "vertexai", "compile", "-o", "bench-spec.yml"]
    return lambda: run_process(cmd, project, _theirs_env(tools))


def _spec_task_count(path: Path) -> int:
    spec = yaml.safe_load(path.read_text())
    return len(spec["root"]["dag"]["tasks"])


def _timed_compile(
    side: str, project: Path, tools: Tools, repeats: Repeats, n: int
) -> tuple[Stats, Stats] | str:
    """Compile ``project`` repeatedly; check the spec has one task per node (``n``; 0: any count, for auto)."""
    if side == "theirs" and tools.theirs is None:
        return NOT_INSTALLED
    run_once = _compile_ours(project, tools) if side == "ours" else _compile_theirs(project, tools)
    try:
        stats = repeat(run_once, repeats, f"{side} compile")
        out = project / ("bench-spec.json" if side == "ours" else "bench-spec.yml")
        tasks = _spec_task_count(out)
        if n and tasks != n:
            raise MeasureError(f"{side} spec has {tasks} tasks for {n} nodes")
        return stats
    except MeasureError as err:
        return _failed(err)


def _project_pair(
    work: Path, tools: Tools, label: str, shape: str, n: int, **kwargs: Any
) -> tuple[Path, Path]:
    """The same generated project twice: one configured for us, one for kedro-vertexai."""
    ours = make_project(work / "ours", label, shape, n, vertexai=OURS_CONFIG, **kwargs)
    theirs_config = their_config(tools, work) if tools.theirs is not None else None
    theirs = make_project(work / "theirs", label, shape, n, vertexai=theirs_config, **kwargs)
    return ours, theirs


def measure_compile(
    work: Path,
    tools: Tools,
    repeats: Repeats,
    sizes: Sequence[int] = (10, 100, 500, 1000),
    shapes: Sequence[str] = ("chain", "layered"),
    auto_n: int | None = None,
) -> Measure:
    measure = Measure(
        "compile",
        "1. Compile time",
        "ours ≤ 1/15 of theirs at N=1000, and ours t(1000)/t(100) ≤ 3; with `grouping: auto` ours ≤ 2 s at "
        "N=1000",
        notes=[
            "Whole process: `kedro-vertex-ci compile -o x.json` vs kedro-vertexai's `kedro vertexai compile "
            "-o x.yml`, run in the generated project; both with one step per node (identity grouping). "
            "The spec each writes is checked to hold one task per node. Row `layered, auto`: the same "
            "layered project compiled by us with `grouping: auto` (cost-aware fusion; kedro-vertexai has no "
            "such grouping). CPU: user + system seconds of the whole process (median), the number to read "
            "when the machine was loaded.",
        ],
    )
    missing = missing_command(tools, "compile")
    table = Table(
        "Compile time (s) — min / median / max",
        [
            "shape",
            "N",
            "ours",
            "theirs",
            "runs (ours/theirs)",
            "theirs ÷ ours",
            "CPU s ours / theirs (median)",
            "ours peak RSS MB",
            "theirs peak RSS MB",
        ],
    )
    raw: dict[str, Any] = {}
    for shape in shapes:
        for n in sizes:
            ours_dir, theirs_dir = _project_pair(work / "compile", tools, f"{shape}{n}", shape, n)
            ours = missing or _timed_compile("ours", ours_dir, tools, repeats, n)
            theirs = _timed_compile("theirs", theirs_dir, tools, repeats, n)
            raw[f"{shape}/{n}"] = {"ours": _raw(ours), "theirs": _raw(theirs)}
            table.rows.append(
                [
                    shape,
                    n,
                    _time(ours),
                    _time(theirs),
                    f"{_runs(ours)}/{_runs(theirs)}",
                    _ratio(theirs, ours),
                    f"{_cpu(ours)} / {_cpu(theirs)}",
                    _rss(ours),
                    _rss(theirs),
                ]
            )
    if auto_n:
        project = make_project(work / "compile" / "ours", f"auto{auto_n}", "layered", auto_n, vertexai=AUTO_CONFIG)
        ours = missing or _timed_compile("ours", project, tools, repeats, 0)
        raw[f"{AUTO_SHAPE}/{auto_n}"] = {"ours": _raw(ours), "theirs": NO_AUTO}
        table.rows.append(
            [AUTO_SHAPE.replace("-", ", "), auto_n, _time(ours), NO_AUTO, f"{_runs(ours)}/–", "–", f"{_cpu(ours)} / –",
             _rss(ours), ""]
        )
    measure.tables.append(table)
    measure.raw = raw
    return measure


def measure_memory(
    work: Path,
    tools: Tools,
    repeats: Repeats,
    n: int = 1000,
    shape: str = "layered",
    compile_result: Measure | None = None,
) -> Measure:
    """Peak RSS of the compile process at N; reuses ``compile_result`` when it measured that size."""
    measure = Measure("memory", "7. Peak memory of compile", "(reported, no goal)")
    raw = (compile_result.raw if compile_result else {}).get(f"{shape}/{n}")
    if raw is None:
        sub = measure_compile(work, tools, repeats, sizes=(n,), shapes=(shape,))
        raw = sub.raw[f"{shape}/{n}"]
    else:
        measure.notes.append("Taken from the compile runs of measure 1 (peak RSS of each run, via wait4).")
    table = Table(
        f"Peak RSS of the compile process, {shape} N={n} (MB) — min / median / max",
        ["tool", "peak RSS MB", "theirs ÷ ours (median)"],
    )
    ours, theirs = raw["ours"], raw["theirs"]
    table.rows.append(["kedro-vertex-ci", _raw_rss(ours), ""])
    table.rows.append(["kedro-vertexai 1.0.0", _raw_rss(theirs), _raw_rss_ratio(theirs, ours)])
    measure.tables.append(table)
    measure.raw = {"shape": shape, "n": n, **raw}
    return measure


# --------------------------------------------------------------------------------------------------------
# 2. Step start


PLACEHOLDER = re.compile(
    r"\{\{\$\.(pipeline_job_uuid|pipeline_job_name|pipeline_root|inputs\.parameters\['([^']+)'\])\}\}"
)


def step_command(spec: Mapping[str, Any], values: Mapping[str, str], task: str | None = None) -> list[str]:
    """The command line a compiled task runs, with Vertex's placeholders substituted as Vertex would.

    Input parameters come from the task's wiring: a constant, or a root pipeline input's default.
    """
    tasks = spec["root"]["dag"]["tasks"]
    name = task or next(iter(tasks))
    wiring = tasks[name].get("inputs", {}).get("parameters", {})
    defaults = {
        key: definition.get("defaultValue")
        for key, definition in spec["root"].get("inputDefinitions", {}).get("parameters", {}).items()
    }
    inputs: dict[str, str] = {}
    for key, source in wiring.items():
        if "componentInputParameter" in source:
            value = defaults.get(source["componentInputParameter"])
        else:
            value = source.get("runtimeValue", {}).get("constant")
        inputs[key] = value if isinstance(value, str) else json.dumps(value)
    component = spec["components"][tasks[name]["componentRef"]["name"]]
    container = spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]

    def substitute(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            if match.group(2):
                return inputs[match.group(2)]
            return values[match.group(1)]

        return PLACEHOLDER.sub(one, text)

    return [substitute(part) for part in [*container.get("command", []), *container.get("args", [])]]


def _first_step(
    project: Path, compile_once: Callable[[], ProcResult], out: str, values: Mapping[str, str]
) -> list[str]:
    checked(compile_once(), "compile")
    return step_command(yaml.safe_load((project / out).read_text()), values)


def _expect_output(project: Path, dataset: str, expected: int) -> None:
    path = project / "data" / f"{dataset}.json"
    if not path.exists() or json.loads(path.read_text()) != expected:
        raise MeasureError(f"the step did not write {dataset} = {expected}")


def _timed_step(
    run_once: Callable[[], ProcResult], project: Path, repeats: Repeats, what: str
) -> Stats | str:
    output = project / "data" / "ds_0.json"

    def fresh_run() -> ProcResult:
        output.unlink(missing_ok=True)
        return run_once()

    try:
        stats, _ = repeat(fresh_run, repeats, what)
        _expect_output(project, "ds_0", 3)
        return stats
    except MeasureError as err:
        return _failed(err)


def _floor(tools_bin: Path, project: Path, repeats: Repeats) -> Stats | str:
    cmd = [str(tools_bin / "kedro"), "run", "--nodes", "node_0"]
    env = with_path(tools_bin, bench_env())
    return _timed_step(lambda: run_process(cmd, project, env), project, repeats, "floor kedro run")


def measure_step_start(work: Path, tools: Tools, repeats: Repeats) -> Measure:
    measure = Measure(
        "step",
        "2. Step start",
        "ours ≤ floor + 0.3 s",
        notes=[
            "A one-node step (params in, one catalog JSON file out, no intermediate data), run exactly as the "
            "compiled spec says: command and args taken from each tool's compiled spec, placeholders "
            "substituted, cwd = project. The floor is a bare `kedro run --nodes node_0` in ours' environment "
            "(which, like theirs, has pandas: Kedro's MemoryDataset copy logic imports pandas when it is "
            f"installed). Also shown: the same `kedro run` with Kedro alone ({tools.plain_label}), and with "
            "kedro-vertexai installed, where Kedro loads its CLI plugin (and so google-cloud-aiplatform) on "
            "every `kedro` command.",
            "kedro-vertexai's step is `bash -c 'kedro vertexai initialize-job ... && kedro run ... --runner "
            "kedro_vertexai.vertex_ai.runner.VertexAIPipelinesRunner --config config.yaml'`: two Kedro starts.",
        ],
    )
    values = {"pipeline_job_uuid": "bench-run", "pipeline_job_name": "bench-job"}
    ours_dir, theirs_dir = _project_pair(work / "step", tools, "steponenode", "chain", 1, catalog=["ds_0"])
    root = work / "step" / "root"
    root.mkdir(parents=True, exist_ok=True)

    floor_ours = _floor(tools.ours, ours_dir, repeats)
    ours: Stats | str = missing_command(tools, "step") or ""
    if not ours:
        try:
            cmd = _first_step(
                ours_dir,
                _compile_ours(ours_dir, tools),
                "bench-spec.json",
                {**values, "pipeline_root": str(root)},
            )
            ours = _timed_step(
                lambda: run_process(cmd, ours_dir, _ours_env(tools)), ours_dir, repeats, "ours step"
            )
        except MeasureError as err:
            ours = _failed(err)

    floor_theirs: Stats | str = NOT_INSTALLED
    theirs: Stats | str = NOT_INSTALLED
    if tools.theirs is not None:
        floor_theirs = _floor(tools.theirs, theirs_dir, repeats)
        try:
            cmd = _first_step(
                theirs_dir,
                _compile_theirs(theirs_dir, tools),
                "bench-spec.yml",
                {**values, "pipeline_root": "bench-bucket/pipelines"},
            )
            theirs = _timed_step(
                lambda: run_process(cmd, theirs_dir, _theirs_env(tools)), theirs_dir, repeats, "theirs step"
            )
        except MeasureError as err:
            theirs = _failed(err)
    floor_plain = _floor(tools.plain, ours_dir, repeats)
    rows: list[list[Cell]] = [
        ["floor: `kedro run --nodes node_0` (ours' environment)", _time(floor_ours), ""],
        ["ours: `kedro-vertex-ci step ...`", _time(ours), _diff(ours, floor_ours)],
        [
            "theirs: `bash -c 'kedro vertexai initialize-job … && kedro run …'`",
            _time(theirs),
            _diff(theirs, floor_ours),
        ],
        [
            "`kedro run --nodes node_0` with kedro-vertexai installed",
            _time(floor_theirs),
            _diff(floor_theirs, floor_ours),
        ],
        [
            "`kedro run --nodes node_0` with Kedro alone (no pandas)",
            _time(floor_plain),
            _diff(floor_plain, floor_ours),
        ],
    ]
    measure.tables.append(
        Table(
            "Start of a one-node step (s) — min / median / max",
            ["command", "time", "minus floor (medians)"],
            rows,
        )
    )
    measure.raw = {
        "floor": _raw(floor_ours),
        "ours": _raw(ours),
        "floor_theirs": _raw(floor_theirs),
        "theirs": _raw(theirs),
        "floor_plain": _raw(floor_plain),
    }
    return measure


# --------------------------------------------------------------------------------------------------------
# 3. Intermediate data


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StorageEmulator:
    """gcp-storage-emulator on 127.0.0.1, in memory, for as long as the ``with`` block lasts."""

    def __init__(self, bin_dir: Path):
        self.bin_dir = bin_dir
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> StorageEmulator:
        exe = self.bin_dir / "gcp-storage-emulator"
        cmd = [str(exe), "start", "--host", "127.0.0.1", "--port", str(self.port), "--in-memory"]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=bench_env()
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise MeasureError("gcp-storage-emulator did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def measure_data(
    work: Path,
    tools: Tools,
    repeats: Repeats,
    sizes_mb: Sequence[int] = (50,),
    targets: Sequence[str] = ("local", "gcs"),
) -> Measure:
    measure = Measure(
        "data",
        "3. Intermediate data save + load",
        "ours ≥ 3× faster than cloudpickle+bz2, and within 2× of the raw floor",
        notes=[
            "In one process per (target, size): our `IntermediateDataset` (kedro_vertex_ci.runtime.intermediate, "
            "cloudpickle + zstd, atomic write) vs kedro-vertexai's codec (cloudpickle + bz2 through fsspec, "
            "its dataset's code) vs the floor: writing and reading back the object's uncompressed pickle "
            "bytes (serialisation not timed). `gcs` = gcp-storage-emulator on 127.0.0.1, ours through its own "
            "gs:// client (kedro_vertex_ci/runtime/gcs.py), bz2 and the floor through gcsfs: a "
            "pure-Python server, so its absolute numbers say little about real GCS; the ratios are what "
            "matters. Each time is save + load of one object.",
        ],
    )
    python = REPO / ".venv" / "bin" / "python"
    probe = Path(__file__).with_name("data_probe.py")
    table = Table(
        "Save + load (s) — min / median / max",
        [
            "object",
            "MB",
            "target",
            "ours",
            "bz2 (theirs)",
            "raw floor",
            "bz2 ÷ ours",
            "ours ÷ floor",
            "file MB ours / bz2 / raw",
        ],
    )
    raw: dict[str, Any] = {}
    for target in targets:
        for mb in sizes_mb:
            try:
                result = _run_probe(python, probe, work / "data", target, mb, repeats, tools)
            except MeasureError as err:
                table.rows.append(["all", mb, target, _failed(err), "", "", "", "", ""])
                continue
            raw[f"{target}/{mb}"] = result
            for label, obj in result["objects"].items():
                cells = {codec: _from_raw(obj.get(codec)) for codec in ("ours", "bz2", "raw")}
                sizes = " / ".join(
                    f"{obj[c]['bytes'] / 1e6:.0f}" if isinstance(obj.get(c), dict) else "–"
                    for c in ("ours", "bz2", "raw")
                )
                table.rows.append(
                    [
                        label,
                        mb,
                        target,
                        _time(cells["ours"]),
                        _time(cells["bz2"]),
                        _time(cells["raw"]),
                        _ratio(cells["bz2"], cells["ours"]),
                        _ratio(cells["ours"], cells["raw"]),
                        sizes,
                    ]
                )
    measure.tables.append(table)
    measure.raw = raw
    return measure


def measure_checksum(
    work: Path,
    tools: Tools,
    pairs: int,
    mb: int = 50,
    targets: Sequence[str] = ("local", "gcs"),
) -> Measure:
    """Measure 3's save + load with vs without the integrity checksum, alternating, ``pairs`` times each."""
    measure = Measure(
        "checksum",
        "3b. Integrity checksum cost (issue 10)",
        "the checksum adds at most 5 % to measure 3 (CPU time, medians)",
        notes=[
            "The same `IntermediateDataset` with its integrity checksum (format KVC3: xxh3-64 per block of at "
            "most 1 MiB, large buffers starting their own block; every byte verified before unpickling) and "
            "with the codec swapped for the format before checksums (`bench/benchlib/unchecked_codec.py`), "
            f"alternating run by run in one process per target, {pairs} pairs after one warm-up pair. Wall "
            "time is what a step waits; CPU time (the probe process's user + system time) is less disturbed "
            "by other load on a shared machine, and is what the goal is judged on.",
        ],
    )
    python = REPO / ".venv" / "bin" / "python"
    probe = Path(__file__).with_name("data_probe.py")
    raw: dict[str, Any] = {}
    failures: list[str] = []
    for target in targets:
        try:
            folder, once = work / "checksum", Repeats(runs=1)
            raw[f"{target}/{mb}"] = _run_probe(
                python, probe, folder, target, mb, once, tools, pairs=pairs, only_pairs=True
            )
        except MeasureError as err:
            failures.append(f"{target}: {_failed(err)}")
    measure.tables.append(_checksum_table(raw))
    measure.notes.extend(failures)
    measure.raw = raw
    return measure


def _checksum_table(raw: Mapping[str, Any]) -> Table:
    table = Table(
        "Checksum cost: save + load with vs without the checksum (s) — min / median / max",
        [
            "object",
            "target",
            "with checksum",
            "without",
            "wall +% (median)",
            "CPU with / without (median s)",
            "CPU +%",
            "CPU +% save / load",
        ],
    )
    for key, result in raw.items():
        target = key.split("/")[0]
        for label, obj in result["objects"].items():
            pair = obj.get("checksum")
            if not pair:
                continue
            with_, without = Stats(pair["with"]["seconds"]), Stats(pair["without"]["seconds"])
            cpu_with, cpu_without = Stats(pair["with"]["cpu"]), Stats(pair["without"]["cpu"])
            table.rows.append(
                [
                    label,
                    target,
                    with_,
                    without,
                    f"{(with_.median / without.median - 1) * 100:+.1f} %",
                    f"{cpu_with.median:.3f} / {cpu_without.median:.3f}",
                    f"{(cpu_with.median / cpu_without.median - 1) * 100:+.1f} %",
                    _split_cost(pair),
                ]
            )
    return table


def _split_cost(pair: Mapping[str, Any]) -> str:
    """CPU +% of save and of load (medians), when the probe recorded them."""
    if "cpu_save" not in pair["with"]:
        return "–"
    parts = []
    for part in ("cpu_save", "cpu_load"):
        with_, without = Stats(pair["with"][part]), Stats(pair["without"][part])
        parts.append(f"{(with_.median / without.median - 1) * 100:+.1f} %")
    return " / ".join(parts)


def _run_probe(
    python: Path,
    probe: Path,
    work: Path,
    target: str,
    mb: int,
    repeats: Repeats,
    tools: Tools,
    pairs: int = 0,
    only_pairs: bool = False,
) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    out = work / f"probe-{target}-{mb}.json"
    args = [
        str(python),
        str(probe),
        "--mb",
        str(mb),
        "--repeat",
        str(repeats.runs),
        "--slow-repeat",
        str(repeats.slow_runs),
        "--slow-seconds",
        str(repeats.slow_seconds),
        "--out",
        str(out),
        "--checksum-pairs",
        str(pairs),
        *(["--checksum-only"] if only_pairs else []),
    ]
    if target == "local":
        (work / "local").mkdir(exist_ok=True)
        result = run_process([*args, "--root", str(work / "local")], work, bench_env(), timeout=3600)
    else:
        with StorageEmulator(REPO / ".venv" / "bin") as emulator:
            env = bench_env({"STORAGE_EMULATOR_HOST": emulator.url, "FSSPEC_GS_TOKEN": "anon"})
            result = run_process(
                [*args, "--root", "gs://bench-bucket/data", "--create-bucket"], work, env, timeout=3600
            )
    checked(result, f"data probe ({target}, {mb} MB)")
    return dict(json.loads(out.read_text()))


# --------------------------------------------------------------------------------------------------------
# 4. Steps after grouping


def find_example(repo: Path = REPO) -> Path | None:
    """The bundled example project (examples/*/ with a Kedro pyproject.toml), if there is one yet."""
    for pyproject in sorted((repo / "examples").glob("*/pyproject.toml")):
        if "[tool.kedro]" in pyproject.read_text():
            return pyproject.parent
    return None


SPACEFLIGHTS_PIPELINE = '''"""The spaceflights starter's graph (data processing + data science), with light node bodies."""

from kedro.pipeline import Pipeline, node


def preprocess(rows):
    return [dict(r, clean=True) for r in rows]


def table(shuttles, companies, reviews):
    return [dict(s, n=len(companies) + len(reviews)) for s in shuttles]


def split(rows, params):
    cut = int(len(rows) * params["test_size"])
    return rows[cut:], rows[:cut], [r["n"] for r in rows[cut:]], [r["n"] for r in rows[:cut]]


def train(x, y):
    return {"mean": sum(y) / max(len(y), 1)}


def evaluate(model, x, y):
    return {"r2": 1.0 - abs(model["mean"] - sum(y) / max(len(y), 1))}


def raw(n):
    return [{"id": i} for i in range(n)]


def register_pipelines():
    pipeline = Pipeline([
        node(raw, "params:companies", "companies", name="load_companies"),
        node(raw, "params:shuttles", "shuttles", name="load_shuttles"),
        node(raw, "params:reviews", "reviews", name="load_reviews"),
        node(preprocess, "companies", "preprocessed_companies", name="preprocess_companies_node"),
        node(preprocess, "shuttles", "preprocessed_shuttles", name="preprocess_shuttles_node"),
        node(table, ["preprocessed_shuttles", "preprocessed_companies", "reviews"], "model_input_table",
             name="create_model_input_table_node"),
        node(split, ["model_input_table", "params:model_options"], ["X_train", "X_test", "y_train", "y_test"],
             name="split_data_node"),
        node(train, ["X_train", "y_train"], "regressor", name="train_model_node"),
        node(evaluate, ["regressor", "X_test", "y_test"], "metrics", name="evaluate_model_node"),
    ])
    return {"__default__": pipeline}
'''

SPACEFLIGHTS_CATALOG = """
model_input_table: {type: json.JSONDataset, filepath: data/03_primary/model_input_table.json}
regressor: {type: pickle.PickleDataset, filepath: data/06_models/regressor.pickle}
metrics: {type: json.JSONDataset, filepath: data/08_reporting/metrics.json}
"""

AUTO_CONFIG: dict[str, Any] = {**OURS_CONFIG, "run_config": {**OURS_CONFIG["run_config"], "grouping": {"cls": "auto"}}}


def _spaceflights_like(parent: Path) -> Path:
    """A `kedro new` project (no example: the starters live on GitHub) given the spaceflights graph."""
    parent.mkdir(parents=True, exist_ok=True)
    kedro = REPO / ".venv" / "bin" / "kedro"
    new = run_process([str(kedro), "new", "--name", "spaceflights", "--tools", "none", "--example", "n",
                       "--telemetry", "no"], parent, bench_env(), timeout=300)
    checked(new, "kedro new")
    project = parent / "spaceflights"
    (project / "src" / "spaceflights" / "pipeline_registry.py").write_text(SPACEFLIGHTS_PIPELINE)
    (project / "conf" / "base" / "catalog.yml").write_text(SPACEFLIGHTS_CATALOG.lstrip())
    (project / "conf" / "base" / "parameters.yml").write_text(
        "companies: 50\nshuttles: 80\nreviews: 30\nmodel_options: {test_size: 0.2}\n"
    )
    (project / "conf" / "base" / "vertexai.yml").write_text(yaml.safe_dump(AUTO_CONFIG))
    settings = project / "src" / "spaceflights" / "settings.py"  # the bench venv has kedro-mlflow; this project not
    settings.write_text(settings.read_text() + '\nDISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow", "kedro_mlflow")\n')
    return project


def _probe(project: Path, measured: bool, tag_width: int) -> dict[str, Any]:
    python = REPO / ".venv" / "bin" / "python"
    probe = Path(__file__).with_name("grouping_probe.py")
    cmd = [str(python), str(probe), str(project), *([] if measured else ["--no-measurements"])]
    if tag_width:
        cmd += ["--tag-width", str(tag_width)]
    result = checked(run_process(cmd, project, bench_env(), timeout=900), f"grouping probe of {project.name}")
    return json.loads(result.output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _image_sizes(work: Path, example: Path) -> dict[str, float | str]:
    """MB of the example's image without kedro-vertex-ci's dependencies, with the runtime list, with all."""
    env = bench_env()
    up = run_process(["bash", str(REPO / "scripts" / "docker-engine.sh"), "up"], work, env, timeout=1800)
    found = re.search(r"^export DOCKER_HOST=(\S+)$", up.output, re.MULTILINE)
    if up.returncode != 0 or not found:
        return {"error": f"no Docker engine: {last_lines(up.output)}"}
    env["DOCKER_HOST"] = found.group(1)
    sizes: dict[str, float | str] = {}
    for mode in ("none", "runtime", "full"):
        tag = f"kvc-bench-example-{mode}:latest"
        built = run_process(["bash", str(REPO / "scripts" / "build-project-image.sh"), str(example), tag], work,
                            {**env, "KVC_INSTALL": mode}, timeout=3600)
        if built.returncode != 0:
            sizes[mode] = f"failed: {last_lines(built.output)}"
            continue
        inspect = run_process(["docker", "image", "inspect", "-f", "{{.Size}}", tag], work, env, timeout=60)
        sizes[mode] = int(inspect.output.strip()) / 1e6
    return sizes


def _placed_cells(auto: dict[str, Any], bound: dict[str, Any]) -> list[str]:
    """The bound under the placement rule and auto's ratio to it (probes before it was added have none)."""
    placed = bound.get("placed_wall")
    if not placed:
        return ["", ""]
    return [f"{placed / 60:.1f}", f"{auto['wall'] / placed:.2f}×"]


def measure_grouping(
    work: Path, tools: Tools, repeats: Repeats, n: int = 100, width: int = 10, big: int = 1000,
    images: bool = True,
    examples: bool = True,
) -> Measure:
    measure = Measure(
        "grouping",
        "4. Steps, estimated wall and billed time on Vertex after grouping",
        "with measured durations auto ≤ 1.15× the lower bound on all four graphs and ≥ 60% fewer steps than "
        "identity on the example; without measurements auto ≤ the best of identity, tag and single-step, and "
        "≤ 1.05× the exhaustive optimum where searchable (≤ 12 nodes); compile of 1000 nodes with auto ≤ 2 s; "
        "the runtime adds ≤ 40 MB to a project image",
        notes=[
            "The cost model of `kedro-vertex-ci plan` (kedro_vertex_ci/costmodel.py) with its defaults: step start "
            "S = 90 s, P = 8 steps at once, unmeasured node 10 s. Estimated wall = list schedule of the step DAG; "
            "lower bound = max(S + critical path of node durations, total work / P); *with placements* = the "
            "same bound when each change of placement along a chain starts another step that pays S (no plan "
            "the placement rule allows beats it; equal to the lower bound when all nodes share one placement). "
            "*Measured*: node durations "
            "from one `run-local` of each project (on this machine; Vertex machines differ, see duration_scale). "
            "*None*: every node at the default.",
            "Graphs: the example (12 nodes, three placements: default, the `reporting` tag's 500m CPU and "
            "`train_model`'s 2 CPUs, which auto never mixes); a `kedro new` project given the spaceflights "
            "starter's 9-node graph (`kedro new --example` fetches the starter from GitHub, unreachable here); "
            f"layered graphs of {n} and {big} nodes (width {width}, each node reads two of the layer above). "
            f"`tag` on the layered graphs: one `group.layer_<k>` per layer; `single` = all nodes in one step "
            "(on the example it breaks the placement rule, so it is a reference there, left out of 'best other').",
        ],
    )
    steps_table = Table(
        "Steps / estimated wall (min) — measured durations",
        ["pipeline", "nodes", "identity", "tag", "single", "auto", "lower bound", "auto ÷ bound",
         "bound with placements", "auto ÷ that"],
    )
    none_table = Table(
        "Steps / estimated wall (min) — no measurements (every node 10 s)",
        ["pipeline", "nodes", "identity", "tag", "single", "auto", "best other", "exhaustive optimum"],
    )
    example = find_example()
    root = work / "grouping"
    projects: list[tuple[str, Path, int]] = []
    if examples and example is not None:
        copy = root / "example" / example.name
        if not copy.exists():
            shutil.copytree(example, copy, ignore=shutil.ignore_patterns("data", ".kedro-vertex-ci", "*.egg-info"))
        projects.append((f"example ({example.name})", copy, 0))
    try:
        if examples:
            projects.append(("spaceflights-like (`kedro new`)", _spaceflights_like(root / "new"), 0))
    except MeasureError as err:
        none_table.rows.append(["spaceflights-like", "", f"failed: {err}", "", "", "", "", ""])
    for size in (n, big):
        project = make_project(root, f"layered{size}", "layered", size, width=width, vertexai=AUTO_CONFIG)
        projects.append((f"layered {size} (width {width})", project, width))
    cli = REPO / ".venv" / "bin" / "kedro-vertex-ci"

    def cell(plan: dict[str, Any]) -> str:
        return f"{plan['steps']} / {plan['wall'] / 60:.1f}"

    for label, project, tag_width in projects:
        try:
            before = _probe(project, False, tag_width)
            run = run_process([str(cli), "run-local", "--json"], project, bench_env(), timeout=1800)
            checked(run, f"run-local of {label}")
            after = _probe(project, True, tag_width)
        except MeasureError as err:
            steps_table.rows.append([label, "", f"failed: {err}", "", "", "", "", "", "", ""])
            continue
        measure.raw[label] = {"none": before, "measured": after}
        p, bound = after["plans"], after["bound"]
        steps_table.rows.append([label, after["nodes"], *(cell(p[k]) for k in ("identity", "tag", "single", "auto")),
                                 f"{bound['wall'] / 60:.1f}", f"{p['auto']['wall'] / bound['wall']:.2f}×",
                                 *_placed_cells(p["auto"], bound)])
        q = before["plans"]
        valid = ("identity", "tag", "single") if before["single_valid"] else ("identity", "tag")
        best = min(q[k]["wall"] for k in valid)
        optimum = before.get("optimum")
        none_table.rows.append([label, before["nodes"], *(cell(q[k]) for k in ("identity", "tag", "single", "auto")),
                                f"{best / 60:.1f}",
                                f"{optimum['steps']} / {optimum['wall'] / 60:.1f}" if optimum else "too large to search"])
        if before["nodes"] >= big:  # with the durations run-local just measured: the normal path
            try:
                timed, _ = repeat(_compile_ours(project, tools), repeats, "compile with auto")
            except MeasureError as err:
                measure.raw[label]["compile_error"] = str(err)
            else:
                measure.raw[label]["compile_seconds"] = sorted(timed.values)
                measure.raw[label]["compile_cpu_seconds"] = sorted(timed.cpu)
    measure.tables += [steps_table, none_table]
    big_label = next((label for label in measure.raw if label.startswith(f"layered {big}")), None)
    if big_label and measure.raw[big_label].get("compile_seconds"):
        times, cpu = measure.raw[big_label]["compile_seconds"], measure.raw[big_label]["compile_cpu_seconds"]
        measure.tables.append(Table(
            f"Compile with auto, {big} nodes, whole process (s): wall, then CPU (user + system)",
            ["", "min", "median", "max"],
            [[label, f"{v[0]:.2f}", f"{statistics.median(v):.2f}", f"{v[-1]:.2f}"]
             for label, v in (("wall", times), ("CPU", cpu))]))
    if images and examples and example is not None:
        sizes = _image_sizes(work, example)
        measure.raw["image_sizes_mb"] = sizes
        rows = [[mode, f"{size:.0f}" if isinstance(size, float) else size] for mode, size in sizes.items()]
        measure.tables.append(Table("Example image size (MB) by how kedro-vertex-ci is installed", ["install", "MB"], rows))
    return measure


# --------------------------------------------------------------------------------------------------------
# 5. CLI start


def measure_cli(work: Path, tools: Tools, repeats: Repeats) -> Measure:
    measure = Measure(
        "cli",
        "5. CLI start",
        "`kedro-vertex-ci --help` ≤ 0.5 s; our plugin adds ≤ 0.1 s to `kedro --help`",
        notes=[
            "`kedro --help` inside a generated project, where Kedro loads every installed plugin's commands. "
            f"Without plugin: {tools.plain_label}; with ours: {tools.ours_label}; with theirs: "
            "bench/.venv-kvai (kedro-vertexai 1.0.0 and its dependencies). Same Kedro version in all three.",
        ],
    )
    project = make_project(work / "cli", "clihelp", "chain", 3, vertexai=OURS_CONFIG)
    rows: list[list[Cell]] = []

    def timed(cmd: list[str], env: dict[str, str]) -> Stats | str:
        try:
            return repeat(lambda: run_process(cmd, project, env), repeats, " ".join(cmd[-2:]))[0]
        except MeasureError as err:
            return _failed(err)

    ours_env = _ours_env(tools)
    ours_help = timed([str(_kvc(tools)), "--help"], ours_env)
    plain = timed([str(tools.plain / "kedro"), "--help"], with_path(tools.plain, bench_env()))
    with_ours = timed([str(tools.ours / "kedro"), "--help"], ours_env)
    ours_group = timed([str(tools.ours / "kedro"), "vertex-ci", "--help"], ours_env)
    theirs = NOT_INSTALLED
    if tools.theirs is not None:
        theirs = timed([str(tools.theirs / "kedro"), "--help"], _theirs_env(tools))
    rows.append(["`kedro-vertex-ci --help`", _time(ours_help), ""])
    rows.append(["`kedro --help`, Kedro alone", _time(plain), ""])
    rows.append(["`kedro --help`, with kedro-vertex-ci", _time(with_ours), _diff(with_ours, plain)])
    rows.append(["`kedro --help`, with kedro-vertexai", _time(theirs), _diff(theirs, plain)])
    rows.append(["`kedro vertex-ci --help`", _time(ours_group), _diff(ours_group, plain)])
    measure.tables.append(
        Table("CLI start (s) — min / median / max", ["command", "time", "minus Kedro alone"], rows)
    )
    measure.raw = {
        "ours_help": _raw(ours_help),
        "plain": _raw(plain),
        "with_ours": _raw(with_ours),
        "with_theirs": _raw(theirs),
        "ours_group": _raw(ours_group),
    }
    return measure


# --------------------------------------------------------------------------------------------------------
# 6. Local dry run


def measure_dry_run(work: Path, tools: Tools, repeats: Repeats, example: Path | None = None) -> Measure:
    measure = Measure(
        "dryrun",
        "6. Local dry run of the example",
        "`kedro-vertex-ci run-local` ≤ 2× plain `kedro run`",
        notes=[
            "Both in the same environment, in a copy of the project. kedro-vertexai has no local "
            "run of its compiled spec, so there is no 'theirs' here.",
            "`kedro new` + spaceflights-like: a project made by `kedro new` (no tools, no example) given the "
            "example's pipelines, catalog and parameters, and the `conf/logging.yml` of Kedro's older starters "
            "(console + `info.log` file handler), as a user's project would be.",
        ],
    )
    table = Table("Whole pipeline (s) — min / median / max", ["project", "command", "time", "÷ kedro run"])
    measure.tables.append(table)
    example = example or find_example()
    if example is None:
        table.rows.append(["example", "both", "not measured yet (no example project in examples/)", ""])
        return measure
    env = _ours_env(tools)
    projects = {"example": _copy_project(example, work / "dryrun" / example.name)}
    new_label = "`kedro new` + spaceflights-like"
    if not (example / "src" / example.name / "pipelines").is_dir():
        table.rows.append([new_label, "both", "not measured (the example has no src/<package>/pipelines)", ""])
    else:
        try:
            projects[new_label] = _kedro_new_spaceflights(work / "dryrun-new", tools, example, env)
        except (MeasureError, OSError) as err:
            table.rows.append([new_label, "both", _failed(err), ""])
    measure.raw = {"example": example.name}
    for label, copy in projects.items():

        def timed(cmd: list[str], copy: Path = copy) -> Stats | str:
            try:
                return repeat(lambda: run_process(cmd, copy, env, timeout=1800), repeats, " ".join(cmd[-2:]))[
                    0
                ]
            except MeasureError as err:
                return _failed(err)

        plain = timed([str(tools.ours / "kedro"), "run"])
        missing = missing_command(tools, "run-local")
        ours = missing or timed([str(_kvc(tools)), "run-local"])
        table.rows.append([label, "`kedro run`", _time(plain), ""])
        table.rows.append([label, "`kedro-vertex-ci run-local`", _time(ours), _ratio(ours, plain)])
        key = "" if label == "example" else "kedro_new_"
        measure.raw[f"{key}kedro_run"] = _raw(plain)
        measure.raw[f"{key}run_local"] = _raw(ours)
    return measure


_STARTER_LOGGING = """version: 1
disable_existing_loggers: False
formatters:
  simple:
    format: "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
handlers:
  console:
    class: logging.StreamHandler
    level: INFO
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
    delay: True
loggers:
  kedro:
    level: INFO
root:
  handlers: [console, info_file_handler]
"""


def _copy_project(source: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(
        source,
        target,
        ignore=shutil.ignore_patterns(".kedro-vertex-ci", "__pycache__", "*.egg-info", "info.log*"),
    )
    return target


def _kedro_new_spaceflights(work: Path, tools: Tools, example: Path, env: Mapping[str, str]) -> Path:
    """``kedro new`` (offline default starter), then the example's pipelines and config moved in."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    cmd = [str(tools.ours / "kedro"), "new", "--name", "sf_new", "--tools", "none", "--example", "n"]
    result = subprocess.run(
        [*cmd, "--telemetry", "no"], cwd=work, env=dict(env), capture_output=True, text=True
    )
    project = work / "sf-new"
    if result.returncode != 0 or not project.is_dir():
        raise MeasureError(f"kedro new failed: {result.stderr.strip()[-300:]}")
    package = project / "src" / "sf_new"
    shutil.copytree(example / "src" / example.name / "pipelines", package / "pipelines", dirs_exist_ok=True)
    for name in ("catalog.yml", "parameters.yml", "vertexai.yml"):
        shutil.copy2(example / "conf" / "base" / name, project / "conf" / "base" / name)
    (project / "conf" / "logging.yml").write_text(_STARTER_LOGGING)
    settings = (
        package / "settings.py"
    )  # as the example: the bench venv has kedro-mlflow, this project no mlflow.yml
    settings.write_text(
        settings.read_text() + '\nDISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow", "kedro_mlflow")\n'
    )
    return project


# --------------------------------------------------------------------------------------------------------
# Cell helpers


def _time(value: Any) -> Cell:
    if isinstance(value, tuple):
        return value[0]
    return value


def _cpu(value: Any) -> Cell:
    stats = _time(value)
    return f"{statistics.median(stats.cpu):.2f}" if isinstance(stats, Stats) and stats.cpu else "–"


def _rss(value: Any) -> Cell:
    if isinstance(value, tuple):
        return value[1]
    return "" if value == NOT_INSTALLED or str(value).startswith(("not measured", "failed")) else value


def _runs(value: Any) -> str:
    stats = _time(value)
    return str(len(stats.values)) if isinstance(stats, Stats) else "–"


def _median(value: Any) -> float | None:
    stats = _time(value)
    return stats.median if isinstance(stats, Stats) else None


def _ratio(numerator: Any, denominator: Any) -> Cell:
    top, bottom = _median(numerator), _median(denominator)
    if top is None or bottom is None or bottom == 0:
        return "–"
    return f"{top / bottom:.2f}×"


def _diff(value: Any, base: Any) -> Cell:
    top, bottom = _median(value), _median(base)
    if top is None or bottom is None:
        return "–"
    return f"{top - bottom:+.2f} s"


def _raw(value: Any) -> Any:
    if isinstance(value, tuple):
        return {"time": value[0].to_json(), "rss": value[1].to_json()}
    if isinstance(value, Stats):
        return {"time": value.to_json()}
    return value


def _from_raw(value: Any) -> Stats | str:
    if isinstance(value, dict) and "seconds" in value:
        return Stats(list(value["seconds"]))
    return str(value) if value is not None else "–"


def _raw_rss(value: Any) -> Cell:
    if isinstance(value, dict) and value.get("rss", {}).get("values"):
        return Stats(list(value["rss"]["values"]), unit="MB")
    return value if isinstance(value, str) else "–"


def _raw_rss_ratio(theirs: Any, ours: Any) -> Cell:
    return _ratio(_raw_rss(theirs), _raw_rss(ours))


def python_version(bin_dir: Path) -> str:
    result = subprocess.run(
        [str(bin_dir / "python"), "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def package_version(bin_dir: Path | None, package: str) -> str:
    if bin_dir is None:
        return NOT_INSTALLED
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    result = subprocess.run([str(bin_dir / "python"), "-c", code], capture_output=True, text=True)
    return result.stdout.strip() or "not installed"


__all__ = [
    "BENCH",
    "Measure",
    "Table",
    "find_example",
    "measure_cli",
    "measure_compile",
    "measure_data",
    "measure_dry_run",
    "measure_grouping",
    "measure_memory",
    "measure_step_start",
    "missing_command",
    "package_version",
    "python_version",
    "step_command",
]
