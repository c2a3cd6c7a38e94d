"""A step on a named machine: the Vertex AI CustomJob launcher task that GCPC's wrapper emits, without GCPC.

A plain KFP container task cannot choose its machine on Vertex AI Pipelines (Vertex picks one from the cpu and
memory limits) nor run on Spot VMs; a Vertex CustomJob can. google-cloud-pipeline-components (GCPC) wraps a
container component into a task that runs GCPC's launcher image, which starts a CustomJob whose only worker
pool runs the original container on the requested machine:
``create_custom_training_job_from_component(component, machine_type=…, strategy="SPOT", …)``.

We write the same component, executor and task with kfp's protobuf messages, field for field (the parity
tests compile the GCPC-wrapped equivalent with ``kfp.compiler`` and compare), so compiling needs no GCPC and
Vertex runs the step exactly as it runs a GCPC-built one. The step's own container — image, the step command
with its ``{{$...}}`` placeholders, env — travels inside the ``worker_pool_specs`` input's default; Vertex
substitutes those placeholders before the launcher starts the job, as for a container task.

Output artifacts (``run_config.artifacts``) stay in the component's interface, as GCPC keeps the wrapped
component's, and the step's ``{{$}}`` (the whole ExecutorInput) becomes ``{{$.json_escape[1]}}`` in the
worker pool: Vertex substitutes the ExecutorInput escaped once, so it sits in the launcher's JSON payload as
a string, and the launcher's ``json.loads`` hands the step the same ExecutorInput a container task gets.

``run-local`` has no CustomJob service: :func:`inner_container` takes the step's container back out of a
compiled launcher task so the dry run runs the step itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ConfigError, Problem
from .model import Resources, Step

GCPC_VERSION = "2.22.0"  # the GCPC release whose launcher and inputs we reproduce (pinned in the dev extra)
LAUNCHER_IMAGE = f"gcr.io/ml-pipeline/google-cloud-pipeline-components:{GCPC_VERSION}"
LAUNCHER_MODULE = "google_cloud_pipeline_components.container.v1.custom_job.launcher"
LAUNCHER_COMMAND = ("python3", "-u", "-m", LAUNCHER_MODULE)
EXECUTOR_INPUT = "{{$}}"
EXECUTOR_INPUT_IN_PAYLOAD = "{{$.json_escape[1]}}"  # GCPC's utils._replace_executor_placeholder
OUTPUT = "gcp_resources"  # the launcher writes the CustomJob's resource name here
BOOT_DISK_TYPE = "pd-ssd"
BOOT_DISK_SIZE_GB = 100
STRATEGY_SPOT = "SPOT"
STRATEGY_STANDARD = "STANDARD"

# The launcher's own inputs: (name, parameter type, default or None for "no default"), as GCPC declares them.
# project/location default to the pipeline job's own project and region, resolved by Vertex at run time.
_LAUNCHER_INPUTS: tuple[tuple[str, str, Any], ...] = (
    ("base_output_directory", "STRING", ""),
    ("display_name", "STRING", None),  # set per step: the component's name
    ("enable_web_access", "BOOLEAN", False),
    ("encryption_spec_key_name", "STRING", ""),
    ("labels", "STRUCT", None),
    ("location", "STRING", "{{$.pipeline_google_cloud_location}}"),
    ("max_wait_duration", "STRING", "86400s"),
    ("network", "STRING", ""),
    ("persistent_resource_id", "STRING", "{{$.pipeline_persistent_resource_id}}"),
    ("project", "STRING", "{{$.pipeline_google_cloud_project_id}}"),
    ("psc_interface_config", "STRUCT", None),
    ("reserved_ip_ranges", "LIST", None),
    ("restart_job_on_worker_restart", "BOOLEAN", False),
    ("service_account", "STRING", ""),
    ("strategy", "STRING", STRATEGY_STANDARD),
    ("tensorboard", "STRING", ""),
    ("timeout", "STRING", "604800s"),
    ("worker_pool_specs", "LIST", None),  # set per step: the machine and our container
)
RESERVED_INPUTS = frozenset(name for name, _, _ in _LAUNCHER_INPUTS)


def _input(name: str) -> str:
    return "{{$.inputs.parameters['" + name + "']}}"


def _payload() -> str:
    """The CustomJob request body template, in GCPC's exact text (quoted inputs are strings, others JSON)."""
    scheduling = (
        f'"timeout": "{_input("timeout")}", '
        f'"restart_job_on_worker_restart": {_input("restart_job_on_worker_restart")}, '
        f'"strategy": "{_input("strategy")}", '
        f'"max_wait_duration": "{_input("max_wait_duration")}"'
    )
    job_spec = (
        f'"worker_pool_specs": {_input("worker_pool_specs")}, '
        f'"scheduling": {{{scheduling}}}, '
        f'"service_account": "{_input("service_account")}", '
        f'"tensorboard": "{_input("tensorboard")}", '
        f'"enable_web_access": {_input("enable_web_access")}, '
        f'"network": "{_input("network")}", '
        f'"reserved_ip_ranges": {_input("reserved_ip_ranges")}, '
        f'"base_output_directory": {{"output_uri_prefix": "{_input("base_output_directory")}"}}, '
        f'"persistent_resource_id": "{_input("persistent_resource_id")}", '
        f'"psc_interface_config": {_input("psc_interface_config")}'
    )
    return (
        f'{{"display_name": "{_input("display_name")}", '
        f'"job_spec": {{{job_spec}}}, '
        f'"labels": {_input("labels")}, '
        f'"encryption_spec": {{"kms_key_name": "{_input("encryption_spec_key_name")}"}}}}'
    )


