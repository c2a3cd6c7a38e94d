"""The ``vertexai.yml`` model: every key of kedro-vertexai 1.0's format, plus ours, validated strictly.

Pure: :func:`parse_config` takes the merged mapping (as Kedro's config loader returns it) and the source
files it came from, and returns a frozen :class:`PluginConfig` or raises one :class:`ConfigError` listing
every problem with its file, key path and line. Reading files and running Kedro's loader is ``kedro_io``'s job.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from . import rules
from .errors import ConfigError, Problem

ACCELERATOR_SELECTOR = "cloud.google.com/gke-accelerator"
DEFAULT_KEY = "__default__"
_RFC3339 = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$")
_NONE_WORDS = {"none", "null", "~", ""}

# Keys of kedro-vertexai's formats that mean nothing here, with what they did there and how to migrate.
# Warned about (file and line), then dropped.
DEPRECATED_KEYS: dict[tuple[str, ...], str] = {
    ("run_config", "image_pull_policy"): "a kedro-vertexai 0.x key (Kubeflow's pull policy): Vertex AI "
    "always pulls the image; pin it by digest instead (kedro-vertex-ci build does). Remove the key.",
    ("run_config", "ttl"): "a kedro-vertexai 1.0 key (seconds to keep the Argo workflow, its pods and volume "
    "after a run) that Vertex AI never used: nothing replaces it, since Vertex AI keeps no such workflow; "
    "to expire intermediate data, set a lifecycle rule on the pipeline root's bucket. Remove the key.",
    ("run_config", "volume"): "a kedro-vertexai 0.x key (a volume shared by the steps), ignored by 1.0: "
    "steps hand data over through the pipeline root on Cloud Storage. Remove the key.",
    ("run_config", "vertex_ai_networking"): "a kedro-vertexai 0.x key, renamed: move its 'vpc' and "
    "'host_aliases' under run_config.network.",
    ("on_exit_pipeline",): "a kedro-vertexai 0.x place for the key: move it to run_config.on_exit_pipeline.",
    ("run_config", "max_cache_staleness"): "a kedro-vertexai 0.x key not supported by Vertex AI Pipelines; "
    "use run_config.caching.",
    ("run_config", "store_kedro_outputs_as_kfp_artifacts"): "a kedro-vertexai 0.x key, renamed: use "
    "run_config.artifacts (catalog datasets as output artifacts in Vertex ML Metadata).",
    ("run_config", "node_merge_strategy"): "a kedro-vertexai 0.x key, replaced by run_config.grouping "
    "(cls: auto fuses chains).",
}

# Unknown keys users bring from older docs, with what to write instead.
RENAMED_KEYS: dict[str, str] = {
    "nvidia.com/gpu": "kedro-vertexai 0.7's Kubernetes resource name: use `gpu: N` (with `accelerator` or "
    "node_selectors for the type) instead",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _as_str(value: Any) -> Any:
    """YAML gives ``cpu: 8`` as an int; the predecessor rejected that. We take numbers as their string."""
    return rules.plain_number_text(value)


def _optional(check: Any) -> Any:
    """A field validator applying ``check`` to a value that may be None."""

    def validate(cls: Any, value: Any) -> Any:
        return None if value is None else check(value)

    return classmethod(validate)


class HostAlias(_Model):
    """One ``/etc/hosts`` entry written in each step before Kedro starts."""

    ip: str = Field(description="IP address the hostnames resolve to.")
    hostnames: tuple[str, ...] = Field(description="Hostnames for that address.")

    @field_validator("ip")
    @classmethod
    def _valid_ip(cls, value: str) -> str:
        import ipaddress

        ipaddress.ip_address(value)
        return value


class NetworkConfig(_Model):
    """Networking of the pipeline's steps."""

    vpc: str | None = Field(
        None, description="VPC network to peer with: projects/NUMBER/global/networks/NAME (the project number, not its ID)."
    )
    host_aliases: tuple[HostAlias, ...] = Field((), description="Extra /etc/hosts entries in every step.")


