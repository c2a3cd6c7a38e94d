"""Per-step settings: resources, accelerators, retries, timeouts and caching, resolved from ``vertexai.yml``.

Lookup order, later wins key by key: ``__default__`` < tag < node name < group name — matched on names
exactly as the user wrote them (kedro-vertexai sanitised names first, so ``model_training`` never matched).
When several keys of one level match a fused step (two of its nodes, say), the step gets the largest
request of each kind; timeouts of its nodes add up, since they run one after another; it runs on Spot VMs
only if every matching key asks for spot.

A step whose settings name a ``machine_type`` becomes a Vertex AI CustomJob on that machine (only a
CustomJob can choose one, and only a CustomJob can run on Spot VMs, so ``spot`` needs one); it carries the pipeline's service account and VPC, which a
CustomJob does not inherit from the pipeline job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from .config import ACCELERATOR_SELECTOR, DEFAULT_KEY, ResourceConfig, RunConfig
from .errors import ConfigError, Problem
from .model import NodeInfo, Resources, Step

DEFAULT_MACHINE_TYPE = "n1-standard-4"  # GCPC's CustomJob default, suggested when spot lacks a machine

_UNITS = {
    "": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip


def cpu_value(cpu: str) -> float:
    """``"500m"`` → 0.5, ``"2"`` → 2.0."""
    return float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)


def memory_bytes(memory: str) -> int:
    """``"8Gi"`` → 8589934592."""
    digits = memory.rstrip("EiPTGMK")
    return int(digits) * _UNITS[memory[len(digits) :]]


@dataclass(frozen=True)
class _Layer:
    """The settings one level contributes, merged over the keys of that level that match."""

    values: dict[str, object]


def _largest(key: str, a: object, b: object) -> object:
    if a is None:
        return b
    if b is None:
        return a
    if key == "cpu":
        return a if cpu_value(str(a)) >= cpu_value(str(b)) else b
    if key == "memory":
        return a if memory_bytes(str(a)) >= memory_bytes(str(b)) else b
    if key in {"gpu"}:
        return a if int(str(a)) >= int(str(b)) else b
    if key in {"retries", "boot_disk_size_gb"}:
        return max(int(str(a)), int(str(b)))
    if key == "timeout":
        return int(str(a)) + int(str(b))
    if key in {"caching", "spot"}:
        return bool(a) and bool(b)
    return a


def _merge_level(configs: Sequence[Mapping[str, object]]) -> dict[str, object]:
    merged: dict[str, object] = {}
    for config in configs:
        for key, value in config.items():
            if value is not None:
                merged[key] = _largest(key, merged.get(key), value)
    return merged


def _levels(step: Step) -> list[list[str]]:
    return [[DEFAULT_KEY], sorted(step.tags), list(step.nodes), [step.group] if step.group else []]


def _resource_dict(config: ResourceConfig) -> dict[str, object]:
    values: dict[str, object] = config.model_dump(exclude_none=True)
    return values


def resolve_resources(run_config: RunConfig, step: Step) -> Resources:
    """The container settings for one step (see the module docstring for the precedence)."""
    merged: dict[str, object] = {}
    set_by: dict[str, str] = {}  # setting -> the resources key that gave it (for error messages)
    accelerator: str | None = None
    for names in _levels(step):
        configs = {n: _resource_dict(run_config.resources[n]) for n in names if n in run_config.resources}
        merged.update(_merge_level(list(configs.values())))
        set_by.update({key: name for name, config in configs.items() for key in config})
        for name in names:
            selector = run_config.node_selectors.get(name, {}).get(ACCELERATOR_SELECTOR)
            accelerator = selector or accelerator
    accelerator = str(merged.get("accelerator") or accelerator or "") or None
    gpu = merged.get("gpu")
    count = int(str(gpu)) if gpu is not None else (1 if accelerator else None)
    resources = Resources(
        cpu=_opt_str(merged.get("cpu")),
        memory=_opt_str(merged.get("memory")),
        accelerator_type=accelerator if count else None,
        accelerator_count=count if accelerator and count else None,  # gpu: 0 means none
        retries=int(str(merged.get("retries", 0))),
        retry_backoff=_opt_str(merged.get("retry_backoff")),
        timeout_seconds=int(str(merged["timeout"])) if "timeout" in merged else None,
        caching=merged.get("caching") if isinstance(merged.get("caching"), bool) else None,  # type: ignore[arg-type]
        image=_opt_str(merged.get("image")),
    )
    return _placed(resources, merged, set_by, run_config, step)


def _placed(
    resources: Resources,
    merged: dict[str, object],
    set_by: dict[str, str],
    run_config: RunConfig,
    step: Step,
) -> Resources:
    """``resources`` on a named machine (a CustomJob step) when a machine type or spot was asked for."""
    spot = merged.get("spot") is True
    machine = _opt_str(merged.get("machine_type"))
    if machine is None and not spot:
        return resources
    if machine is None:
        raise ConfigError(
            [
                Problem(
                    "vertexai.yml",
                    f"run_config.resources.{set_by['spot']}.spot",
                    f"step {step.name!r} asks for spot but no machine_type: Spot VMs are only available to "
                    f"a step on a named machine; add machine_type (e.g. {DEFAULT_MACHINE_TYPE}) next to spot",
                )
            ]
        )
    disk = merged.get("boot_disk_size_gb")
    return dataclasses.replace(
        resources,
        machine_type=machine,
        spot=spot,
        boot_disk_size_gb=int(str(disk)) if disk is not None else None,
        service_account=run_config.service_account,
        network=run_config.network.vpc,
    )


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def node_images(run_config: RunConfig, step: Step, node_tags: Mapping[str, frozenset[str]]) -> dict[str, str | None]:
    """The image each node of ``step`` asks for on its own (``resources.<node|tag|group>.image``)."""
    images: dict[str, str | None] = {}
    for node in step.nodes:
        alone = Step(name=step.name, nodes=(node,), group=step.group, tags=node_tags.get(node, frozenset()))
        images[node] = resolve_resources(run_config, alone).image
    return images


def check_step_images(run_config: RunConfig, steps: Iterable[Step], node_tags: Mapping[str, frozenset[str]]) -> None:
    """Nodes share a step only with nodes of the same image: one container runs the whole step."""
    problems = []
    for step in steps:
        images = node_images(run_config, step, node_tags)
        if len(set(images.values())) > 1:
            listed = ", ".join(f"{node}: {image or 'run_config.image'}" for node, image in images.items())
            problems.append(Problem("vertexai.yml", "run_config.resources",
                                    f"step {step.name!r} fuses nodes that ask for different images ({listed}); "
                                    f"one container runs a step: give them the same image or put them in "
                                    f"different groups"))
    if problems:
        raise ConfigError(problems)


def unpinned_images(resources: Mapping[str, Resources]) -> dict[str, str]:
    """Per-step images not pinned by digest, by step name (the Action refuses them: it builds only the
    default image, so a tag could point at other bytes on every run)."""
    return {name: r.image for name, r in resources.items() if r.image and "@sha256:" not in r.image}


def require_pinned_images(resources: Mapping[str, Resources]) -> None:
    """Refuse per-step images not pinned by digest (used where only the default image is built: the Action)."""
    unpinned = unpinned_images(resources)
    if unpinned:
        listed = ", ".join(f"{image} (step {step})" for step, image in sorted(unpinned.items()))
        raise ConfigError([Problem("vertexai.yml", "run_config.resources.<key>.image",
                                   f"per-node image not pinned by digest: {listed}. The Action builds only "
                                   f"run_config.image; push the other image yourself and write it as "
                                   f"IMAGE@sha256:DIGEST (`gcloud artifacts docker images describe IMAGE:TAG "
                                   f"--format='value(image_summary.digest)'`) so every run uses the same bytes")])


def unmatched_keys(run_config: RunConfig, steps: Iterable[Step]) -> list[str]:
    """``resources`` / ``node_selectors`` keys that match no node, tag or group: almost always a typo."""
    known = {DEFAULT_KEY}
    for step in steps:
        known.update(step.nodes)
        known.update(step.tags)
        if step.group:
            known.add(step.group)
    keys = set(run_config.resources) | set(run_config.node_selectors)
    return sorted(keys - known)


def node_placements(run_config: RunConfig, nodes: Iterable[NodeInfo]) -> dict[str, Hashable]:
    """Per node, where it would run alone: its resolved settings minus the timeout (which adds up in a fused
    step). Grouping ``auto`` fuses only nodes whose placements are equal, so no node ever runs on another
    machine, accelerator, Spot setting or image, or with other resources, than its own settings ask for."""
    placements: dict[str, Hashable] = {}
    for node in nodes:
        alone = Step(name=node.name, nodes=(node.name,), tags=node.tags)
        placements[node.name] = dataclasses.replace(resolve_resources(run_config, alone), timeout_seconds=None)
    return placements


def machine_label(resources: Resources) -> str:
    """What a step is billed as: its machine type, or Vertex's default machine sized by cpu/memory."""
    if resources.machine_type:
        spot = " (Spot)" if resources.spot else ""
        accelerator = f" + {resources.accelerator_count}x {resources.accelerator_type}" if resources.accelerator_type else ""
        return f"{resources.machine_type}{accelerator}{spot}"
    sized = ", ".join(f"{k} {v}" for k, v in (("cpu", resources.cpu), ("memory", resources.memory)) if v)
    accelerator = f" + {resources.accelerator_count}x {resources.accelerator_type}" if resources.accelerator_type else ""
    return f"default machine ({sized or 'no limits'}){accelerator}"
