"""Run every benchmark of issue 6 and write docs/benchmarks.md, docs/bench_compile.png and bench/results/*.json.

Usage (``make bench`` runs the first):
  .venv/bin/python bench/run_all.py            # default sizes, ~15 min on 2 cores (first run also builds venvs)
  .venv/bin/python bench/run_all.py --full     # 5 runs of everything, and 500 MB data objects
  .venv/bin/python bench/run_all.py --quick    # tiny sizes, one run: checks the harness, not for publishing
  .venv/bin/python bench/run_all.py --only compile,cli --no-setup
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import measures as m  # noqa: E402
from benchlib.action_bench import measure_action  # noqa: E402
from benchlib.procs import BENCH, REPO, Repeats, Tools  # noqa: E402
from benchlib.reading import reading, shared_machine_caveat  # noqa: E402
from benchlib.report import plot_compile, write_raw, write_report  # noqa: E402

ORDER = ("compile", "step", "data", "checksum", "grouping", "cli", "dryrun", "memory", "docker", "action")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="5 runs everywhere and 500 MB data objects")
    size.add_argument("--quick", action="store_true", help="tiny sizes, one run (harness check only)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(ORDER)}")
    parser.add_argument("--no-setup", action="store_true", help="do not run bench/setup_baseline.sh")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="report path (default docs/benchmarks.md; with --quick bench/results/quick.md)",
    )
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp folder)")
    return parser.parse_args(argv)


def setup_baseline() -> str:
    """Build the bench venvs (idempotent). A failure is reported, and the run goes on without them."""
    result = subprocess.run(["bash", str(BENCH / "setup_baseline.sh")], capture_output=True, text=True)
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        print(
            f"bench: setup_baseline.sh failed, measuring without the missing venvs: {tail}", file=sys.stderr
        )
        return f"setup_baseline.sh failed: {tail}"
    return "ok"


def load_average() -> str:
    """The 1/5/15-minute load averages: numbers above the core count mean the timings shared the CPU."""
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine_info(tools: Tools) -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return {
        "date (UTC)": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "cores": str(os.cpu_count()),
        "CPU": cpu,
        "memory": memory,
        "OS": platform.platform(),
        "Python (ours / theirs)": f"{m.python_version(tools.ours)} / "
        + (m.python_version(tools.theirs) if tools.theirs else m.NOT_INSTALLED),
        "kedro-vertex-ci": f"{m.package_version(tools.ours, 'kedro-vertex-ci')} (commit {commit.stdout.strip()})",
        "kedro-vertexai": m.package_version(tools.theirs, "kedro-vertexai"),
        "Kedro (ours / plain / theirs)": " / ".join(
            m.package_version(b, "kedro") for b in (tools.ours, tools.plain, tools.theirs)
        ),
        "kfp (ours / theirs)": f"{m.package_version(tools.ours, 'kfp')} / {m.package_version(tools.theirs, 'kfp')}",
        "load average at start (1/5/15 min)": load_average(),
        "ours runs from": tools.ours_label,
        "floor runs from": tools.plain_label,
    }


def run_measures(work: Path, tools: Tools, only: set[str], full: bool, quick: bool) -> list[m.Measure]:
    if quick:
        repeats = Repeats(runs=1, slow_runs=1, warmup=False)
        sizes, data_mb = (10, 50), (2,)
    else:
        repeats = Repeats(runs=5, slow_runs=5 if full else 3, slow_seconds=20.0)
        sizes, data_mb = (10, 100, 500, 1000), ((50, 500) if full else (50,))
    results: list[m.Measure] = []
    compile_result: m.Measure | None = None
    for key in ORDER:
        if only and key not in only:
            continue
        start = time.perf_counter()
        print(f"bench: {key} ...", file=sys.stderr, flush=True)
        if key == "compile":
            compile_result = m.measure_compile(work, tools, repeats, sizes=sizes, auto_n=max(sizes))
            result = compile_result
        elif key == "step":
            result = m.measure_step_start(work, tools, repeats)
        elif key == "data":
            # bz2 needs many seconds per 50 MB object: past 5 s a codec gets the slow run count.
            data_repeats = dataclasses.replace(repeats, slow_seconds=min(repeats.slow_seconds, 5.0))
            result = m.measure_data(work, tools, data_repeats, sizes_mb=data_mb)
        elif key == "checksum":
            # The difference is a few ms in ~25-60 ms: many alternating pairs, medians of CPU time.
            result = m.measure_checksum(work, tools, pairs=1 if quick else 41, mb=data_mb[0])
        elif key == "grouping":
            result = m.measure_grouping(work, tools, repeats)
        elif key == "cli":
            result = m.measure_cli(work, tools, repeats)
        elif key == "dryrun":
            result = m.measure_dry_run(work, tools, repeats)
        elif key == "docker":
            from benchlib.docker_probe import measure_docker

            result = measure_docker(work, tools, repeats)
        elif key == "memory":
            result = m.measure_memory(work, tools, repeats, n=max(sizes), compile_result=compile_result)
        else:
            result = measure_action(work, tools, runs=repeats.runs, example=m.find_example(), install=not quick)
        print(f"bench: {key} done in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.out is None:
        args.out = BENCH / "results" / "quick.md" if args.quick else REPO / "docs" / "benchmarks.md"
    only = {item.strip() for item in args.only.split(",") if item.strip()}
    unknown = only - set(ORDER)
    if unknown:
        print(f"bench: unknown measure(s) {sorted(unknown)}; choose from {', '.join(ORDER)}", file=sys.stderr)
        return 2
    setup = "skipped (--no-setup)" if args.no_setup else setup_baseline()
    tools = Tools.discover()
    machine = machine_info(tools)
    machine["bench venv setup"] = setup
    with tempfile.TemporaryDirectory(prefix="kvc-bench-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = run_measures(work, tools, only, args.full, args.quick)
    mode = "--full" if args.full else "--quick" if args.quick else "default"
    machine["load average at end (1/5/15 min)"] = load_average()
    machine["mode"] = mode
    plot_name = "bench_compile.png"
    compile_result = next((r for r in results if r.key == "compile"), None)
    plot = None
    if compile_result is not None and plot_compile(compile_result, args.out.parent / plot_name):
        plot = plot_name
    command = "make bench" if mode == "default" else f"python bench/run_all.py {mode}"
    loads = [machine["load average at start (1/5/15 min)"], machine["load average at end (1/5/15 min)"]]
    caveat = shared_machine_caveat(loads, os.cpu_count() or 1)
    write_report(args.out, results, machine, caveat + reading(results), plot, command)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for name in (f"{stamp}.json", "latest.json"):
        write_raw(BENCH / "results" / name, results, machine)
    print(f"bench: wrote {args.out} and bench/results/{stamp}.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