class ResourceConfig(_Model):
    """Container settings for the steps a key of ``resources`` matches."""

    cpu: str | None = Field(None, description='CPU limit: "2", "0.5" or "500m". Numbers are accepted.')
    memory: str | None = Field(None, description='Memory limit: "8Gi", "512Mi", "4G".')
    gpu: str | None = Field(None, description="Number of accelerators (type from node_selectors or accelerator).")
    accelerator: str | None = Field(None, description='Accelerator type, e.g. "NVIDIA_TESLA_T4".')
    machine_type: str | None = Field(
        None,
        description='Compute Engine machine type, e.g. "n1-highmem-8" or "a2-highgpu-1g". A step with a '
        "machine type runs as a Vertex AI CustomJob on exactly that machine, with gpu/accelerator "
        "attached to it; cpu and memory limits do not apply there. Without one, Vertex AI picks the machine "
        "from cpu/memory. See docs/placement.md.",
    )
    spot: bool | None = Field(
        None,
        description="Run on Spot VMs (cheaper, may be preempted). Needs machine_type: only a CustomJob "
        "step can run on Spot VMs. A fused step is spot only if all its matching keys say so.",
    )
    boot_disk_size_gb: int | None = Field(
        None, gt=0, le=65536, description="Boot disk of a CustomJob step's machine in GB (Vertex default 100)."
    )
    retries: int | None = Field(None, ge=0, le=10, description="How often Vertex AI retries a failed step.")
    retry_backoff: str | None = Field(None, description='Wait before the first retry, e.g. "30s".')
    timeout: int | None = Field(
        None, gt=0, le=rules.MAX_STEP_TIMEOUT, description="Seconds after which the step runtime fails the step."
    )
    caching: bool | None = Field(None, description="Override run_config.caching for these steps.")
    image: str | None = Field(
        None,
        description="Image for these steps instead of run_config.image, e.g. a GPU image for training. Such "
        "nodes share a step only with nodes of the same image. Pin it by digest (IMAGE@sha256:...): the "
        "GitHub Action builds only run_config.image and refuses an unpinned per-node image.",
    )

    _coerce = field_validator("cpu", "memory", "gpu", mode="before")(_as_str)
    _valid_step_image = field_validator("image")(_optional(rules.check_image))
    _valid_cpu = field_validator("cpu")(_optional(rules.check_cpu))
    _valid_memory = field_validator("memory")(_optional(rules.check_memory))
    _valid_gpu = field_validator("gpu")(_optional(rules.check_gpu))
    _valid_accelerator = field_validator("accelerator")(_optional(rules.check_accelerator))
    _valid_backoff = field_validator("retry_backoff")(_optional(rules.check_retry_backoff))

    @field_validator("machine_type")
    @classmethod
    def _known_machine(cls, value: str | None) -> str | None:
        if value is not None:
            from .machines import check_machine_size, machine_resources

            machine_resources(value)
            check_machine_size(value)
        return value


class GroupingConfig(_Model):
    """How Kedro nodes are fused into Vertex steps."""

    cls: str = Field(
        "identity",
        description="identity (one step per node), tag (nodes sharing a group.<name> tag), auto (the steps "
        "with the least estimated wall time on Vertex, see docs/grouping.md), kedro_vertexai.grouping.* names, "
        "or your own class path.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for the grouper. tag/auto: tag_prefix. auto: step_overhead (seconds a "
        "step takes to start on Vertex, default 90), parallelism (steps at once, default 8), duration_scale "
        "(multiplies measured node durations, default 1), default_node_duration (seconds, default 10).",
    )


class DynamicConfigProvider(_Model):
    """A class that writes a config file (e.g. credentials.yml) in each step before its nodes run."""

    cls: str = Field(description="Class path of a kedro_vertex_ci.dynamic_config.DynamicConfigProvider.")
    params: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for the provider.")

    _valid_cls = field_validator("cls")(classmethod(lambda cls, value: rules.check_class_path(value)))