def launcher_args() -> list[str]:
    """The launcher executor's args: job type, payload template, project, location, output file."""
    return [
        "--type",
        "CustomJob",
        "--payload",
        _payload(),
        "--project",
        _input("project"),
        "--location",
        _input("location"),
        "--gcp_resources",
        "{{$.outputs.parameters['" + OUTPUT + "'].output_file}}",
    ]


def worker_pool_specs(
    resources: Resources, image: str, command: Sequence[str], args: Sequence[str], env: Mapping[str, str]
) -> list[dict[str, Any]]:
    """One worker pool, one replica: our step container on the step's machine (GCPC's layout and keys)."""
    if resources.machine_type is None:
        raise ValueError("worker_pool_specs needs a machine type")
    machine: dict[str, Any] = {"machine_type": resources.machine_type}
    if resources.accelerator_type:
        machine["accelerator_type"] = resources.accelerator_type
        machine["accelerator_count"] = (
            1 if resources.accelerator_count is None else resources.accelerator_count
        )
    return [
        {
            "machine_spec": machine,
            "replica_count": 1,
            "container_spec": {
                "image_uri": image,
                "command": _in_payload(command),
                "args": _in_payload(args),
                "env": [{"name": name, "value": env[name]} for name in sorted(env)],
            },
            "disk_spec": {
                "boot_disk_type": BOOT_DISK_TYPE,
                "boot_disk_size_gb": resources.boot_disk_size_gb or BOOT_DISK_SIZE_GB,
            },
        }
    ]


def _in_payload(items: Sequence[str]) -> list[str]:
    """The argv items as they ride in the JSON payload: a whole-item ``{{$}}`` escaped once, as GCPC does."""
    return [EXECUTOR_INPUT_IN_PAYLOAD if item == EXECUTOR_INPUT else item for item in items]


def _from_payload(items: Sequence[Any]) -> list[str]:
    """The argv items the CustomJob's container receives: the launcher's ``json.loads`` undid the escaping."""
    return [EXECUTOR_INPUT if str(item) == EXECUTOR_INPUT_IN_PAYLOAD else str(item) for item in items]


def launcher_defaults(step: Step, resources: Resources, pools: list[dict[str, Any]]) -> dict[str, Any]:
    """The launcher inputs that differ per step; the others keep GCPC's defaults."""
    return {
        "display_name": step.name,
        "worker_pool_specs": pools,
        "strategy": STRATEGY_SPOT if resources.spot else STRATEGY_STANDARD,
        "service_account": resources.service_account or "",
        "network": resources.network or "",
    }


