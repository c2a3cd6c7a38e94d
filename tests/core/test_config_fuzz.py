"""Property-based fuzzing of vertexai.yml documents: bad input never crashes, and nothing bad is accepted.

Every generated document must end in exit 0 or 2 with no exception but the CLI's own error family, within
seconds; an error names the file (and, for a changed key, that key); an accepted document yields a spec
kfp's own parsers accept whose every step argv the step runtime parses. Documents are structured mutations
of a full valid config (one key set to a hostile value, removed, or joined by an unknown key) and raw ones
(bytes, unicode, deep nesting, huge numbers, alias bombs, foreign tags, duplicates, very large files).

``make test`` runs 6,400 cases (about 100 s of CPU) (``KVC_FUZZ_SCALE=1``); ``make fuzz-config`` runs ten times as many.
Most go through the compile's pure half, a share through ``kedro-vertex-ci compile`` in-process (real Kedro
loader), and a fixed sample through the real CLI in a subprocess to prove no traceback reaches a user.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kedro_vertex_ci import rules

from .config_harness import (
    VALID,
    Outcome,
    check_spec,
    cli_outcome,
    config_path,
    core_outcome,
    make_fuzz_project,
    project_graphs,
)

SCALE = int(os.environ.get("KVC_FUZZ_SCALE", "1"))
LONG = SCALE > 1


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples * SCALE,
        deadline=timedelta(seconds=60),  # a hang, not a speed claim: cases take milliseconds (seconds under load)
        database=None,
        derandomize=not LONG,  # make test: the same cases every run; the long tier explores
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


@pytest.fixture(scope="module")
def fuzz_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fuzz_project(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def graphs(fuzz_project: Path) -> dict[str, Any]:
    return project_graphs(fuzz_project)


# ---------------------------------------------------------------------------------------------- values

BASE = yaml.safe_load(VALID)

NASTY_STRINGS = [
    "", " ", "none", "null", "~", "0", "-1", "1e400", "nan", "inf", "-inf", "9" * 400, "9" * 5000,
    "²", "٣", "١٢", "Europe", "Europe/", "../etc/passwd", "/dev/zero", "A" * 300, "TZ=Europe 0 3 * * *",
    "TZ=" + "A" * 300 + " 0 3 * * *", "0 ٣ * * *", "0 3 * * *\n", "* * * * * *", "30.5s", "99999999999999999999s",
    "-5s", "1h", "500m", "0.5m", "0", "0m", "0Gi", "625G", "1Ei", "8Gi ", "gs://", "gs://goog-x/p",
    "gs://my_bucket/..", "gs://UPPER/x", "s3://b/x", "a\u200bb", "a\u202eb", "tab\there", "line\nbreak",
    "\x00", "é", "日本", "🙂", "IMG:latest", "repo/img:", "repo/img@sha256:abc", "repo//img", "http://x",
    "NVIDIA_TESLA_T4", "nvidia-tesla-t4", "n1-standard-7", "a2-highgpu-3g", "E2_HIGHCPU_8", "global",
    "europe-west1", "my-gcp-project", "x@y", "2026-01-31T03:00:00Z", "2026-13-01T00:00:00Z", "2026-01-31",
    "kedro_vertexai.grouping.TagNodeGrouper", "not a class", "${oc.env:NOPE}", "${missing}", "${globals:x}",
]  # fmt: skip

scalars = st.one_of(
    st.sampled_from(NASTY_STRINGS),
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


visible_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Zl", "Zp")), min_size=1, max_size=30
)
# Values the rules accept, by key name: mutations with these must compile, and their spec must pass the oracle.
VALID_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "cpu": st.one_of(st.integers(1, 96), st.sampled_from(["0.5", "250m", "96", "1.25", "96000m"])),
    "memory": st.sampled_from(["512Mi", "8Gi", "624G", "1G", "64M", "580Gi", "1000000"]),
    "gpu": st.integers(0, 16),
    "accelerator": st.sampled_from(sorted(rules.ACCELERATOR_TYPES)),
    "machine_type": st.sampled_from(["n1-standard-8", "a2-highgpu-2g", "e2-highmem-16", "g2-standard-24", "c3-highcpu-176"]),
    "retries": st.integers(0, 10),
    "retry_backoff": st.sampled_from(["1s", "59m", "1h", "3600s", "0s"]),
    "timeout": st.integers(1, rules.MAX_STEP_TIMEOUT),
    "caching": st.booleans(),
    "cron_expression": st.sampled_from(["0 3 * * *", "*/5 * * * 1-5", "TZ=America/New_York 0 0 1 JAN *", "0 0 * * SUN"]),
    "timezone": st.sampled_from(["Etc/UTC", "America/New_York", "Asia/Kolkata", "UTC"]),
    "start_time": st.sampled_from(["2026-01-31T03:00:00Z", "none", "2030-12-31T23:59:59+01:00"]),
    "max_run_count": st.one_of(st.integers(1, 2**40), st.just("none")),
    "image": st.sampled_from(["img", "eu.gcr.io/p/img:1", "localhost:5000/a/b@sha256:" + "a" * 64, "a.b/c_d/e-f:v1.2"]),
    "root": st.sampled_from(["gs://my-bucket", "bucket_name/gcs_suffix", "gs://a.b.c/x/y"]),
    "project_id": st.sampled_from(["my-project", "example.com:my-project", "abcdef"]),
    "region": st.sampled_from(["us-central1", "europe-west4", "northamerica-northeast1"]),
    "description": visible_text,
    "experiment_name": visible_text,
    "team": st.from_regex(r"[a-z0-9_-]{0,63}", fullmatch=True),
}


def _paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path of the valid document (list items by index)."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.append((*prefix, str(key)))
            found.extend(_paths(item, (*prefix, str(key))))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, str(index))))
    return found


PATHS = _paths(BASE)
# Keys a user may add (mutations also set these where the valid config leaves them out).
EXTRA_PATHS = [
    ("run_config", "resources", "evaluate", key)
    for key in ("cpu", "memory", "gpu", "accelerator", "machine_type", "spot", "boot_disk_size_gb", "retries",
                "retry_backoff", "timeout", "caching", "nvidia.com/gpu")
] + [
    ("run_config", "schedules", "train", key)
    for key in ("cron_expression", "timezone", "start_time", "end_time", "max_run_count", "max_concurrent_run_count",
                "allow_queueing")
] + [
    ("run_config", key) for key in ("volume", "ttl", "image_pull_policy", "scheduled_run_name", "grouping")
] + [("build", key) for key in ("staging_bucket", "service_account", "dockerfile")]  # fmt: skip


def _parent(document: Any, path: tuple[str, ...]) -> Any:
    node = document
    for part in path[:-1]:
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                return None
            node = node[int(part)]
        else:
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
        if not isinstance(node, (dict, list)):
            return None
    return node


def _set(document: Any, path: tuple[str, ...], value: Any) -> None:
    parent = _parent(document, path)
    if isinstance(parent, dict):
        parent[path[-1]] = value
    elif isinstance(parent, list) and path[-1].isdigit() and int(path[-1]) < len(parent):
        parent[int(path[-1])] = value


def _delete(document: Any, path: tuple[str, ...]) -> None:
    parent = _parent(document, path)
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
    elif isinstance(parent, list) and path[-1].isdigit() and int(path[-1]) < len(parent):
        parent.pop(int(path[-1]))


@st.composite
def mutated_documents(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, ...]]]:
    """A valid config with one to three changes; returns the YAML bytes and the changed key paths."""
    document = copy.deepcopy(BASE)
    changed: list[tuple[str, ...]] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["valid", "valid", "set", "set", "set", "delete", "unknown"]))
        path = draw(st.sampled_from(PATHS + EXTRA_PATHS))
        if kind == "valid" and path[-1] in VALID_VALUES:
            _set(document, path, draw(VALID_VALUES[path[-1]]))
        elif kind in ("set", "valid"):
            _set(document, path, draw(values))
        elif kind == "delete":
            _delete(document, path)
        else:
            path = (*path[:-1], draw(st.text(min_size=1, max_size=12)))
            _set(document, path, draw(scalars))
        changed.append(path)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(document, Dumper=dumper, allow_unicode=draw(st.booleans()), sort_keys=False)
    return text.encode("utf-8", errors="surrogatepass"), changed


def _alias_bomb(levels: int, width: int) -> str:
    lines = ["a0: &a0 [lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


RAW_TEMPLATES = [
    lambda n: VALID + "run_config:\n  caching: false\n",  # duplicate top-level key
    lambda n: VALID.replace("caching: true", "caching: true\n  caching: false"),
    lambda n: "x: " + "[" * (n * 50) + "]" * (n * 50) + "\n" + VALID,
    lambda n: "x: " + "{a: " * (n * 20) + "1" + "}" * (n * 20) + "\n" + VALID,
    lambda n: VALID.replace("cpu: 4", "cpu: " + "9" * (100 * n)),
    lambda n: VALID.replace("caching: true", "caching: !!bool maybe"),
    lambda n: VALID.replace("cpu: 4", "cpu: !!float abc"),
    lambda n: VALID.replace("cpu: 4", "cpu: !!binary aGVsbG8="),
    lambda n: VALID.replace("cpu: 4", "cpu: !!python/object:os.system x"),
    lambda n: VALID.replace("labels:", "labels: !!set"),
    lambda n: VALID.replace("labels:", "labels: !custom"),
    lambda n: VALID + _alias_bomb(3 + n % 8, 9),
    lambda n: VALID + "loop: &l [*l]\n",
    lambda n: VALID + "loop: &m {k: *m}\n",
    lambda n: VALID.replace("  caching: true", "\tcaching: true"),
    lambda n: "\ufeff" + VALID,
    lambda n: VALID.replace("\n", "\r\n"),
    lambda n: VALID + "---\nsecond: doc\n",
    lambda n: VALID.replace("team: ds", "[a, b]: ds"),
    lambda n: VALID.replace("team: ds", "? {a: 1}\n    : ds"),
    lambda n: VALID.replace("demo:1.0", "demo:1.0\x00"),
    lambda n: VALID.replace("Europe/Warsaw", "Europe"),
    lambda n: VALID.replace("Europe/Warsaw", "A" * (200 + n)),
    lambda n: VALID.replace("30s", "30.5s"),
    lambda n: VALID.replace("gpu: 1", "gpu: 99999999999999999999"),
    lambda n: VALID.replace("timeout: 3600", "timeout: 4294967296"),
    lambda n: VALID.replace("start_time: none", "start_time: ${oc.env:KVC_NOT_SET}"),
    lambda n: VALID.replace("experiment_name: demo", "experiment_name: ${missing.key}"),
    lambda n: "",
    lambda n: "- a\n- b\n",
    lambda n: "just a string\n",
    lambda n: "null\n",
    lambda n: "project_id: [\n",
    lambda n: "  bad: indent\n wrong: x\n",
    lambda n: "a: b: c\n",
    lambda n: "%YAML 1.1\n%TAG ! tag:x,2000:\n---\n" + VALID,
    lambda n: "&anchor\n" + VALID,
    lambda n: "*undefined\n",
    lambda n: VALID + ("k" * 50 + ": v\n") * (200 * n),
]


@st.composite
def raw_documents(draw: st.DrawFn) -> bytes:
    """Hostile bytes: templates, random bytes, random unicode, random edits of the valid text."""
    kind = draw(st.sampled_from(["template", "template", "bytes", "text", "splice"]))
    if kind == "template":
        template = draw(st.sampled_from(RAW_TEMPLATES))
        return template(draw(st.integers(1, 20))).encode("utf-8")
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "text":
        return draw(st.text(max_size=200)).encode("utf-8", errors="surrogatepass")
    at = draw(st.integers(0, len(VALID)))
    cut = draw(st.integers(0, 20))
    insert = draw(st.one_of(st.text(max_size=10), st.sampled_from(["\x00", "\t", "&a", "*a", "!!", "{", "[", ":"])))
    return (VALID[:at] + insert + VALID[at + cut :]).encode("utf-8", errors="surrogatepass")


# ---------------------------------------------------------------------------------------------- checks


def _check(outcome: Outcome, path: Path, changed: list[tuple[str, ...]], *, with_kfp_loader: bool) -> None:
    assert outcome.code in (0, 2), outcome
    if outcome.code == 0:
        assert outcome.spec is not None
        check_spec(outcome.spec, with_kfp_loader=with_kfp_loader)
        return
    assert "Traceback" not in outcome.message
    assert str(path) in outcome.message, f"the error does not name the file: {outcome.message!r}"
    if changed and outcome.problems:
        keys = [p.key for p in outcome.problems]
        assert any(_related(k, c) for k in keys for c in changed), f"{changed} changed, errors name {keys}"


def _related(key: str, changed: tuple[str, ...]) -> bool:
    """An error about the changed key, one of its parents, or one of its children (or the whole file)."""
    if not key:
        return True
    dotted = ".".join(changed)
    return dotted.startswith(key) or key.startswith(dotted) or _schedule_or_resource_sibling(key, changed)


def _schedule_or_resource_sibling(key: str, changed: tuple[str, ...]) -> bool:
    # Cross-key rules report the key they are about: end_time vs start_time, spot vs machine_type.
    parent = ".".join(changed[:-1])
    return bool(parent) and key.startswith(parent)


# ---------------------------------------------------------------------------------------------- tiers


@_settings(3300)
@given(case=mutated_documents())
def test_mutated_configs_through_the_compile_core(
    case: tuple[bytes, list[tuple[str, ...]]], fuzz_project: Path, graphs: dict[str, Any]
) -> None:
    data, changed = case
    path = config_path(fuzz_project)
    _check(core_outcome(path, data, graphs), path, changed, with_kfp_loader=False)


@_settings(2500)
@given(data=raw_documents())
def test_raw_documents_through_the_compile_core(data: bytes, fuzz_project: Path, graphs: dict[str, Any]) -> None:
    path = config_path(fuzz_project)
    _check(core_outcome(path, data, graphs), path, [], with_kfp_loader=False)


@_settings(300)
@given(case=mutated_documents())
def test_mutated_configs_through_the_cli_in_process(
    case: tuple[bytes, list[tuple[str, ...]]], fuzz_project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data, changed = case
    output = fuzz_project.parent / "out.json"
    _check(cli_outcome(fuzz_project, data, output), config_path(fuzz_project), [], with_kfp_loader=True)


@_settings(300)
@given(data=raw_documents())
def test_raw_documents_through_the_cli_in_process(data: bytes, fuzz_project: Path) -> None:
    output = fuzz_project.parent / "out.json"
    _check(cli_outcome(fuzz_project, data, output), config_path(fuzz_project), [], with_kfp_loader=True)


SUBPROCESS_SAMPLE = {
    "valid": VALID.encode(),
    "binary": b"\xff\xfe\x00\x01binary",
    "alias bomb": (VALID + _alias_bomb(12, 9)).encode(),
    "self alias": (VALID + "loop: &l [*l]\n").encode(),
    "deep": ("x: " + "[" * 20000 + "]" * 20000 + "\n").encode(),
    "huge int": VALID.replace("cpu: 4", "cpu: " + "9" * 5000).encode(),
    "timezone folder": VALID.replace("Europe/Warsaw", "Europe").encode(),
    "duplicate key": VALID.replace("caching: true", "caching: true\n  caching: false").encode(),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(SUBPROCESS_SAMPLE))
def test_the_real_cli_exits_without_traceback(case: str, fuzz_project: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    import shutil

    shutil.copytree(fuzz_project, project)
    config_path(project).write_bytes(SUBPROCESS_SAMPLE[case])
    cli = str(Path(sys.executable).parent / "kedro-vertex-ci")
    result = subprocess.run(
        [cli, "--project", str(project), "compile", "-o", str(tmp_path / "out.json")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
    )  # fmt: skip
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == (0 if case == "valid" else 2), result.stderr
    if case != "valid":
        assert str(config_path(project)) in result.stderr