class MlflowConfig(_Model):
    """MLflow integration with kedro-mlflow in the project: one MLflow run per pipeline job (docs/mlflow.md)."""

    request_header_provider_params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters for the request-header provider (e.g. client_id)."
    )


class ScheduleConfig(_Model):
    """When a pipeline runs on its own."""

    cron_expression: str = Field(
        description='Cron, e.g. "0 3 * * *"; "TZ=Area/City " prefix ok. Required: nothing is scheduled by default.'
    )
    timezone: str = Field("Etc/UTC", description='IANA time zone of the cron, e.g. "Europe/Warsaw".')
    start_time: str | None = Field(None, description="RFC 3339 start; a past start backfills missed runs.")
    end_time: str | None = Field(None, description="RFC 3339 end.")
    allow_queueing: bool = Field(False, description="Queue runs when max_concurrent_run_count is reached.")
    max_run_count: int | None = Field(
        None, gt=0, le=rules.INT64_MAX, description="Stop after this many runs (none: unlimited)."
    )
    max_concurrent_run_count: int = Field(1, gt=0, le=rules.INT64_MAX, description="Runs allowed at the same time.")

    @field_validator("max_run_count", "start_time", "end_time", mode="before")
    @classmethod
    def _none_word(cls, value: Any) -> Any:
        # kedro-vertexai 1.0's template writes `max_run_count: none` and `start_time: none`, which YAML
        # reads as the string "none": it means "not set" there.
        return None if isinstance(value, str) and value.strip().lower() in _NONE_WORDS else value

    @field_validator("cron_expression")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from .cron import validate_cron

        validate_cron(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        from .cron import validate_timezone

        return validate_timezone(value)

    @field_validator("start_time", "end_time", mode="before")
    @classmethod
    def _time_text(cls, value: Any) -> Any:
        # An unquoted 2026-01-31T03:00:00Z is a YAML timestamp: take it as the time it names.
        from datetime import datetime

        if isinstance(value, datetime):
            return value.isoformat().replace("+00:00", "Z")
        return value

    @field_validator("start_time", "end_time")
    @classmethod
    def _valid_time(cls, value: str | None) -> str | None:
        if value is not None:
            from datetime import datetime

            shown = value if len(value) <= 40 else value[:37] + "..."
            if not value.isascii() or not _RFC3339.match(value):
                raise ValueError(f"invalid RFC 3339 time {shown!r}, e.g. 2026-01-31T03:00:00Z")
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError as err:
                raise ValueError(f"invalid RFC 3339 time {shown!r}: {err}") from None
        return value

    @model_validator(mode="after")
    def _ends_after_start(self) -> ScheduleConfig:
        from datetime import datetime

        if self.start_time and self.end_time:
            start, end = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (self.start_time, self.end_time))
            if end <= start:
                raise ValueError(f"end_time {self.end_time} is not after start_time {self.start_time}")
        return self


class BuildConfig(_Model):
    """Cloud Build settings for ``kedro-vertex-ci build``."""

    image: str | None = Field(
        None, description="Image repository to push, e.g. europe-docker.pkg.dev/PROJECT/REPO/NAME."
    )
    staging_bucket: str | None = Field(None, description="Bucket for the source tarball (default: root's).")
    region: str | None = Field(None, description="Cloud Build region (regional builds); default: global.")
    dockerfile: str = Field("Dockerfile", description="Dockerfile path in the project.")
    machine_type: str | None = Field(None, description="Cloud Build machine type, e.g. E2_HIGHCPU_8.")
    timeout: int = Field(1200, gt=0, le=rules.MAX_BUILD_TIMEOUT, description="Build timeout in seconds (at most 24 h).")
    service_account: str | None = Field(None, description="Service account the build runs as.")

    _valid_image = field_validator("image")(_optional(lambda v: rules.check_image(v, allow_tag=False)))
    _valid_bucket = field_validator("staging_bucket")(_optional(lambda v: rules.check_bucket(v.removeprefix("gs://"))))
    _valid_region = field_validator("region")(_optional(lambda v: rules.check_region(v, allow_global=True)))
    _valid_machine = field_validator("machine_type")(_optional(rules.check_build_machine))
    _valid_account = field_validator("service_account")(_optional(rules.check_service_account))


