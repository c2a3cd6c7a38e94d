"""Compute Engine machine types: which names we accept, and the vCPUs and memory each one has.

A step with a ``machine_type`` runs as a Vertex AI CustomJob on exactly that machine (``customjob``); the
name goes to Vertex as written. The table here checks the name early (a typo is a config error at compile
time, not a failed run) and tells the vCPUs and memory of the machine wherever a container limit stands in
for it: the on-exit step (always a plain container step) and ``run-local``'s Docker limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class _Family:
    """Size of one unit of the number in the name: a vCPU (``n1-standard-8``) or a GPU (``a2-highgpu-2g``)."""

    cpus_per_unit: float
    memory_gb_per_unit: float


_FAMILIES = {
    ("n1", "standard"): _Family(1, 3.75),
    ("n1", "highmem"): _Family(1, 6.5),
    ("n1", "highcpu"): _Family(1, 0.9),
    ("n2", "standard"): _Family(1, 4),
    ("n2", "highmem"): _Family(1, 8),
    ("n2", "highcpu"): _Family(1, 1),
    ("n2d", "standard"): _Family(1, 4),
    ("n2d", "highmem"): _Family(1, 8),
    ("n2d", "highcpu"): _Family(1, 1),
    ("n4", "standard"): _Family(1, 4),
    ("n4", "highmem"): _Family(1, 8),
    ("n4", "highcpu"): _Family(1, 2),
    ("e2", "standard"): _Family(1, 4),
    ("e2", "highmem"): _Family(1, 8),
    ("e2", "highcpu"): _Family(1, 1),
    ("c2", "standard"): _Family(1, 4),
    ("c2d", "standard"): _Family(1, 4),
    ("c2d", "highmem"): _Family(1, 8),
    ("c2d", "highcpu"): _Family(1, 2),
    ("c3", "standard"): _Family(1, 4),
    ("c3", "highmem"): _Family(1, 8),
    ("c3", "highcpu"): _Family(1, 2),
    ("g2", "standard"): _Family(1, 4),
    # GPU families: the number counts GPUs ("a2-highgpu-2g" = 2 A100s, 24 vCPUs, 170 GB).
    ("a2", "highgpu"): _Family(12, 85),
    ("a2", "megagpu"): _Family(6, 85),
    ("a2", "ultragpu"): _Family(12, 170),
    ("a3", "highgpu"): _Family(26, 234),
}
_PATTERN = re.compile(r"^([a-z][a-z0-9]*)-([a-z]+)-(\d+)([a-z]?)$", re.ASCII)

_POWERS = (2, 4, 8, 16, 32, 64, 96)
# The sizes each family comes in (Compute Engine's machine families pages): "n1-standard-7" does not exist.
_SIZES: dict[tuple[str, str], tuple[int, ...]] = {
    ("n1", "standard"): (1, *_POWERS),
    ("n1", "highmem"): _POWERS,
    ("n1", "highcpu"): _POWERS,
    ("n2", "standard"): (2, 4, 8, 16, 32, 48, 64, 80, 96, 128),
    ("n2", "highmem"): (2, 4, 8, 16, 32, 48, 64, 80, 96, 128),
    ("n2", "highcpu"): (2, 4, 8, 16, 32, 48, 64, 80, 96),
    ("n2d", "standard"): (2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 224),
    ("n2d", "highmem"): (2, 4, 8, 16, 32, 48, 64, 80, 96),
    ("n2d", "highcpu"): (2, 4, 8, 16, 32, 48, 64, 80, 96, 128, 224),
    ("n4", "standard"): (2, 4, 8, 16, 32, 48, 64, 80),
    ("n4", "highmem"): (2, 4, 8, 16, 32, 48, 64, 80),
    ("n4", "highcpu"): (2, 4, 8, 16, 32, 48, 64, 80),
    ("e2", "standard"): (2, 4, 8, 16, 32),
    ("e2", "highmem"): (2, 4, 8, 16),
    ("e2", "highcpu"): (2, 4, 8, 16, 32),
    ("c2", "standard"): (4, 8, 16, 30, 60),
    ("c2d", "standard"): (2, 4, 8, 16, 32, 56, 112),
    ("c2d", "highmem"): (2, 4, 8, 16, 32, 56, 112),
    ("c2d", "highcpu"): (2, 4, 8, 16, 32, 56, 112),
    ("c3", "standard"): (4, 8, 22, 44, 88, 176),
    ("c3", "highmem"): (4, 8, 22, 44, 88, 176),
    ("c3", "highcpu"): (4, 8, 22, 44, 88, 176),
    ("g2", "standard"): (4, 8, 12, 16, 24, 32, 48, 96),
    ("a2", "highgpu"): (1, 2, 4, 8),
    ("a2", "megagpu"): (16,),
    ("a2", "ultragpu"): (1, 2, 4, 8),
    ("a3", "highgpu"): (1, 2, 4, 8),
}


def check_machine_size(machine_type: str) -> None:
    """ValueError unless ``machine_type`` is a size its family comes in (after :func:`machine_resources`)."""
    match = _PATTERN.match(machine_type)
    if match is None:
        return
    family = (match.group(1), match.group(2))
    sizes = _SIZES.get(family, ())
    gpu_family = _FAMILIES[family].cpus_per_unit > 1 if family in _FAMILIES else False
    suffix_ok = match.group(4) == ("g" if gpu_family else "")
    if int(match.group(3)) not in sizes or not suffix_ok:
        unit = "g" if gpu_family else ""
        listed = ", ".join(f"{family[0]}-{family[1]}-{n}{unit}" for n in sizes)
        raise ValueError(f"machine type {machine_type!r} does not exist; that family comes in: {listed}")


def machine_resources(machine_type: str) -> tuple[str, str]:
    """``"n1-standard-8"`` → ``("8", "30G")``; ValueError naming the supported families otherwise."""
    match = _PATTERN.match(machine_type)
    family = _FAMILIES.get((match.group(1), match.group(2))) if match else None
    if match is None or family is None:
        families = ", ".join(
            sorted(f"{a}-{b}-N{'g' if f.cpus_per_unit > 1 else ''}" for (a, b), f in _FAMILIES.items())
        )
        raise ValueError(f"unknown machine type {machine_type!r}; supported: {families}")
    units = int(match.group(3))
    cpus = int(units * family.cpus_per_unit)
    memory_gb = int(units * family.memory_gb_per_unit)
    return str(max(cpus, 1)), f"{max(memory_gb, 1)}G"
