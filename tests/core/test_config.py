"""vertexai.yml validation: the predecessor's format accepted, every bad input a precise error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kedro_vertex_ci.config import load_config_file, parse_config
from kedro_vertex_ci.config_template import render_template
from kedro_vertex_ci.errors import ConfigError

PREDECESSOR_1_0 = """\
project_id: my-gcp-mlops-project
region: europe-west1
run_config:
  image: eu.gcr.io/my-gcp-mlops-project/example_model:latest
  root: bucket_name/gcs_suffix
  experiment_name: MyExperiment
  experiment_description: "My experiment description."
  scheduled_run_name: MyExperimentRun
  service_account: pipelines-account@my-gcp-mlops-project.iam.gserviceaccount.com
  description: "Very Important Pipeline"
  grouping:
    cls: kedro_vertexai.grouping.TagNodeGrouper
    params:
      tag_prefix: "group."
  network:
    vpc: my-vpc
    host_aliases:
      - ip: 127.0.0.1
        hostnames:
          - me.local
  resources:
    data-import-node:
      memory: 2Gi
    model-training-node:
      cpu: 8
      memory: 60Gi
    tensorflow-node:
      gpu: 1
    __default__:
      cpu: 200m
      memory: 64Mi
  node_selectors:
    gpu_node_tag:
      cloud.google.com/gke-accelerator: NVIDIA_TESLA_T4
  dynamic_config_providers:
    - cls: kedro_vertexai.auth.gcp.MLFlowGoogleOAuthCredentialsProvider
      params:
        client_id: iam-client-id
  mlflow:
    request_header_provider_params:
      client_id: iam-client-id
  schedules:
    default_schedule:
      cron_expression: "0 * * * *"
      timezone: Etc/UTC
      allow_queueing: false
      max_run_count: none
      max_concurrent_run_count: 1
    training:
      cron_expression: "0 0 * * *"
      timezone: America/New_York
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vertexai.yml"
    path.write_text(text)
    return path


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert info.value.exit_code == 2
    return [line.replace(str(path), "F") for line in str(info.value).splitlines()]


def test_predecessor_format_is_accepted_with_numbers_for_strings(tmp_path: Path) -> None:
    parsed = load_config_file(_write(tmp_path, PREDECESSOR_1_0))
    run = parsed.config.run_config
    assert run.root == "gs://bucket_name/gcs_suffix"
    assert run.resources["model-training-node"].cpu == "8"
    assert run.resources["tensorflow-node"].gpu == "1"
    assert run.schedules["default_schedule"].max_run_count is None
    assert run.schedule_for("training").timezone == "America/New_York"
    assert run.schedule_for("other").cron_expression == "0 * * * *"  # written there, not a default
    assert run.network.host_aliases[0].hostnames == ("me.local",)
    assert parsed.warnings == ()


def test_template_written_by_init_validates_as_written() -> None:
    text = render_template("my-project", "europe-west1", "Spaceflights Lite")
    parsed = parse_config(yaml.safe_load(text))
    assert parsed.config.run_config.image.startswith("europe-west1-docker.pkg.dev/my-project/")
    assert parsed.config.run_config.experiment_name == "spaceflights-lite"
    # Every documented key of the model appears in the template, active or commented.
    from kedro_vertex_ci.config import RunConfig, ScheduleConfig

    for name in [*RunConfig.model_fields, *ScheduleConfig.model_fields]:
        assert f"{name}:" in text, name


BASE = "project_id: my-project\nregion: europe-west1\nrun_config:\n  image: img\n"

