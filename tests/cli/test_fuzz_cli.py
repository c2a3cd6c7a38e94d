"""Property-based fuzz of the command line and the file system around it (issue 11, "In the suite").

Every case goes through the real command group in-process (click's CliRunner) against a real Kedro project;
a small sample goes through the installed console script. Each asserts: exit 0 or 2, no traceback, no hang,
and an error names what was wrong (the option, key or path). ``make test`` runs about 4,000 cases;
``make fuzz-cli`` sets ``KVC_FUZZ_SCALE`` for more. Argument strings never hold NUL: argv cannot.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CLI

from .conftest import PARAMS, Outcome, invoke

SCALE = float(os.environ.get("KVC_FUZZ_SCALE", "1"))
HANG_SECONDS = 30  # one case on a loaded 2-core machine takes well under a second


def _examples(n: int) -> settings:
    return settings(
        max_examples=max(1, int(n * SCALE)),
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    )


@contextlib.contextmanager
def _no_hang(what: str) -> Iterator[None]:
    def _timeout(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"{what}: no answer after {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Outcome:
    with _no_hang(" ".join(a[:40] for a in args)):
        out = invoke(args, cwd=cwd, env=env)
    assert not out.crashed, f"{args!r} crashed:\n{out.crashed}"
    assert "Traceback" not in out.output, out.output
    assert out.exit_code in (0, 2), f"{args!r} exited {out.exit_code}:\n{out.output}"
    return out


ARG_TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30)
KNOWN_KEYS = ["start", "increment", "test_size", "name", "flag", "ids", "empty", "model_options",
              "model_options.max_depth", "model_options.name", "model_options.sub", "model_options.sub.a",
              "model_options.nope", "nope", "start.x", "ids.0", "empty.x", ".", "a..b", " start "]
ODD_VALUES = [".inf", "-.inf", ".nan", "1.0e+400", "-1.0e+400", "9" * 5000, "-" + "9" * 4400, "[" * 2000,
              "{" * 2000, "9007199254740993", "-9007199254740993", "9007199254740992", "{a: 1}", "[1, 2]",
              "[1, .nan]", "{a: .inf}", "true", "null", "~", "", " ", "!!python/object/apply:os.system ['x']",
              "&a [*a]", "*a", "a: b: c", "'unclosed", "\"unclosed", "0x1F", "0o17", "1_000", "+1", "1e3",
              "3.0", "-0", "nan", "inf", "[]", "{}", "²", "٣", "\t", "\\", "%", "@x", "`x`", "? x", "- x",
              "!!bool maybe", "!!float abc", "!!int x", "{a: [1, {b: 9007199254740993}]}"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ARG_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ARG_TEXT, inner, max_size=3),
    max_leaves=6,
).map(lambda v: json.dumps(v))
PARAM_VALUES = st.one_of(
    st.sampled_from(ODD_VALUES),
    ARG_TEXT,
    st.integers(-(2**80), 2**80).map(str),
    st.floats().map(repr),
    JSON_VALUES,
)
PARAM_KEYS = st.one_of(st.sampled_from(KNOWN_KEYS), ARG_TEXT.filter(lambda k: "=" not in k))


def _numbers_fit_a_double(value: object) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return abs(value) <= 2**53
    if isinstance(value, list):
        return all(_numbers_fit_a_double(v) for v in value)
    if isinstance(value, dict):
        return all(_numbers_fit_a_double(v) for v in value.values())
    return True


def _strict_json(text: str) -> object:
    def refuse(constant: str) -> object:
        raise ValueError(f"{constant} in the spec")

    return json.loads(text, parse_constant=refuse)


@_examples(240)
@given(items=st.lists(st.tuples(PARAM_KEYS, PARAM_VALUES), min_size=1, max_size=3))
def test_compile_params(project: Path, items: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "spec.json"
        args = ["compile", "-o", str(spec)]
        for key, value in items:
            args += ["--param", f"{key}={value}"]
        out = _run(args, project)
        if out.exit_code == 0:
            data = _strict_json(spec.read_text(encoding="utf-8"))
            assert isinstance(data, dict) and _numbers_fit_a_double(data), "the spec rounds or holds non-finite"
        else:
            assert "--param" in out.output, out.output
            assert any(key.strip() in out.output for key, _ in items), out.output


SITUATIONS = ["missing", "deep missing", "file as folder", "under a file", "fifo", "folder", "symlink to file",
              "symlink to folder", "dangling symlink", "symlink loop", "proc", "sys", "empty", "dot", "dotdot",
              "long name", "odd name", "existing file", "trailing slash"]


def _situation(base: Path, kind: str, name: str) -> tuple[str, bool]:
    """(path text, whether writing a file there should work) for one file-system situation under ``base``."""
    (base / "afile").write_text("x")
    (base / "adir").mkdir()
    simple = {
        "missing": (str(base / f"{name}.json"), True),
        "deep missing": (str(base / "a" / "b" / f"{name}.json"), True),
        "file as folder": (str(base / "afile" / f"{name}.json"), False),
        "under a file": (str(base / "afile" / "x" / f"{name}.json"), False),
        "folder": (str(base / "adir"), False),
        "proc": (f"/proc/{name}.json", False),
        "sys": (f"/sys/{name}.json", False),
        "empty": ("", False),
        "dot": (".", False),
        "dotdot": ("..", False),
        "long name": (str(base / (name * 300)[:300]), False),
        "existing file": (str(base / "afile"), True),
        "trailing slash": (str(base / f"{name}.json") + "/", True),
    }
    if kind in simple:
        return simple[kind]
    link = base / f"link-{name}"
    if kind == "fifo":
        os.mkfifo(link)
        return str(link), False
    if kind == "symlink to file":
        link.symlink_to(base / "afile")
        return str(link), True
    if kind == "symlink to folder":
        link.symlink_to(base / "adir")
        return str(link), False
    if kind == "dangling symlink":
        link.symlink_to(base / "adir" / "later.json")
        return str(link), True
    if kind == "symlink loop":
        link.symlink_to(link)
        return str(link), False
    return str(base / name.replace("/", "_")), True  # "odd name"


FILE_NAMES = st.text(st.characters(blacklist_characters="\x00/", blacklist_categories=("Cs",)), min_size=1,
                     max_size=12).filter(lambda n: n not in {".", ".."})


@_examples(600)
@given(kind=st.sampled_from(SITUATIONS), name=FILE_NAMES, weight=st.integers(0, 9))
def test_compile_output_targets(project: Path, kind: str, name: str, weight: int) -> None:
    if weight and kind in {"missing", "deep missing", "existing file", "symlink to file", "dangling symlink",
                           "trailing slash", "odd name"}:
        kind = "file as folder"  # writable targets run a whole compile: keep them to about one in ten
    with tempfile.TemporaryDirectory() as folder:
        target, writable = _situation(Path(folder), kind, name)
        out = _run(["compile", "-o", target], project)
        if out.exit_code == 0:
            written = Path(target)
            assert written.resolve().is_file() and json.loads(written.resolve().read_text())["pipelineInfo"]
            assert written.is_symlink() == kind.startswith(("symlink", "dangling")), "a symlink was replaced"
        else:
            assert not writable or "Error" in out.output, out.output
            shown = Path(target).name
            escaped = shown.replace("\\", "\\\\")  # click's messages show a backslash doubled
            named = (shown and (shown[:20] in out.output or escaped[:20] in out.output or not shown.isprintable())) \
                or "names no file" in out.output
            assert named or "File '.'" in out.output or "File '..'" in out.output, out.output


@_examples(1000)
@given(kind=st.sampled_from(SITUATIONS), name=FILE_NAMES)
def test_run_local_roots(project: Path, kind: str, name: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root, _ = _situation(Path(folder), kind, name)
        missing_spec = str(Path(folder) / "no-such-spec.json")
        out = _run(["run-local", "--no-preload", "--root", root, "--spec", missing_spec], project)
        assert out.exit_code == 2, out.output
        assert "--root" in out.output or "--spec" in out.output, out.output


SPEC_TEXTS = st.one_of(
    st.binary(max_size=200),
    ARG_TEXT.map(str.encode),
    JSON_VALUES.map(str.encode),
    st.sampled_from([b"\xff\xfe", b"[" * 5000, b"a: &a [*a, *a]\nb: *a", b"9" * 5000, b"{}", b"[]", b"null",
                     b'{"root": {}}', b'{"pipelineInfo": 1}', b'{"root": {"dag": {"tasks": {"x": 1}}}}',
                     b"!!python/object/apply:os.system ['x']", b"\x00\x01", b"---\n---\n", b"\t"]),
)


@_examples(300)
@given(content=SPEC_TEXTS)
def test_run_local_spec_files(project: Path, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "spec.json"
        spec.write_bytes(content)
        out = _run(["run-local", "--no-preload", "--root", str(Path(folder) / "runs"), "--spec", str(spec)], project)
        if out.exit_code == 0:  # a spec with an empty DAG is a spec: nothing to run
            assert "succeeded" in out.output and b"root" in content, out.output
        else:
            assert "spec.json" in out.output, out.output


ENV_NAMES = st.one_of(st.sampled_from(["base", "local", "nope", "../base", ".", "..", " local", "local ", "a/b",
                                       "LOCAL", "-", "--", "\\", "~", "conf", "*"]), ARG_TEXT)


@_examples(110)
@given(env=ENV_NAMES, where=st.sampled_from(["group", "command", "variable"]))
def test_environments(project: Path, env: str, where: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        spec = str(Path(folder) / "spec.json")
        args = {"group": ["-e", env, "compile", "-o", spec], "command": ["compile", "-o", spec, "-e", env],
                "variable": ["compile", "-o", spec]}[where]
        out = _run(args, project, env={"KEDRO_ENV": env} if where == "variable" else None)
        if out.exit_code == 2 and env.strip() and not env.startswith("-"):
            assert "nvironment" in out.output or "Error" in out.output, out.output


TOKENS = ["compile", "run-local", "-p", "--pipeline", "__default__", "nope", "--image", "img:1", "--param",
          "start=1", "start", "=", "-o", "--output", "-h", "--help", "-e", "--env", "local", "--project",
          "/nonexistent", "--version", "--max-parallel", "0", "-1", "3", "abc", "--runner", "docker", "podman",
          "--from-nodes", "--to-nodes", "node_0", "--resume", "--fail-fast", "--json", "--mount", "a:b", "/x:/y",
          "--workdir", "--run-id", "--", "-", "--unknown", "--spec", "--root", "--preload", "--no-preload",
          "--pipeline-root", "gs://b/x", "--mount-data", ""]


@_examples(1800)
@given(command=st.sampled_from(["compile", "run-local"]),
       before=st.lists(st.sampled_from(["-e", "local", "--project", "/nonexistent", "--version", "-h"]), max_size=2),
       after=st.lists(st.one_of(st.sampled_from(TOKENS), ARG_TEXT), max_size=6))
def test_option_combinations(project: Path, command: str, before: list[str], after: list[str]) -> None:
    """Any mix of options ends in a usage error, a clean error, or help: never a traceback."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "afile").write_text("x")
        blocked = str(Path(folder) / "afile" / "x")  # last word: whatever ran, nothing gets compiled or run
        tail = ["-o", blocked] if command == "compile" else ["--spec", blocked, "--root", blocked]
        _run([*before, command, *after, *tail], project)


SUBPROCESS_CASES = [  # a sample: each costs a process start (the in-process cases above are the bulk)
    ["compile", "--param", "start=" + "9" * 5000],
    ["compile", "-o", ""],
    ["-e", "nope", "compile"],
    ["run-local", "--root", "/proc/kvc-runs"],
]


@pytest.mark.parametrize("args", SUBPROCESS_CASES, ids=[" ".join(a)[:40] for a in SUBPROCESS_CASES])
def test_sample_through_the_console_script(project: Path, args: list[str]) -> None:
    done = subprocess.run([CLI, *args], cwd=project, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.startswith("Error") or "Usage" in done.stderr, done.stderr


def test_the_fuzzed_project_has_the_parameters_the_strategies_name() -> None:
    known = {key.split(".")[0] for key in KNOWN_KEYS if key.split(".")[0] in PARAMS}
    assert {"start", "model_options", "ids", "empty", "test_size"} <= known