class Endpoints(_Model):
    """Google API endpoints (Private Service Connect, VPC-SC, tests). Env KEDRO_VERTEX_CI_<NAME>_ENDPOINT wins."""

    vertex: str | None = Field(None, description="Vertex AI API, e.g. https://europe-west1-aiplatform.googleapis.com")
    cloudbuild: str | None = Field(None, description="Cloud Build API.")
    storage: str | None = Field(None, description="Cloud Storage API.")
    sts: str | None = Field(None, description="Security Token Service (Workload Identity Federation).")
    iamcredentials: str | None = Field(None, description="IAM Credentials API (impersonation).")
    artifactregistry: str | None = Field(None, description="Artifact Registry API (is this commit built yet?).")

    _valid_urls = field_validator("vertex", "cloudbuild", "storage", "sts", "iamcredentials", "artifactregistry")(
        _optional(rules.check_endpoint)
    )


class RunConfig(_Model):
    """How the pipeline runs on Vertex AI."""

    image: str = Field(description="Image the steps run in (tag or @sha256 digest).")
    target: Literal["vertex", "kfp"] = Field(
        "vertex", description="Where run-once/schedule send the spec: Vertex AI, or the Kubeflow Pipelines of `kfp`."
    )
    root: str | None = Field(
        None, description="Pipeline root: gs://bucket/path (bucket/path accepted, as kedro-vertexai wrote it)."
    )
    experiment_name: str | None = Field(
        None, description="Names the pipeline and its runs (default: the Kedro project name)."
    )
    experiment_description: str | None = Field(None, description="Description of the experiment.")
    description: str | None = Field(None, description="Pipeline description shown in the console.")
    scheduled_run_name: str | None = Field(None, description="Display name of scheduled runs.")
    service_account: str | None = Field(None, description="Service account the pipeline runs as.")
    network: NetworkConfig = Field(default_factory=NetworkConfig, description="VPC and host aliases.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels on every run (lowercase keys).")
    caching: bool = Field(True, description="Let Vertex AI reuse results of identical steps.")
    artifacts: bool = Field(
        False,
        description="Declare the catalog datasets each step writes as output artifacts (system.Dataset, URI = "
        "the catalog's own path), so lineage shows in Vertex ML Metadata. Steps on a machine_type "
        "(CustomJob) too, as GCPC's CustomJob wrapper carries a component's outputs.",
    )
    resources: dict[str, ResourceConfig] = Field(
        default_factory=dict,
        description="Per __default__, tag, node name or group name; later wins in that order.",
    )
    node_selectors: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Per tag/node/group: {cloud.google.com/gke-accelerator: NVIDIA_TESLA_T4}.",
    )
    grouping: GroupingConfig = Field(default_factory=GroupingConfig, description="Node grouping.")
    dynamic_config_providers: tuple[DynamicConfigProvider, ...] = Field(
        (), description="Config files generated in each step at run time."
    )
    mlflow: MlflowConfig | None = Field(None, description="MLflow request-header provider settings.")
    on_exit_pipeline: str | None = Field(
        None, description="Kedro pipeline run after the main one whatever its status."
    )
    schedules: dict[str, ScheduleConfig] = Field(
        default_factory=dict, description="default_schedule, or per pipeline name."
    )

    _coerce_labels = field_validator("labels", mode="before")(
        lambda value: {k: _as_str(v) for k, v in value.items()} if isinstance(value, Mapping) else value
    )

    @field_validator("labels")
    @classmethod
    def _valid_labels(cls, value: dict[str, str]) -> dict[str, str]:
        from .names import validate_label

        if len(value) > rules.MAX_LABELS:
            raise ValueError(f"{len(value)} labels; Vertex AI allows at most {rules.MAX_LABELS}")
        for key, val in value.items():
            validate_label(key, val)
        return value

    _valid_image = field_validator("image")(classmethod(lambda cls, value: rules.check_image(value)))
    _valid_account = field_validator("service_account")(_optional(rules.check_service_account))

    @field_validator("root")
    @classmethod
    def _normalise_root(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if value.startswith("s3://") and info.data.get("target", "vertex") == "vertex":
            raise ValueError(f"pipeline root must be on Cloud Storage (gs://bucket/path) for Vertex AI, got "
                             f"{value!r} (s3:// roots need run_config.target: kfp)")
        if value.startswith("s3://"):
            return value.rstrip("/")
        if value.startswith("gs://"):
            root = value.rstrip("/")
        elif "://" in value:
            raise ValueError(f"pipeline root must be on Cloud Storage (gs://bucket/path) or, with target kfp, "
                             f"S3/MinIO (s3://bucket/path), got {value!r}")
        else:
            root = "gs://" + value.strip("/")
        return rules.check_gcs_path(root)

    @field_validator("node_selectors")
    @classmethod
    def _valid_accelerators(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for selectors in value.values():
            if ACCELERATOR_SELECTOR in selectors:
                rules.check_accelerator(selectors[ACCELERATOR_SELECTOR])
        return value

    def schedule_for(self, pipeline: str) -> ScheduleConfig | None:
        """The pipeline's own schedule, else ``default_schedule``, else None: nothing is scheduled unasked."""
        return self.schedules.get(pipeline) or self.schedules.get("default_schedule")


class KfpAuthConfig(_Model):
    """How to reach a Kubeflow Pipelines API that sits behind authentication."""

    mode: Literal["none", "iap", "dex", "token"] = Field(
        "none", description="none; iap (Google ID token for client_id); dex (login with user/password from the "
        "environment); token (a bearer token from token_file or token_env, e.g. in-cluster).")
    client_id: str | None = Field(None, description="IAP OAuth client id (default: $IAP_CLIENT_ID).")
    service_account: str | None = Field(
        None, description="iap: service account whose ID token is sent (needs roles/iam.serviceAccountOpenId"
        "TokenCreator for the caller); default: the service-account key in use.")
    username_env: str = Field("DEX_USERNAME", description="dex: environment variable holding the user.")
    password_env: str = Field("DEX_PASSWORD", description="dex: environment variable holding the password.")
    token_file: str | None = Field(None, description="token: file holding the bearer token.")
    token_env: str | None = Field(None, description="token: environment variable holding the bearer token.")

    @model_validator(mode="after")
    def _complete(self) -> KfpAuthConfig:
        if self.mode == "token" and not (self.token_file or self.token_env):
            raise ValueError("auth mode token needs token_file or token_env")
        return self


class KfpConfig(_Model):
    """A self-hosted Kubeflow Pipelines 2.x target (used when run_config.target is kfp)."""

    host: str = Field(description="KFP API URL, e.g. https://kubeflow.example.com/pipeline.")
    ui_host: str | None = Field(None, description="KFP UI URL for links (default: host without /pipeline).")
    experiment: str | None = Field(None, description="KFP experiment (default: run_config.experiment_name, "
                                   "else the project name).")
    namespace: str | None = Field(None, description="Kubernetes namespace (multi-user Kubeflow).")
    auth: KfpAuthConfig = Field(default_factory=KfpAuthConfig, description="Authentication to the API.")

    @field_validator("host", "ui_host")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError(f"expected an http(s) URL like https://kubeflow.example.com/pipeline, got {value!r}")
        return value.rstrip("/")


class PluginConfig(_Model):
    """Top level of ``conf/<env>/vertexai.yml``."""

    project_id: str = Field(description="Google Cloud project ID.")
    region: str = Field(description="Vertex AI region, e.g. europe-west1.")
    run_config: RunConfig = Field(description="How the pipeline runs.")
    build: BuildConfig = Field(default_factory=BuildConfig, description="Cloud Build settings.")
    endpoints: Endpoints = Field(default_factory=Endpoints, description="API endpoint overrides.")
    kfp: KfpConfig | None = Field(None, description="Kubeflow Pipelines target (see run_config.target).")

    _coerce = field_validator("project_id", "region", mode="before")(_as_str)

    @model_validator(mode="after")
    def _target_configured(self) -> PluginConfig:
        if self.run_config.target == "kfp" and self.kfp is None:
            raise ValueError("run_config.target is kfp: add a kfp section with at least host")
        return self


# ---------------------------------------------------------------------------------------------------------
# Parsing with file/key/line errors


@dataclass(frozen=True)
class ConfigSource:
    """A YAML file that contributed to the merged config, most specific (env) first."""

    path: Path
    text: str


@dataclass(frozen=True)
class ParsedConfig:
    config: PluginConfig
    warnings: tuple[str, ...]


class _Locator:
    """Finds the file and line that set a key path, preferring the most specific environment."""

    def __init__(self, sources: Sequence[ConfigSource]):
        from .yaml_guard import key_lines

        self._sources = [(s.path, key_lines(s.text)) for s in sources]

    def locate(self, path: tuple[str, ...]) -> tuple[str, int | None]:
        for probe in (path[:n] for n in range(len(path), 0, -1)):
            for file, lines in self._sources:
                if probe in lines:
                    return str(file), lines[probe]
        first = self._sources[0][0] if self._sources else Path("vertexai.yml")
        return str(first), None


def locate_key(sources: Sequence[ConfigSource], dotted: str) -> tuple[str, int | None]:
    """File and line that set ``dotted`` (e.g. ``run_config.grouping.cls``), most specific file first."""
    return _Locator(sources).locate(tuple(dotted.split(".")))


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _model_at(path: tuple[str, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the mapping at ``path`` (for did-you-mean on unknown keys)."""
    model: type[BaseModel] | None = PluginConfig
    for part in path:
        if model is None:
            return None
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        model = _nested_model(annotation)
    return model


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _nested_model(arg)
        if found is not None and typing.get_origin(annotation) not in (dict, tuple, list):
            return found
    return None


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(options)}"


def _strip_deprecated(raw: dict[str, Any], locator: _Locator) -> list[str]:
    warnings: list[str] = []
    for path, advice in DEPRECATED_KEYS.items():
        parent: Any = raw
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and path[-1] in parent:
            value = parent.pop(path[-1])
            file, line = locator.locate(path)
            where = f"{file}:{line}" if line else file
            warnings.append(f"{where}: {'.'.join(path)} is {advice}")
            _migrate(raw, path, value)
    return warnings


def _migrate(raw: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Carry the meaning of an old key over where it still has one."""
    run_config = raw.get("run_config")
    if not isinstance(run_config, dict):
        return
    if path == ("run_config", "vertex_ai_networking") and isinstance(value, dict):
        network = run_config.setdefault("network", {})
        if isinstance(network, dict):
            for key in ("vpc", "host_aliases"):
                if key in value and key not in network:
                    network[key] = value[key]
    elif path == ("on_exit_pipeline",) and "on_exit_pipeline" not in run_config:
        run_config["on_exit_pipeline"] = value
    elif path == ("run_config", "store_kedro_outputs_as_kfp_artifacts") and "artifacts" not in run_config:
        run_config["artifacts"] = value


def _problem_for(error: Any, locator: _Locator) -> Problem:
    loc = tuple(str(part) for part in error["loc"])
    file, line = locator.locate(loc)
    key = ".".join(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        if loc[-1] in RENAMED_KEYS:
            return Problem(file, key, f"unknown key: {RENAMED_KEYS[loc[-1]]}", line)
        model = _model_at(loc[:-1])
        hint = _did_you_mean(loc[-1], _allowed_keys(model)) if model else ""
        return Problem(file, key, f"unknown key{hint}", line)
    if kind == "missing":
        return Problem(file, key, "required key is missing", line)
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    if "input_value" in error.get("ctx", {}) or kind.endswith("_type") or kind.endswith("_parsing"):
        message = f"{message} (got {_shown(error.get('input'))})"
    return Problem(file, key, message, line)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _invisible_characters(data: Any, locator: _Locator) -> list[Problem]:
    """Control and invisible characters anywhere in keys or values (descriptions may break lines)."""
    problems: list[Problem] = []
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                found = rules.invisible_character(key)
                if found:
                    problems.append(_located(locator, (*path, key), f"key contains an invisible or control character ({found})"))
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, str(i))) for i, item in enumerate(value))
        elif isinstance(value, str):
            free_text = bool(path) and path[-1] in _FREE_TEXT_KEYS
            found = rules.invisible_character(value, allow_line_breaks=free_text)
            if found:
                problems.append(_located(locator, path, f"contains an invisible or control character ({found}); {rules.RULES['text']}"))
    return problems


_FREE_TEXT_KEYS = {"description", "experiment_description"}


def _google_project_problems(config: PluginConfig, locator: _Locator) -> list[Problem]:
    """project_id and region in Google's shapes when the pipeline goes to Vertex AI (a kfp target needs neither)."""
    if config.run_config.target != "vertex":
        return []
    problems = []
    for key, check in (("project_id", rules.check_project_id), ("region", rules.check_region)):
        try:
            check(getattr(config, key))
        except ValueError as err:
            problems.append(_located(locator, (key,), str(err)))
    return problems


def _located(locator: _Locator, path: tuple[str, ...], message: str) -> Problem:
    file, line = locator.locate(path)
    return Problem(file, ".".join(path), message, line)


def parse_config(raw: Mapping[str, Any], sources: Sequence[ConfigSource] = ()) -> ParsedConfig:
    """Validate the merged ``vertexai`` mapping; raise ConfigError listing every problem with file/key/line."""
    locator = _Locator(sources)
    data = _plain(raw)
    if not isinstance(data, dict):
        file, _ = locator.locate(())
        raise ConfigError([Problem(file, "", "must be a mapping of keys (project_id, region, run_config)")])
    invisible = _invisible_characters(data, locator)
    if invisible:
        raise ConfigError(sorted(invisible, key=lambda p: (p.file, p.line or 0, p.key)))
    warnings = _strip_deprecated(data, locator)
    try:
        config = PluginConfig.model_validate(data)
    except ValidationError as err:
        problems = [_problem_for(e, locator) for e in err.errors()]
        raise ConfigError(sorted(problems, key=lambda p: (p.file, p.line or 0, p.key))) from None
    google = _google_project_problems(config, locator)
    if google:
        raise ConfigError(google)
    return ParsedConfig(config=config, warnings=tuple(warnings))


def _plain(value: Any) -> Any:
    """Deep-copy into plain dicts/lists (OmegaConf containers and frozen inputs are not ours to mutate)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def load_config_file(path: Path) -> ParsedConfig:
    """Parse one vertexai.yml on its own (no Kedro environments): for tools and tests."""
    from .yaml_guard import read_document

    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError([Problem(str(path), "", f"cannot read the file: {err.strerror or err}")]) from None
    document = read_document(str(path), data)
    raw = yaml.safe_load(document.text) or {}
    return parse_config(raw, [ConfigSource(path, document.text)])


GroupingName = Literal["identity", "tag", "auto"]