BAD_CONFIGS = {
    "unknown key with suggestion": (
        BASE + "  experiment_nme: x\n",
        ["F:5: run_config.experiment_nme: unknown key; did you mean 'experiment_name'?"],
    ),
    "unknown top-level key": (
        BASE + "regoin: x\n",
        [
            "F:5: regoin: unknown key; did you mean 'region'?",
        ],
    ),
    "wrong type": (
        BASE + "  caching: maybe\n",
        ["F:5: run_config.caching: Input should be a valid boolean, unable to interpret input (got 'maybe')"],
    ),
    "bad memory string": (
        BASE + "  resources:\n    __default__:\n      memory: 2GB\n",
        ['F:7: run_config.resources.__default__.memory: invalid memory \'2GB\': a whole number with an optional unit K, M, G, T, P, E or Ki … Ei ("8Gi", "512M"), above 0 and at most 624G (Vertex AI\'s limit).'],
    ),
    "bad cpu string": (
        BASE + "  resources:\n    model_training:\n      cpu: two\n",
        ['F:7: run_config.resources.model_training.cpu: invalid cpu \'two\': a number ("2", "0.5") or whole millicores ("500m"), above 0 and at most 96 (Vertex AI\'s limit).'],
    ),
    "bad cron": (
        BASE + "  schedules:\n    default_schedule:\n      cron_expression: '0 25 * * *'\n",
        ["F:7: run_config.schedules.default_schedule.cron_expression: invalid cron '0 25 * * *': hour: 25 is outside 0-23"],
    ),
    "cron with four fields": (
        BASE + "  schedules:\n    default_schedule:\n      cron_expression: '0 3 * *'\n",
        [
            "F:7: run_config.schedules.default_schedule.cron_expression: cron '0 3 * *' has 4 fields; "
            "expected 5: minute hour day-of-month month day-of-week"
        ],
    ),
    "bad timezone": (
        BASE + "  schedules:\n    nightly:\n      cron_expression: '0 3 * * *'\n      timezone: Mars/Olympus\n",
        ["F:8: run_config.schedules.nightly.timezone: unknown time zone 'Mars/Olympus' (use an IANA name like Europe/Warsaw)"],
    ),
    "missing image": (
        "project_id: my-project\nregion: europe-west1\nrun_config:\n  root: bucket/x\n",
        ["F:3: run_config.image: required key is missing"],
    ),
    "missing run_config": (
        "project_id: my-project\nregion: europe-west1\n",
        ["F: run_config: required key is missing"],
    ),
    "bad label": (
        BASE + "  labels:\n    Team: DS\n",
        ["F:5: run_config.labels: label key 'Team' must start with a lowercase letter and use only a-z, 0-9, _ and - (≤ 63)"],
    ),
    "root not on gcs": (
        BASE + "  root: s3://bucket/x\n",
        ["F:5: run_config.root: pipeline root must be on Cloud Storage (gs://bucket/path) for Vertex AI, got "
         "'s3://bucket/x' (s3:// roots need run_config.target: kfp)"],
    ),
    "root with a quote": (
        BASE + "  root: 'bucket/a\"b'\n",
        ["F:5: run_config.root: 'gs://bucket/a\"b': a pipeline root cannot contain '\"' or '\\': Vertex AI "
         "writes it raw into the JSON request of steps on a machine_type (CustomJob)"],
    ),
    "vpc with a quote": (
        BASE + "  network:\n    vpc: 'projects/1/global/networks/a\"b'\n",
        ["F:6: run_config.network.vpc: 'projects/1/global/networks/a\"b' is not a VPC network "
         "(projects/NUMBER/global/networks/NAME): Vertex AI writes it raw into the JSON request of steps on a "
         "machine_type (CustomJob)"],
    ),
    "unknown machine type": (
        BASE + "  resources:\n    train:\n      machine_type: z9-mega-8\n",
        ["F:7: run_config.resources.train.machine_type: unknown machine type 'z9-mega-8'; supported: a2-highgpu-Ng, a2-megagpu-Ng, a2-ultragpu-Ng, a3-highgpu-Ng, c2-standard-N, c2d-highcpu-N, c2d-highmem-N, c2d-standard-N, c3-highcpu-N, c3-highmem-N, c3-standard-N, e2-highcpu-N, e2-highmem-N, e2-standard-N, g2-standard-N, n1-highcpu-N, n1-highmem-N, n1-standard-N, n2-highcpu-N, n2-highmem-N, n2-standard-N, n2d-highcpu-N, n2d-highmem-N, n2d-standard-N, n4-highcpu-N, n4-highmem-N, n4-standard-N"],
    ),
    "several problems, one line each, in file order": (
        BASE + "  caching: maybe\n  resources:\n    __default__:\n      memory: lots\n  imagee: x\n",
        [
            "F:5: run_config.caching: Input should be a valid boolean, unable to interpret input (got 'maybe')",
            "F:8: run_config.resources.__default__.memory: invalid memory 'lots': a whole number with an optional unit K, M, G, T, P, E or Ki … Ei (\"8Gi\", \"512M\"), above 0 and at most 624G (Vertex AI's limit).",
            "F:9: run_config.imagee: unknown key; did you mean 'image'?",
        ],
    ),
    "not YAML": ("project_id: [p\n", ["F:2: not valid YAML: did not find expected ',' or ']' (while parsing a flow sequence)"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_errors_are_exact(tmp_path: Path, case: str) -> None:
    text, expected = BAD_CONFIGS[case]
    assert _errors(tmp_path, text) == expected


def test_old_keys_warn_with_migration_and_keep_their_meaning(tmp_path: Path) -> None:
    text = BASE + "  image_pull_policy: Always\n  ttl: 3600\n  vertex_ai_networking:\n    vpc: my-vpc\non_exit_pipeline: notify\n"
    parsed = load_config_file(_write(tmp_path, text))
    path = str(tmp_path / "vertexai.yml")
    warnings = [w.replace(path, "F") for w in parsed.warnings]
    assert warnings == [
        "F:5: run_config.image_pull_policy is a kedro-vertexai 0.x key (Kubeflow's pull policy): Vertex AI always pulls the image; pin it by digest instead (kedro-vertex-ci build does). Remove the key.",
        "F:6: run_config.ttl is a kedro-vertexai 1.0 key (seconds to keep the Argo workflow, its pods and volume after a run) that Vertex AI never used: nothing replaces it, since Vertex AI keeps no such workflow; to expire intermediate data, set a lifecycle rule on the pipeline root's bucket. Remove the key.",
        "F:7: run_config.vertex_ai_networking is a kedro-vertexai 0.x key, renamed: move its 'vpc' and 'host_aliases' under run_config.network.",
        "F:9: on_exit_pipeline is a kedro-vertexai 0.x place for the key: move it to run_config.on_exit_pipeline.",
    ]
    assert parsed.config.run_config.network.vpc == "my-vpc"
    assert parsed.config.run_config.on_exit_pipeline == "notify"


def test_error_lines_point_at_the_environment_file_that_set_the_key(tmp_path: Path) -> None:
    from kedro_vertex_ci.config import ConfigSource

    base = tmp_path / "base.yml"
    local = tmp_path / "local.yml"
    base.write_text(BASE + "  caching: true\n")
    local.write_text("run_config:\n  caching: maybe\n")
    raw = {"project_id": "my-project", "region": "europe-west1", "run_config": {"image": "img", "caching": "maybe"}}
    sources = [ConfigSource(local, local.read_text()), ConfigSource(base, base.read_text())]
    with pytest.raises(ConfigError) as info:
        parse_config(raw, sources)
    assert str(info.value).startswith(f"{local}:2: run_config.caching:")


def test_configuration_reference_is_generated_from_the_model() -> None:
    from kedro_vertex_ci.docs_gen import render

    reference = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    assert reference.read_text() == render(), "docs/configuration.md is stale: run `make docs`"


def test_a_schedule_without_a_cron_is_an_error_and_no_schedule_is_none(tmp_path: Path) -> None:
    """kedro-vertexai filled in an hourly cron; we schedule only what the config says (issue 12, point 3)."""
    errors = _errors(tmp_path, BASE + "  schedules:\n    default_schedule:\n      timezone: Etc/UTC\n")
    assert any("run_config.schedules.default_schedule.cron_expression" in line for line in errors), errors
    parsed = load_config_file(_write(tmp_path, BASE))
    assert parsed.config.run_config.schedule_for("__default__") is None
