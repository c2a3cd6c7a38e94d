"""Run whole processes and time them; where the three tool environments live; summary statistics."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
NOT_INSTALLED = "baseline not installed"


class MeasureError(RuntimeError):
    """A command the measure needs failed: the measure reports it instead of a number."""


@dataclass(frozen=True)
class Tools:
    """Which executables each side of a comparison runs.

    ``ours``: the venv whose ``kedro-vertex-ci`` is measured; ``plain``: Kedro alone (the floor);
    ``theirs``: the venv with kedro-vertexai 1.0.0, or None when it is not installed.
    """

    ours: Path
    plain: Path
    theirs: Path | None
    ours_label: str
    plain_label: str

    @classmethod
    def discover(cls, bench: Path = BENCH, repo: Path = REPO) -> Tools:
        """Prefer the bench venvs made by ``setup_baseline.sh``; fall back to the dev ``.venv``."""
        dev = repo / ".venv" / "bin"
        kvc = bench / ".venv-kvc"
        plain = bench / ".venv-plain"
        kvai = bench / ".venv-kvai"
        ours, ours_label = (
            (kvc / "bin", "bench/.venv-kvc (Kedro + kedro-vertex-ci and its dependencies)")
            if _installed(kvc)
            else (dev, ".venv (the dev environment)")
        )
        floor, plain_label = (
            (plain / "bin", "bench/.venv-plain (Kedro only)") if _installed(plain) else (ours, ours_label)
        )
        return cls(ours, floor, kvai / "bin" if _installed(kvai) else None, ours_label, plain_label)


def _installed(venv: Path) -> bool:
    return (venv / ".installed").exists() and (venv / "bin" / "python").exists()


def bench_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every measured process gets: no telemetry, no prompts, nothing off this machine.

    ``PYTHONDONTWRITEBYTECODE`` is dropped: inherited from the caller's shell, it kept every run from writing
    a ``.pyc``, so each timed run recompiled the source of every module it imported (for a compile, ~1.3 s
    CPU of Kedro's and our dependencies), which no pip-installed environment does; the warm-up run of
    :func:`repeat` is there to write them.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        {
            "KEDRO_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "1",
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
            "NO_GCE_CHECK": "True",
            "GCE_METADATA_HOST": "127.0.0.1:9",
            "GCE_METADATA_IP": "127.0.0.1:9",
            "GOOGLE_CLOUD_PROJECT": "bench-project",
            "PYTHONWARNINGS": "ignore",
            "COLUMNS": "120",
        }
    )
    env.update(extra or {})
    return env


def with_path(bin_dir: Path, env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with ``bin_dir`` first on PATH, so ``kedro`` inside shell strings is that venv's."""
    result = dict(env)
    result["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    result["VIRTUAL_ENV"] = str(bin_dir.parent)
    return result


@dataclass(frozen=True)
class ProcResult:
    seconds: float
    max_rss_mb: float
    returncode: int
    output: str
    cpu_seconds: float = 0.0  # user + system time of the process and its reaped children (wait4)


def run_process(cmd: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float = 900.0) -> ProcResult:
    """Run ``cmd`` to completion; wall time, CPU time and peak RSS (of it and its reaped children) via ``wait4``.

    On a shared machine the wall time grows with the load, the CPU time much less: read the CPU time when
    the load average exceeds the core count."""
    log = cwd / ".bench-last.log" if cwd.is_dir() else Path(os.devnull)
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=dict(env), stdout=out, stderr=subprocess.STDOUT)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    output = log.read_text(errors="replace") if log != Path(os.devnull) else ""
    return ProcResult(seconds, usage.ru_maxrss / 1024, proc.returncode, output, usage.ru_utime + usage.ru_stime)


def checked(result: ProcResult, what: str) -> ProcResult:
    if result.returncode != 0:
        raise MeasureError(f"{what} exited {result.returncode}: {last_lines(result.output)}")
    return result


def last_lines(text: str, n: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-n:])[-400:]


@dataclass
class Stats:
    """Repeated timings of one thing (seconds, or MB for memory)."""

    values: list[float] = field(default_factory=list)
    unit: str = "s"
    cpu: list[float] = field(default_factory=list)  # CPU seconds of the same runs, where measured

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "values": self.values,
            "unit": self.unit,
            "min": self.min,
            "median": self.median,
            "max": self.max,
        }
        if self.cpu:
            data["cpu"] = self.cpu
            data["cpu_median"] = statistics.median(self.cpu)
        return data


@dataclass(frozen=True)
class Repeats:
    """How often to repeat: ``runs`` normally, ``slow_runs`` once one run took over ``slow_seconds``."""

    runs: int = 5
    slow_runs: int = 3
    slow_seconds: float = 20.0
    warmup: bool = True
    keep_warmup_seconds: float = 5.0

    def count(self, first_seconds: float) -> int:
        return self.slow_runs if first_seconds > self.slow_seconds else self.runs


def repeat(run_once: Callable[[], ProcResult], repeats: Repeats, what: str) -> tuple[Stats, Stats]:
    """Time ``run_once`` after one warm-up run (disk caches and .pyc files warm for both tools alike).

    A warm-up slower than ``keep_warmup_seconds`` counts as a sample: against seconds the cache effect is
    noise, and repeating it would cost minutes. Returns wall-time (each run's CPU time in ``cpu``) and peak-RSS statistics; raises
    :class:`MeasureError` when a run fails.
    """
    first = checked(run_once(), what)
    times, rss = Stats(), Stats(unit="MB")
    if not repeats.warmup or first.seconds > repeats.keep_warmup_seconds:
        times.values.append(first.seconds)
        times.cpu.append(first.cpu_seconds)
        rss.values.append(first.max_rss_mb)
    total = repeats.count(first.seconds)
    while len(times.values) < total:
        result = checked(run_once(), what)
        times.values.append(result.seconds)
        times.cpu.append(result.cpu_seconds)
        rss.values.append(result.max_rss_mb)
    return times, rss
