"""Compute Engine machine types → the cpu/memory limits that make Vertex AI Pipelines choose them.

Vertex AI Pipelines picks a machine from a task's cpu and memory limits; naming a machine type is the
friendlier way to ask for one, so we translate the common families here.
"""

from __future__ import annotations

import re

# family → memory (GiB) per vCPU
_MEMORY_PER_CPU = {
    ("n1", "standard"): 3.75,
    ("n1", "highmem"): 6.5,
    ("n1", "highcpu"): 0.9,
    ("n2", "standard"): 4,
    ("n2", "highmem"): 8,
    ("n2", "highcpu"): 1,
    ("n2d", "standard"): 4,
    ("n2d", "highmem"): 8,
    ("n2d", "highcpu"): 1,
    ("e2", "standard"): 4,
    ("e2", "highmem"): 8,
    ("e2", "highcpu"): 1,
    ("c2", "standard"): 4,
    ("c2d", "standard"): 4,
    ("c2d", "highmem"): 8,
    ("c2d", "highcpu"): 2,
    ("a2", "highgpu"): 85 / 12,
    ("a2", "ultragpu"): 170 / 12,
    ("g2", "standard"): 4,
}
_PATTERN = re.compile(r"^([a-z][a-z0-9]*)-([a-z]+)-(\d+)[a-z]?$")


def machine_resources(machine_type: str) -> tuple[str, str]:
    """``"n1-standard-8"`` → ``("8", "30G")``; ValueError naming the supported families otherwise."""
    match = _PATTERN.match(machine_type)
    per_cpu = _MEMORY_PER_CPU.get((match.group(1), match.group(2))) if match else None
    if match is None or per_cpu is None:
        families = ", ".join(sorted({f"{a}-{b}-N" for a, b in _MEMORY_PER_CPU}))
        raise ValueError(f"unknown machine type {machine_type!r}; supported: {families}")
    cpus = int(match.group(3))
    memory_gb = int(cpus * per_cpu)
    return str(cpus), f"{max(memory_gb, 1)}G"
