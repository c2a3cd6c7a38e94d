"""Every vertexai.yml defect of issue 11 as a named case, through ``kedro-vertex-ci compile`` in-process.

Each case writes files into a real Kedro project (Kedro's own config loader reads them) and states the exit
code and the message: ``{F}`` stands for ``conf/base/vertexai.yml``, so an error shows it names the file,
the line and the key. Before the fixes each case crashed with a traceback, hung, or was accepted.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from .config_harness import VALID, cli_outcome, config_path, make_fuzz_project

OK = "project_id: my-gcp-project\nregion: europe-west1\nrun_config:\n  image: europe-docker.pkg.dev/p/r/img:1\n"


def _schedule(**keys: str) -> str:
    return OK + "  schedules:\n    default_schedule:\n" + "".join(f"      {k}: {v}\n" for k, v in keys.items())


def _resources(**keys: str) -> str:
    return OK + "  resources:\n    __default__:\n" + "".join(f"      {k}: {v}\n" for k, v in keys.items())


def _bomb() -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return OK + "\n".join(lines) + "\n"


# name: (files relative to conf/base, exit code, message parts)
CASES: dict[str, tuple[dict[str, bytes | str], int, list[str]]] = {
    # ---- tracebacks and hangs
    "timezone is a tzdata folder": (
        {"vertexai.yml": _schedule(timezone="Europe")}, 2,
        ["{F}:7: run_config.schedules.default_schedule.timezone: unknown time zone 'Europe'"],
    ),
    "timezone over 255 characters": (
        {"vertexai.yml": _schedule(timezone="A" * 300)}, 2,
        ["{F}:7: run_config.schedules.default_schedule.timezone: unknown time zone 'AAAA"],
    ),
    "cron TZ= prefix is a tzdata folder": (
        {"vertexai.yml": _schedule(cron_expression="'TZ=Europe 0 3 * * *'")}, 2,
        ["{F}:7: run_config.schedules.default_schedule.cron_expression: unknown time zone 'Europe'", "TZ= prefix"],
    ),
    "cron TZ= prefix over 255 characters": (
        {"vertexai.yml": _schedule(cron_expression=f"'TZ={'A' * 300} 0 3 * * *'")}, 2,
        ["{F}:7: run_config.schedules.default_schedule.cron_expression: unknown time zone"],
    ),
    "stray binary vertexai.yml.bak is not read": (
        {"vertexai.yml": OK, "vertexai.yml.bak": b"\xff\xfe\x00\x81binary"}, 0, [],
    ),
    "stray self-referencing alias in a .bak is not read": (
        {"vertexai.yml": OK, "vertexai-old.yml.bak": "a: &a [*a]\n"}, 0, [],
    ),
    "retry_backoff beyond protobuf": (
        {"vertexai.yml": _resources(retries="2", retry_backoff="99999999999999999999s")}, 2,
        ["{F}:8: run_config.resources.__default__.retry_backoff: invalid duration '99999999999999999999s'"],
    ),
    "gpu beyond protobuf": (
        {"vertexai.yml": _resources(gpu="99999999999999999999")}, 2,
        ["{F}:7: run_config.resources.__default__.gpu: invalid gpu '99999999999999999999'", "0-16"],
    ),
    "gpu superscript two passes isdigit": (
        {"vertexai.yml": _resources(gpu="'²'")}, 2, ["{F}:7: run_config.resources.__default__.gpu: invalid gpu '²'"],
    ),
    "deep nesting": ({"vertexai.yml": OK + "  labels: " + "[" * 5000 + "]" * 5000 + "\n"}, 2, ["{F}:5: nests deeper than 40 levels"]),
    "5000-digit integer": (
        {"vertexai.yml": OK + "  caching: " + "9" * 5000 + "\n"}, 2,
        ["{F}:5: run_config.caching: cannot read '999", "as int: Exceeds the limit (4300 digits)"],
    ),
    "billion laughs": ({"vertexai.yml": _bomb()}, 2, ["{F}:", "expands to more than 100,000 values"]),
    "self-referencing alias": ({"vertexai.yml": OK + "a: &a [*a]\n"}, 2, ["{F}:5: an alias refers to the value that contains it"]),
    "!!bool maybe": (
        {"vertexai.yml": OK + "  caching: !!bool maybe\n"}, 2,
        ["{F}:5: run_config.caching: cannot read 'maybe' as bool: a bool is one of true/false"],
    ),
    "!!float abc": (
        {"vertexai.yml": _resources(cpu="!!float abc")}, 2,
        ["{F}:7: run_config.resources.__default__.cpu: cannot read 'abc' as float"],
    ),
    "binary file": ({"vertexai.yml": b"\x89PNG\r\n\x1a\n\x00\x00"}, 2, ["{F}:1: is not UTF-8 text (byte 0x89 at offset 0)"]),
    "latin-1 file": (
        {"vertexai.yml": (OK + "  description: caf\xe9\n").encode("latin-1")}, 2, ["{F}:5: is not UTF-8 text (byte 0xe9"],
    ),
    "NUL character": ({"vertexai.yml": OK + "  description: a\x00b\n"}, 2, ["{F}:5: holds a character YAML does not allow (U+0000)"]),
    # ---- accepted but wrong
    "cpu of 400 nines": (
        {"vertexai.yml": _resources(cpu="'" + "9" * 400 + "'")}, 2,
        ["{F}:7: run_config.resources.__default__.cpu: invalid cpu '999", "at most 96"],
    ),
    "cpu zero": ({"vertexai.yml": _resources(cpu="0")}, 2, ["{F}:7: run_config.resources.__default__.cpu: cpu '0' is outside"]),
    "cpu negative": ({"vertexai.yml": _resources(cpu="-1")}, 2, ["{F}:7: run_config.resources.__default__.cpu: invalid cpu '-1'"]),
    "fractional millicores": ({"vertexai.yml": _resources(cpu="0.5m")}, 2, ["{F}:7: run_config.resources.__default__.cpu: invalid cpu '0.5m'"]),
    "memory above 624G": ({"vertexai.yml": _resources(memory="1Ti")}, 2, ["{F}:7: run_config.resources.__default__.memory: memory '1Ti' is outside"]),
    "memory zero": ({"vertexai.yml": _resources(memory="0Gi")}, 2, ["{F}:7: run_config.resources.__default__.memory: memory '0Gi' is outside"]),
    "gpu above 16": ({"vertexai.yml": _resources(gpu="17")}, 2, ["{F}:7: run_config.resources.__default__.gpu: invalid gpu '17'"]),
    "unknown accelerator": (
        {"vertexai.yml": _resources(accelerator="NVIDIA_TESLA_X4")}, 2,
        ["{F}:7: run_config.resources.__default__.accelerator: unknown accelerator type 'NVIDIA_TESLA_X4'"],
    ),
    "GKE-style accelerator name in node_selectors": (
        {"vertexai.yml": OK + "  node_selectors:\n    train:\n      cloud.google.com/gke-accelerator: nvidia-tesla-t4\n"}, 2,
        ["{F}:5: run_config.node_selectors: unknown accelerator type 'nvidia-tesla-t4'; did you mean 'NVIDIA_TESLA_T4'?"],
    ),
    "machine size that does not exist": (
        {"vertexai.yml": _resources(machine_type="n1-standard-7")}, 2,
        ["{F}:7: run_config.resources.__default__.machine_type: machine type 'n1-standard-7' does not exist"],
    ),
    "timeout overflows signal.alarm": (
        {"vertexai.yml": _resources(timeout="4294967296")}, 2,
        ["{F}:7: run_config.resources.__default__.timeout: Input should be less than or equal to 604800"],
    ),
    "fractional retry_backoff": (
        {"vertexai.yml": _resources(retries="1", retry_backoff="30.5s")}, 2,
        ["{F}:8: run_config.resources.__default__.retry_backoff: invalid duration '30.5s'"],
    ),
    "empty project_id": ({"vertexai.yml": OK.replace("my-gcp-project", "''", 1)}, 2, ["{F}:1: project_id: '' is not a Google Cloud project ID"]),
    "project_id with capitals": ({"vertexai.yml": OK.replace("my-gcp-project", "My-Project", 1)}, 2, ["{F}:1: project_id: 'My-Project' is not"]),
    "empty region": ({"vertexai.yml": OK.replace("europe-west1", "''")}, 2, ["{F}:2: region: '' is not a Google Cloud region"]),
    "region with a typo": ({"vertexai.yml": OK.replace("europe-west1", "europe west1")}, 2, ["{F}:2: region: 'europe west1' is not"]),
    "bucket with capitals": ({"vertexai.yml": OK + "  root: gs://My_Bucket/x\n"}, 2, ["{F}:5: run_config.root: bucket name 'My_Bucket' is not valid"]),
    "bucket starting with goog": ({"vertexai.yml": OK + "  root: googbucket/x\n"}, 2, ["{F}:5: run_config.root: bucket name 'googbucket' is reserved"]),
    "bucket that is an IP address": ({"vertexai.yml": OK + "  root: gs://192.168.5.4/x\n"}, 2, ["{F}:5: run_config.root: bucket name '192.168.5.4' is an IP address"]),
    "staging bucket too short": ({"vertexai.yml": OK + "build:\n  staging_bucket: ab\n"}, 2, ["{F}:6: build.staging_bucket: bucket name 'ab' is not valid"]),
    "image that is not an image reference": (
        {"vertexai.yml": OK.replace("europe-docker.pkg.dev/p/r/img:1", "'my image'")}, 2,
        ["{F}:4: run_config.image: 'my image' is not an image reference"],
    ),
    "image with capitals in the path": (
        {"vertexai.yml": OK.replace("europe-docker.pkg.dev/p/r/img:1", "eu.gcr.io/p/MyImage:1")}, 2,
        ["{F}:4: run_config.image: 'eu.gcr.io/p/MyImage:1' is not an image reference"],
    ),
    "zero-width space in experiment_name": (
        {"vertexai.yml": OK + "  experiment_name: \"demo\\u200b\"\n"}, 2,
        ["{F}:5: run_config.experiment_name: contains an invisible or control character (U+200B ZERO WIDTH SPACE)"],
    ),
    "control character in root": (
        {"vertexai.yml": OK + "  root: \"bucket/a\\x07b\"\n"}, 2, ["{F}:5: run_config.root: contains an invisible or control character (U+0007"],
    ),
    "right-to-left mark in a label key": (
        {"vertexai.yml": OK + "  labels:\n    \"te\\u202eam\": ds\n"}, 2, ["{F}:6: run_config.labels.te\u202eam: key contains an invisible"],
    ),
    "build timeout above 24 h": (
        {"vertexai.yml": OK + "build:\n  timeout: 86401\n"}, 2, ["{F}:6: build.timeout: Input should be less than or equal to 86400"],
    ),
    "cron with Arabic-Indic digits": (
        {"vertexai.yml": _schedule(cron_expression="'0 ٣ * * *'")}, 2,
        ["{F}:7: run_config.schedules.default_schedule.cron_expression: cron '0 ٣ * * *' holds characters other than printable ASCII"],
    ),
    "duplicate key in one file": (
        {"vertexai.yml": OK + "  caching: true\n  caching: false\n"}, 2,
        ["{F}:6: run_config.caching: duplicate key (first set on line 5); keep one"],
    ),
    "duplicate top-level key in two files of one folder": (
        {"vertexai.yml": OK, "vertexai_more.yml": "run_config:\n  caching: false\n"}, 2,
        ["{D}/vertexai_more.yml:1: run_config: also set in {F}:3; Kedro refuses the same top-level key"],
    ),
    "duplicate top-level key between a file and a vertexai/ folder": (
        {"vertexai.yml": OK, "vertexai/more.yml": "# more\nbuild:\n  timeout: 60\nrun_config:\n  caching: false\n"}, 2,
        ["{F}:3: run_config: also set in {D}/vertexai/more.yml:4; Kedro refuses"],
    ),
    "key in a vertexai/ folder file is located there": (
        {"vertexai.yml": OK, "vertexai/more.yml": "# more\nbuild:\n  timeout: 0\n"}, 2,
        ["{D}/vertexai/more.yml:3: build.timeout: Input should be greater than 0"],
    ),
    "Kedro loader error names the file": (
        {"vertexai.yml": OK + "  experiment_name: ${kvc_surely_not_set}\n"}, 2,
        ["{F}:5: run_config.experiment_name: Kedro's config loader refused it:", "kvc_surely_not_set"],
    ),
    "on_exit_pipeline that does not exist": (
        {"vertexai.yml": OK + "  on_exit_pipeline: notfy\n"}, 2,
        ["{F}:5: run_config.on_exit_pipeline: no such pipeline; did you mean 'notify'?"],
    ),
    # ---- compatibility
    "nvidia.com/gpu says use gpu": (
        {"vertexai.yml": OK + "  resources:\n    train_model:\n      nvidia.com/gpu: 1\n"}, 2,
        ["{F}:7: run_config.resources.train_model.nvidia.com/gpu: unknown key: kedro-vertexai 0.7's Kubernetes "
         "resource name: use `gpu: N`"],
    ),
}


@pytest.fixture(scope="module")
def template_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fuzz_project(tmp_path_factory.mktemp("defects"))


@pytest.fixture
def project(template_project: Path) -> Path:
    """The module's project with only the vertexai files a case writes (one Kedro bootstrap for all cases)."""
    for path in config_path(template_project).parent.glob("vertexai*"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return template_project


def _compile(project: Path, files: dict[str, bytes | str], output: Path):  # type: ignore[no-untyped-def]
    folder = config_path(project).parent
    for name, content in files.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(content.encode() if isinstance(content, str) else content)
    vertexai = files.get("vertexai.yml", "")
    return cli_outcome(project, vertexai.encode() if isinstance(vertexai, str) else vertexai, output)


@pytest.mark.parametrize("case", list(CASES))
def test_config_defect(case: str, project: Path, tmp_path: Path) -> None:
    files, code, parts = CASES[case]
    started = time.monotonic()
    outcome = _compile(project, files, tmp_path / "out.json")
    assert time.monotonic() - started < 30, "a hang: config errors are found in milliseconds"
    assert outcome.code == code, outcome.message
    message = outcome.message
    for part in parts:
        expected = part.replace("{F}", str(config_path(project))).replace("{D}", str(config_path(project).parent))
        assert expected in message, f"{expected!r} not in {message!r}"
    if code == 2:
        assert message.startswith("Error: ") and "Traceback" not in message


# kedro-vertexai 1.0.0's `init` output (its DEFAULT_CONFIG_TEMPLATE, rendered for project "demo"), comments
# dropped: the keys and values exactly as that template writes them.
KEDRO_VERTEXAI_1_0_INIT = """\
project_id: my-gcp-project
region: europe-west1
run_config:
  image: demo
  root: bucket_name/gcs_suffix
  experiment_name: demo-experiment
  scheduled_run_name: demo
  grouping:
    cls: kedro_vertexai.grouping.IdentityNodeGrouper
  ttl: 604800
  resources:
    data_import_step:
      memory: 4Gi
    model_training:
      cpu: 8
      memory: 8Gi
      gpu: 1
    __default__:
      cpu: 1000m
      memory: 2048Mi
  node_selectors:
    model_training:
      cloud.google.com/gke-accelerator: NVIDIA_TESLA_T4
  dynamic_config_providers: []
  schedules:
    default_schedule:
      cron_expression: "0 * * * *"
      timezone: Etc/UTC
      start_time: none
      end_time: none
      allow_queueing: false
      max_run_count: none
      max_concurrent_run_count: 1
"""


def test_kedro_vertexai_1_0_init_config_compiles_as_written(project: Path, tmp_path: Path) -> None:
    outcome = _compile(project, {"vertexai.yml": KEDRO_VERTEXAI_1_0_INIT}, tmp_path / "out.json")
    assert outcome.code == 0, outcome.message
    assert "run_config.ttl is a kedro-vertexai 1.0 key (seconds to keep the Argo workflow" in outcome.message
    assert "set a lifecycle rule on the pipeline root's bucket" in outcome.message


def test_run_config_volume_is_a_migration_warning(project: Path, tmp_path: Path) -> None:
    text = OK + "  volume:\n    size: 1Gi\n    access_modes: [ReadWriteOnce]\n"
    outcome = _compile(project, {"vertexai.yml": text}, tmp_path / "out.json")
    assert outcome.code == 0, outcome.message
    assert f"Warning: {config_path(project)}:5: run_config.volume is a kedro-vertexai 0.x key" in outcome.message
    assert "steps hand data over through the pipeline root" in outcome.message


def test_start_and_end_time_none_mean_not_set(project: Path) -> None:
    from kedro_vertex_ci.config import load_config_file

    config_path(project).write_text(
        _schedule(cron_expression="'0 3 * * *'", start_time="none", end_time="None", max_run_count="none")
    )
    schedule = load_config_file(config_path(project)).config.run_config.schedule_for("__default__")
    assert (schedule.start_time, schedule.end_time, schedule.max_run_count) == (None, None, None)


def test_without_resources_the_spec_sets_no_limits(project: Path, tmp_path: Path) -> None:
    """The documented decision (docs/migration.md): no kedro-vertexai 500m/1024Mi defaults."""
    outcome = _compile(project, {"vertexai.yml": OK}, tmp_path / "out.json")
    assert outcome.code == 0, outcome.message
    executors = json.loads(json.dumps(outcome.spec))["deploymentSpec"]["executors"]
    assert executors and all("resources" not in e["container"] for e in executors.values())


def test_an_emoji_in_the_description_gives_a_spec_kfp_loads_from_the_file(project: Path, tmp_path: Path) -> None:
    """kfp (and aiplatform) read spec files with a YAML parser: an escaped surrogate pair came back broken."""
    from kfp import components

    text = OK + "  description: \"Nightly 🚀 run\"\n"
    outcome = _compile(project, {"vertexai.yml": text}, tmp_path / "out.json")
    assert outcome.code == 0, outcome.message
    component = components.load_component_from_file(str(tmp_path / "out.json"))
    assert component.pipeline_spec.pipeline_info.description == "Nightly 🚀 run"


def test_the_full_valid_config_of_the_fuzzer_compiles(project: Path, tmp_path: Path) -> None:
    from .config_harness import check_spec

    outcome = _compile(project, {"vertexai.yml": VALID}, tmp_path / "out.json")
    assert outcome.code == 0, outcome.message
    assert outcome.spec is not None
    check_spec(outcome.spec)


def test_accelerator_list_is_vertex_ais_enum() -> None:
    """Our copy of Vertex AI's AcceleratorType and Cloud Build's machine types, checked against the clients."""
    from google.cloud.aiplatform_v1.types import AcceleratorType
    from google.cloud.devtools.cloudbuild_v1.types import BuildOptions

    from kedro_vertex_ci.rules import ACCELERATOR_TYPES, BUILD_MACHINE_TYPES

    assert {a.name for a in AcceleratorType} - {"ACCELERATOR_TYPE_UNSPECIFIED"} == ACCELERATOR_TYPES
    assert {m.name for m in BuildOptions.MachineType} - {"UNSPECIFIED"} == BUILD_MACHINE_TYPES
