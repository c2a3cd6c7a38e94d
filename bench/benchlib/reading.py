"""The "reading" of a benchmark run: each goal of issue 6 checked against the measured medians.

Generated from the numbers, so the text can never claim more than the tables show: a goal is *met*,
*missed* (said plainly, with the numbers) or *not measured*.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from .measures import AUTO_SHAPE, Measure


def _median(value: Any, key: str = "time") -> float | None:
    if isinstance(value, dict) and isinstance(value.get(key), dict):
        return float(value[key]["median"])
    return None


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def _compile(raw: Mapping[str, Any]) -> list[str]:
    lines = []
    shapes = sorted({key.split("/")[0] for key in raw} - {AUTO_SHAPE})
    for shape in shapes:
        sizes = sorted(int(key.split("/")[1]) for key in raw if key.startswith(shape + "/"))
        big = sizes[-1]
        ours = _median(raw[f"{shape}/{big}"]["ours"])
        theirs = _median(raw[f"{shape}/{big}"]["theirs"])
        if ours is None:
            lines.append(f"Compile ({shape}, N={big}): not measured ({raw[f'{shape}/{big}']['ours']}).")
            continue
        if theirs is not None:
            ratio = theirs / ours
            lines.append(
                f"Compile ({shape}, N={big}): ours {ours:.2f} s vs theirs {theirs:.2f} s — {ratio:.1f}× faster; "
                f"goal ≥ 15× {_verdict(ratio >= 15)}."
            )
        else:
            lines.append(
                f"Compile ({shape}, N={big}): ours {ours:.2f} s; theirs {raw[f'{shape}/{big}']['theirs']}."
            )
        if 100 in sizes and big >= 1000:
            small = _median(raw[f"{shape}/100"]["ours"])
            if small:
                growth = ours / small
                lines.append(
                    f"Compile growth ({shape}): ours t({big})/t(100) = {growth:.2f}; goal ≤ 3 {_verdict(growth <= 3)}."
                )
    return lines + _compile_auto(raw)


def _compile_auto(raw: Mapping[str, Any]) -> list[str]:
    """P1: the whole compile with ``grouping: auto`` ≤ 2 s; the CPU time shown beside the wall time."""
    lines = []
    for key in sorted(k for k in raw if k.split("/")[0] == AUTO_SHAPE):
        n, ours = key.split("/")[1], raw[key]["ours"]
        median = _median(ours)
        if median is None:
            lines.append(f"Compile with auto (layered, N={n}): not measured ({ours}).")
            continue
        cpu = ours["time"].get("cpu_median")
        cpu_text = f", {cpu:.2f} s CPU" if cpu is not None else ""
        lines.append(f"Compile with auto (layered, N={n}): ours {median:.2f} s{cpu_text}; goal ≤ 2 s "
                     f"{_verdict(median <= 2)}.")
    return lines


def _step(raw: Mapping[str, Any]) -> list[str]:
    floor, ours, theirs = (_median(raw.get(k)) for k in ("floor", "ours", "theirs"))
    if floor is None or ours is None:
        return [f"Step start: not measured (ours: {raw.get('ours')}, floor: {raw.get('floor')})."]
    line = (
        f"Step start: ours {ours:.2f} s vs floor {floor:.2f} s ({ours - floor:+.2f} s); goal ≤ floor + 0.3 s "
        f"{_verdict(ours - floor <= 0.3)}."
    )
    if theirs is not None:
        line += f" Theirs {theirs:.2f} s ({theirs - floor:+.2f} s, {theirs / ours:.1f}× ours)."
    return [line]


def _data(raw: Mapping[str, Any]) -> list[str]:
    lines = []
    for key, result in raw.items():
        target, mb = key.split("/")
        for label, obj in result["objects"].items():
            times = {c: statistics.median(obj[c]["seconds"]) for c in ("ours", "bz2", "raw")}
            speedup = times["bz2"] / times["ours"]
            floor_ratio = times["ours"] / times["raw"]
            lines.append(
                f"Data ({label}, {mb} MB, {target}): ours {times['ours']:.2f} s, bz2 {times['bz2']:.2f} s "
                f"({speedup:.1f}×; goal ≥ 3× {_verdict(speedup >= 3)}), raw floor {times['raw']:.2f} s "
                f"({floor_ratio:.1f}× the floor; goal ≤ 2× {_verdict(floor_ratio <= 2)})."
            )
    return lines or ["Data: not measured."]


def _checksum(raw: Mapping[str, Any]) -> list[str]:
    lines = []
    for key, result in raw.items():
        target, mb = key.split("/")
        for label, obj in result["objects"].items():
            pair = obj.get("checksum")
            if not pair:
                continue
            cpu = statistics.median(pair["with"]["cpu"]) / statistics.median(pair["without"]["cpu"]) - 1
            wall = (
                statistics.median(pair["with"]["seconds"]) / statistics.median(pair["without"]["seconds"]) - 1
            )
            lines.append(
                f"Checksum ({label}, {mb} MB, {target}): save + load {cpu * 100:+.1f} % CPU time, "
                f"{wall * 100:+.1f} % wall; goal ≤ +5 % (judged on CPU time) {_verdict(cpu <= 0.05)}."
            )
    return lines or ["Checksum: not measured."]


def _grouping(raw: Mapping[str, Any]) -> list[str]:
    lines = []
    for label, data in raw.items():
        if label == "image_sizes_mb":
            sizes = data
            if all(isinstance(sizes.get(k), float) for k in ("none", "runtime", "full")):
                extra, full = sizes["runtime"] - sizes["none"], sizes["full"] - sizes["none"]
                lines.append(
                    f"Image (example): the step runtime adds {extra:.0f} MB to the project's own image (the full "
                    f"install added {full:.0f} MB); goal ≤ 40 MB {_verdict(extra <= 40)}."
                )
            continue
        measured, none = data["measured"], data["none"]
        auto, bound = measured["plans"]["auto"], measured["bound"]["wall"]
        ratio = auto["wall"] / bound
        line = (f"Grouping ({label}), measured: auto {auto['steps']} steps, wall {auto['wall'] / 60:.1f} min = "
                f"{ratio:.2f}× the lower bound (goal ≤ 1.15× {_verdict(ratio <= 1.15)})")
        placed = measured["bound"].get("placed_wall")
        if placed and placed > bound * (1 + 1e-9):
            line += (f" (the placements alone force {placed / 60:.1f} min: auto = {auto['wall'] / placed:.2f}× the "
                     "bound with placements)")
        if label.startswith("example"):
            cut = 1 - auto["steps"] / measured["plans"]["identity"]["steps"]
            line += f"; −{cut:.0%} steps vs identity (goal ≥ 60% {_verdict(cut >= 0.6)})"
        q = none["plans"]
        valid = ("identity", "tag", "single") if none.get("single_valid", True) else ("identity", "tag")
        best = min(q[k]["wall"] for k in valid)
        line += (f". No measurements: auto {q['auto']['wall'] / 60:.1f} min vs best valid other {best / 60:.1f} "
                 f"({_verdict(q['auto']['wall'] <= best + 1e-6)})")
        if "optimum" in none:
            gap = q["auto"]["wall"] / none["optimum"]["wall"]
            line += f", {gap:.2f}× the exhaustive optimum (goal ≤ 1.05× {_verdict(gap <= 1.05)})"
        if data.get("compile_seconds"):
            median = statistics.median(data["compile_seconds"])
            cpu = data.get("compile_cpu_seconds")
            cpu_text = f", {statistics.median(cpu):.2f} s CPU" if cpu else ""
            line += f". Compile with auto: {median:.2f} s{cpu_text} (goal ≤ 2 s {_verdict(median <= 2)})"
        lines.append(line + ".")
    return lines or ["Grouping: not measured."]


def _cli(raw: Mapping[str, Any]) -> list[str]:
    ours, plain, with_ours = (_median(raw.get(k)) for k in ("ours_help", "plain", "with_ours"))
    lines = []
    if ours is not None:
        lines.append(f"CLI: `kedro-vertex-ci --help` {ours:.2f} s; goal ≤ 0.5 s {_verdict(ours <= 0.5)}.")
    if plain is not None and with_ours is not None:
        extra = with_ours - plain
        lines.append(
            f"CLI: our plugin adds {extra:+.2f} s to `kedro --help` ({with_ours:.2f} vs {plain:.2f} s); goal ≤ +0.1 s "
            f"{_verdict(extra <= 0.1)}."
        )
    with_theirs = _median(raw.get("with_theirs"))
    if plain is not None and with_theirs is not None:
        lines.append(f"CLI: kedro-vertexai adds {with_theirs - plain:+.2f} s to `kedro --help`.")
    return lines or ["CLI: not measured."]


def _dryrun(raw: Mapping[str, Any]) -> list[str]:
    lines = []
    for prefix, label in (("", "example"), ("kedro_new_", "`kedro new` + spaceflights-like")):
        plain, ours = _median(raw.get(f"{prefix}kedro_run")), _median(raw.get(f"{prefix}run_local"))
        if plain is None or ours is None:
            if prefix == "":
                lines.append(f"Local dry run: not measured ({raw.get('run_local', 'no example project yet')}).")
            continue
        ratio = ours / plain
        lines.append(
            f"Local dry run ({label}): {ours:.2f} s vs `kedro run` {plain:.2f} s ({ratio:.2f}×); "
            f"goal ≤ 2× {_verdict(ratio <= 2)}."
        )
    return lines


def _memory(raw: Mapping[str, Any]) -> list[str]:
    ours, theirs = _median(raw.get("ours"), "rss"), _median(raw.get("theirs"), "rss")
    if ours is None:
        return ["Memory: not measured."]
    text = f"Memory: compile at N={raw.get('n')} peaks at {ours:.0f} MB (ours)"
    return [text + (f" vs {theirs:.0f} MB (theirs)." if theirs is not None else ".")]


def _stat_median(value: Any) -> float | None:
    return float(value["median"]) if isinstance(value, dict) and "median" in value else None


def _action(raw: Mapping[str, Any]) -> list[str]:
    lines = []
    total = _stat_median((raw.get("overhead") or {}).get("total: start → comment"))
    cpu = _stat_median((raw.get("overhead") or {}).get("CPU time of the whole action process (user + sys)"))
    if total is not None:
        lines.append(f"Action: start → PR comment {total:.2f} s wall"
                     + (f", {cpu:.2f} s CPU" if cpu is not None else "")
                     + f" (fakes, no build); goal ≤ 10 s {_verdict(total <= 10)}.")
    install = raw.get("install") or {}
    cold = _stat_median(install.get("empty pip cache (every job without actions/cache)"))
    warm = _stat_median(install.get("warm wheel cache (opt-in actions/cache)"))
    if cold is not None:
        lines.append(f"Action: installing a `kedro new` requirements.txt takes {cold:.0f} s with an empty pip cache"
                     + (f", {warm:.0f} s with the wheel cache." if warm is not None else "."))
    return lines or ["Action: not measured."]


READERS = {
    "compile": _compile,
    "step": _step,
    "data": _data,
    "checksum": _checksum,
    "grouping": _grouping,
    "cli": _cli,
    "dryrun": _dryrun,
    "memory": _memory,
    "action": _action,
}


def reading(measures: Sequence[Measure]) -> list[str]:
    lines: list[str] = []
    for measure in measures:
        reader = READERS.get(measure.key)
        if reader is None:
            continue
        try:
            lines += reader(measure.raw)
        except (KeyError, TypeError, ZeroDivisionError, IndexError) as err:
            lines.append(f"{measure.title}: cannot be read ({err!r}); see the table.")
    return lines


def shared_machine_caveat(load_averages: Sequence[str], cores: int) -> list[str]:
    """A warning when other work shared the CPU while measuring (1-minute load average above the cores)."""
    busiest = max((float(text.split("/")[0]) for text in load_averages if text[:1].isdigit()), default=0.0)
    if busiest <= cores:
        return []
    return [
        f"This run shared its {cores} cores with other work (1-minute load average up to {busiest:.1f}): "
        "single timings are noisier than on an idle machine, so read the medians and the ratios between "
        "tools, not small differences."
    ]