def fill_component(component: Any, step: Step, resources: Resources, pools: list[dict[str, Any]]) -> None:
    """Add the launcher's inputs (with this step's defaults) and its output to the step's ComponentSpec.

    The step's own parameter inputs are already there; a parameter named like a launcher input would
    silently replace it in GCPC's merge, so it is refused instead.
    """
    from google.protobuf import json_format

    from .spec import pb2

    clash = sorted(RESERVED_INPUTS & set(component.input_definitions.parameters))
    if clash:
        raise ConfigError(
            [
                Problem(
                    "vertexai.yml",
                    "run_config.resources",
                    f"step {step.name!r} runs as a CustomJob (machine_type/spot) but uses parameter(s) "
                    f"{clash}, names the CustomJob launcher reserves; rename the parameter(s) or run the "
                    "step without machine_type/spot",
                )
            ]
        )
    types = pb2().ParameterType.ParameterTypeEnum
    per_step = launcher_defaults(step, resources, pools)
    for name, type_name, default in _LAUNCHER_INPUTS:
        spec = component.input_definitions.parameters[name]
        spec.parameter_type = types.Value(type_name)
        spec.is_optional = True
        value = per_step.get(name, default)
        if value is not None:
            json_format.ParseDict(value, spec.default_value)
    component.output_definitions.parameters[OUTPUT].parameter_type = types.STRING


def fill_launcher(container: Any) -> None:
    """The executor's container: GCPC's launcher image starting the CustomJob (no limits: the job has a machine)."""
    container.image = LAUNCHER_IMAGE
    container.command.extend(LAUNCHER_COMMAND)
    container.args.extend(launcher_args())


# --------------------------------------------------------------------------------------------------------
# Reading a compiled spec back (run-local)


def is_launcher(container: Mapping[str, Any]) -> bool:
    """Whether an executor container is a GCPC CustomJob launcher (ours or GCPC's, any GCPC version)."""
    command = [str(part) for part in container.get("command") or ()]
    return LAUNCHER_MODULE in command and "CustomJob" in [str(a) for a in container.get("args") or ()]


def inner_container(task: str, container: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The step container a launcher task would start, shaped like an executor ``container`` entry.

    ``defaults`` are the launcher component's input defaults (``worker_pool_specs`` among them). The
    machine's vCPUs and memory become container limits when the machine type is one we know, so a Docker
    dry run is held to roughly what the step gets on Vertex. ``{{$.json_escape[1]}}`` reads back as ``{{$}}``:
    the step gets the ExecutorInput itself, as it does once the launcher parsed its payload.
    """
    pools = defaults.get("worker_pool_specs")
    if not isinstance(pools, list) or not pools or not isinstance(pools[0], Mapping):
        raise ConfigError(f"spec: CustomJob task {task!r} has no worker_pool_specs to run locally")
    if len(pools) > 1 or float(pools[0].get("replica_count", 1)) != 1:
        raise ConfigError(f"spec: CustomJob task {task!r} asks for several replicas; run-local runs one")
    spec = pools[0].get("container_spec") or {}
    if not spec.get("image_uri"):
        raise ConfigError(f"spec: CustomJob task {task!r} names no container image")
    inner: dict[str, Any] = {
        "image": spec["image_uri"],
        "command": _from_payload(spec.get("command") or ()),
        "args": _from_payload(spec.get("args") or ()),
        "env": [{"name": e["name"], "value": e.get("value", "")} for e in spec.get("env") or ()],
    }
    limits = _machine_limits(str((pools[0].get("machine_spec") or {}).get("machine_type", "")))
    if limits:
        inner["resources"] = limits
    return inner


def _machine_limits(machine_type: str) -> dict[str, str]:
    from .machines import machine_resources

    try:
        cpu, memory = machine_resources(machine_type)
    except ValueError:
        return {}
    return {"resourceCpuLimit": cpu, "resourceMemoryLimit": memory}


def as_container_resources(resources: Resources) -> Resources:
    """A container step's stand-in for a machine: its vCPUs/memory as limits (explicit cpu/memory win).

    Used for the on-exit step, which always runs as a plain container task: its final-status input is a
    JSON object, and placing that inside the CustomJob's JSON request is not something we rely on.
    """
    import dataclasses

    from .machines import machine_resources

    if resources.machine_type is None:
        return resources
    cpu, memory = resources.cpu, resources.memory
    try:
        machine_cpu, machine_memory = machine_resources(resources.machine_type)
    except ValueError:
        machine_cpu, machine_memory = None, None
    return dataclasses.replace(
        resources,
        cpu=cpu or machine_cpu,
        memory=memory or machine_memory,
        machine_type=None,
        spot=False,
        boot_disk_size_gb=None,
        service_account=None,
        network=None,
    )
