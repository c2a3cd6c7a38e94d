"""Frozen values that flow through the pure core: project graph → steps → plan → spec.

Nothing here touches Kedro, files, the network or the environment; ``kedro_io`` builds a
:class:`PipelineGraph` from a real project, ``grouping`` turns it into :class:`Step` s, ``settings``
resolves per-step settings, and ``spec`` emits a KFP ``PipelineSpec`` from a :class:`Plan`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

TRANSCODING_SEPARATOR = "@"


def strip_transcoding(dataset: str) -> str:
    """The dataset ``name@format`` stands for: Kedro links producers and consumers on the part before ``@``.

    ``model_input@spark`` written and ``model_input@pandas`` read are one dataset for ordering, and one
    intermediate file between steps (Kedro's own ``Pipeline.node_dependencies`` strips the suffix too).
    """
    return dataset.split(TRANSCODING_SEPARATOR, 1)[0]


class DatasetKind(str, Enum):
    """How a dataset travels between steps."""

    CATALOG = "catalog"  # persisted by the user's catalog: nothing to pass
    PARAMETER = "parameter"  # ``params:x`` / ``parameters``: a pipeline input parameter
    INTERMEDIATE = "intermediate"  # not persisted: the step runtime writes it under the pipeline root


@dataclass(frozen=True)
class NodeInfo:
    """The part of a Kedro node the compiler needs (names exactly as the user wrote them)."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PipelineGraph:
    """A Kedro pipeline reduced to values: nodes in Kedro's topological order plus dataset kinds.

    ``parameters`` holds the project's parameter values (top-level keys), used to type pipeline inputs.
    """

    name: str
    nodes: tuple[NodeInfo, ...]
    dataset_kinds: Mapping[str, DatasetKind]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    # ``${runtime_params:KEY}`` in the project's config: each top-level KEY is a pipeline input every step
    # receives (Kedro resolves the interpolations in the step); parameters built from them are not frozen
    # into the spec (``runtime_derived``).
    runtime_keys: tuple[str, ...] = ()
    runtime_derived: frozenset[str] = frozenset()

    def kind(self, dataset: str) -> DatasetKind:
        if dataset == "parameters" or dataset.startswith("params:"):
            return DatasetKind.PARAMETER
        return self.dataset_kinds.get(dataset, DatasetKind.INTERMEDIATE)


@dataclass(frozen=True)
class Step:
    """One Vertex task: a group of Kedro nodes run by one step-runtime process.

    ``name`` is the readable task name (Vertex rules: lowercase, digits, dashes; unique; stable).
    ``nodes`` are Kedro node names in topological order. ``depends_on`` names other steps.
    ``reads`` are intermediate datasets loaded from the pipeline root; ``writes`` are intermediate
    datasets this step must save there because a later step (or the on-exit pipeline) reads them —
    including datasets also consumed inside this step.
    """

    name: str
    nodes: tuple[str, ...]
    depends_on: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    group: str | None = None  # the group name the user gave (tag grouping), for settings lookup
    tags: frozenset[str] = frozenset()  # union of the nodes' tags
    parameters: tuple[str, ...] = ()  # top-level Kedro parameter keys the step's nodes use


@dataclass(frozen=True)
class Resources:
    """Per-step container settings, already validated (strings as Vertex/KFP expects them)."""

    cpu: str | None = None  # "2", "500m"
    memory: str | None = None  # "8G", "512M" (kfp units)
    accelerator_type: str | None = None  # "NVIDIA_TESLA_T4"
    accelerator_count: int | None = None
    retries: int = 0
    retry_backoff: str | None = None  # "60s"
    timeout_seconds: int | None = None  # enforced by the step runtime
    caching: bool | None = None  # None = pipeline default
    # A machine type makes the step a Vertex AI CustomJob on that machine (see ``customjob``); cpu/memory
    # limits then do not apply. The pipeline's service account and VPC are carried per step, since a
    # CustomJob does not inherit them from the pipeline job.
    machine_type: str | None = None  # "n1-highmem-8", "a2-highgpu-1g"
    spot: bool = False  # Spot VMs (CustomJob scheduling strategy SPOT)
    boot_disk_size_gb: int | None = None  # None = Vertex's 100 GB
    service_account: str | None = None
    network: str | None = None  # projects/NUMBER/global/networks/NAME
    image: str | None = None  # the step's own image instead of the plan's (``resources.<key>.image``)

    @property
    def custom_job(self) -> bool:
        """True when the step must run as a CustomJob (only a CustomJob can choose its machine)."""
        return self.machine_type is not None


class ParamType(str, Enum):
    """KFP pipeline-input types, as named in ``PipelineSpec`` ``ParameterType``."""

    STRING = "STRING"
    NUMBER_INTEGER = "NUMBER_INTEGER"
    NUMBER_DOUBLE = "NUMBER_DOUBLE"
    BOOLEAN = "BOOLEAN"
    LIST = "LIST"
    STRUCT = "STRUCT"


@dataclass(frozen=True)
class PipelineParam:
    """A runtime pipeline input: one top-level Kedro parameter, typed from its value."""

    name: str  # input name in the spec (sanitised identifier)
    key: str  # the Kedro parameter key as written in parameters.yml
    type: ParamType
    default: Any


@dataclass(frozen=True)
class HostAlias:
    """One hosts-file line a step writes before Kedro starts: ``ip`` and the names that resolve to it."""

    ip: str
    hostnames: tuple[str, ...]


@dataclass(frozen=True)
class ConfigProvider:
    """A dynamic config provider a step runs before its nodes: class path and its keyword arguments."""

    cls: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """Everything ``spec.emit`` needs: a pure function of this value gives identical spec bytes."""

    pipeline_name: str  # display name of the pipeline in the spec (sanitised per Vertex rules)
    kedro_pipeline: str  # the Kedro pipeline name ("__default__")
    image: str
    env: str  # Kedro environment the steps run with
    steps: tuple[Step, ...]  # in topological order
    resources: Mapping[str, Resources]  # by step name
    params: tuple[PipelineParam, ...]
    description: str = ""
    caching: bool = True  # pipeline default, per step overridable
    on_exit: Step | None = None  # runs whatever the status (KFP exit handler)
    on_exit_pipeline: str | None = None  # the Kedro pipeline the on-exit step's nodes belong to
    mlflow: bool = False
    extra_env: Mapping[str, str] = field(default_factory=dict)  # static env for every step
    host_aliases: tuple[HostAlias, ...] = ()  # hosts-file entries every step writes before Kedro starts
    config_providers: tuple[ConfigProvider, ...] = ()  # run in every step before its nodes
    # run_config.artifacts: per step, the catalog datasets its nodes write, declared as output artifacts
    artifacts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    run_times: bool = False  # config uses ${vertex:scheduled_time|scheduled_date}: steps get the job's times
    # run_config.experiment_name: each step gets its job's resource name and adds a scheduled run to it
    experiment: str | None = None
    experiment_description: str | None = None
