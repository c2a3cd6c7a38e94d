"""Measure 8: the Docker dry run — building the project image locally, the no-op check, and the run itself.

Needs the offline engine (scripts/docker-engine.sh) and the example's dependency image built offline by
scripts/build-project-image.sh (the example's Dockerfile is built FROM it through ``--build-arg BASE_IMAGE``,
the same substitution ``make demo-docker`` uses). Without an engine the rows say so instead of a number.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from .measures import Measure, Table, _failed, _kvc, _ours_env, _ratio, _raw, _time, find_example
from .procs import REPO, MeasureError, Repeats, Stats, Tools, checked, repeat, run_process

DEPS_IMAGE = "kvc-bench/spaceflights-lite-deps:latest"


def _engine() -> dict[str, str] | str:
    """``DOCKER_HOST`` of the offline engine, or the reason there is none."""
    up = subprocess.run(["bash", str(REPO / "scripts" / "docker-engine.sh"), "up"], capture_output=True,
                        text=True, timeout=1800, check=False)
    match = re.search(r"^export DOCKER_HOST=(\S+)$", up.stdout, re.MULTILINE)
    if up.returncode != 0 or not match:
        return f"not measured: no Docker engine ({up.stderr.strip().splitlines()[-1:]})"
    return {"DOCKER_HOST": match.group(1)}


def measure_docker(work: Path, tools: Tools, repeats: Repeats) -> Measure:
    measure = Measure(
        "docker",
        "8. Docker dry run of the example",
        "`run-local --runner docker` rebuilds nothing when the project is unchanged (the check costs well under a "
        "second of the run); the Docker dry run compared with the subprocess one",
        notes=[
            "Cold build: `docker build --no-cache` of the exact context run-local sends (the Cloud Build "
            "context), FROM the example's offline dependency image, so it measures the project layers, not "
            "downloading Python packages. No-op check: timed alone (a process that hashes the context and asks "
            "the engine for the tag), and as `run-local --runner docker` (auto) over the same run with "
            "`--build never --image <tag>`."
        ],
    )
    table = Table("Seconds — min / median / max", ["what", "time", "ratio"])
    measure.tables.append(table)
    engine = _engine()
    example = find_example()
    if isinstance(engine, str) or example is None:
        table.rows.append(["all", engine if isinstance(engine, str) else "no example", ""])
        return measure
    env = {**_ours_env(tools), **engine}
    copy = work / "docker" / example.name
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(example, copy, ignore=shutil.ignore_patterns(".kedro-vertex-ci", "__pycache__", "*.egg-info"))
    try:
        checked(run_process(["bash", str(REPO / "scripts" / "build-project-image.sh"), str(copy), DEPS_IMAGE], copy,
                            env, timeout=3600), "dependency image")
    except MeasureError as err:
        table.rows.append(["all", _failed(err), ""])
        return measure
    build_arg = f"BASE_IMAGE={DEPS_IMAGE}"
    kvc = str(_kvc(tools))

    def timed(cmd: list[str], what: str, times: Repeats = repeats) -> Stats | str:
        try:
            return repeat(lambda: run_process(cmd, copy, env, timeout=3600), times, what)[0]
        except MeasureError as err:
            return _failed(err)

    tag = _tag(copy, build_arg, tools, env)
    cold = timed(["sh", "-c", f"{_tar_command(tools)} | docker build --no-cache -q --build-arg {build_arg} -t {tag} -"],
                 "cold build")
    check = timed([str(tools.ours / "python"), "-c", _NO_OP_CHECK, build_arg], "no-op image check")
    auto = timed([kvc, "run-local", "--runner", "docker", "--build-arg", build_arg], "docker dry run (auto)")
    fixed = timed([kvc, "run-local", "--runner", "docker", "--build", "never", "--image", tag], "docker dry run")
    plain = timed([kvc, "run-local"], "subprocess dry run")
    table.rows += [
        ["cold image build (project layers, no cache)", _time(cold), ""],
        ["no-op check, image up to date (whole process: hash the context, ask the engine)", _time(check), ""],
        ["`run-local --runner docker`, image up to date (auto)", _time(auto), _ratio(auto, fixed)],
        ["`run-local --runner docker --build never --image TAG`", _time(fixed), ""],
        ["`run-local` (subprocess, preloaded)", _time(plain), ""],
        ["docker dry run ÷ subprocess dry run", "", _ratio(fixed, plain)],
    ]
    measure.raw = {"no_op_check": _raw(check), "cold_build": _raw(cold), "auto": _raw(auto), "never": _raw(fixed), "subprocess": _raw(plain)}
    return measure


_NO_OP_CHECK = (
    "import sys; from pathlib import Path; from kedro_vertex_ci.local.imagebuild import ensure_image; "
    "k, _, v = sys.argv[1].partition('='); "
    "assert not ensure_image(Path('.'), 'auto', {k: v}, Path('/dev/null')).built"
)


def _tag(project: Path, build_arg: str, tools: Tools, env: dict[str, str]) -> str:
    """The context-hash tag run-local computes for this project and build argument."""
    code = ("import sys; from pathlib import Path; from kedro_vertex_ci.local.imagebuild import build_context; "
            "k, _, v = sys.argv[2].partition('='); print(build_context(Path(sys.argv[1]), {k: v}).tag)")
    proc = subprocess.run([str(tools.ours / "python"), "-c", code, str(project), build_arg], capture_output=True,
                          text=True, env=env, check=True)
    return proc.stdout.strip()


def _tar_command(tools: Tools) -> str:
    """A shell command printing the exact context tarball run-local pipes to ``docker build -``."""
    code = ("import sys; from pathlib import Path; from kedro_vertex_ci.gcp.source import collect_files, "
            "make_tarball; p = Path('.'); sys.stdout.buffer.write(make_tarball(p, collect_files(p)))")
    return f"{tools.ours / 'python'} -c \"{code}\""
