"""What Google Cloud accepts, checked before anything is compiled: names, references and quantities.

Pure functions, one per rule, each returning the value (normalised where the model needs it) or raising a
``ValueError`` whose message states the rule, so ``config`` can report it with the file, key and line. The
limits come from Google's documentation (cited in :data:`RULES`, which ``docs_gen`` publishes); a value
that passes here cannot make the spec, the step runtime or Vertex AI refuse it later for its shape.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Any

# ---------------------------------------------------------------------------------------------- limits

MAX_CPU = 96  # Vertex AI Pipelines: "up to 96 CPUs" per step (set_cpu_limit)
MAX_MEMORY_BYTES = 624 * 10**9  # Vertex AI Pipelines: "up to 624 GB" per step (set_memory_limit)
MAX_ACCELERATORS = 16  # the most GPUs one Vertex AI machine carries (a2-megagpu-16g)
MAX_STEP_TIMEOUT = 7 * 24 * 3600  # a Vertex AI CustomJob's longest default run; also fits signal.alarm
MAX_RETRY_BACKOFF = 3600  # the retry policy's backoff_max_duration: a longer first wait is cut to it
MAX_BUILD_TIMEOUT = 24 * 3600  # Cloud Build: a build times out after at most 24 hours
MAX_LABELS = 64  # Vertex AI: at most 64 labels per resource
INT64_MAX = 2**63 - 1  # the protobuf fields counts go to

# Vertex AI's AcceleratorType enum (google.cloud.aiplatform_v1.types.AcceleratorType), minus UNSPECIFIED.
ACCELERATOR_TYPES = frozenset(
    {
        "NVIDIA_TESLA_K80", "NVIDIA_TESLA_P100", "NVIDIA_TESLA_V100", "NVIDIA_TESLA_P4", "NVIDIA_TESLA_T4",
        "NVIDIA_TESLA_A100", "NVIDIA_A100_80GB", "NVIDIA_L4", "NVIDIA_H100_80GB", "NVIDIA_H100_MEGA_80GB",
        "NVIDIA_H200_141GB", "NVIDIA_B200", "NVIDIA_GB200", "NVIDIA_RTX_PRO_6000",
        "TPU_V2", "TPU_V3", "TPU_V4_POD", "TPU_V5_LITEPOD",
    }
)  # fmt: skip
# Cloud Build's BuildOptions.MachineType enum, minus UNSPECIFIED.
BUILD_MACHINE_TYPES = frozenset({"N1_HIGHCPU_8", "N1_HIGHCPU_32", "E2_HIGHCPU_8", "E2_HIGHCPU_32", "E2_MEDIUM", "E2_STANDARD_2"})

RULES: dict[str, str] = {
    "project_id": "6-30 characters: lowercase ASCII letters, digits and hyphens, starting with a letter and not "
    "ending with a hyphen (Resource Manager); a domain-scoped `example.com:my-project` is accepted too.",
    "region": "a Google Cloud region such as `europe-west1` or `us-central1` (`build.region` also takes `global`). "
    "project_id and region are checked so when run_config.target is vertex (a kfp target uses neither).",
    "buckets": "`root` and `build.staging_bucket` name Cloud Storage buckets: 3-63 characters (up to 222 with "
    "dots, each dot-separated part at most 63) of lowercase letters, digits, `-`, `_` and `.`, starting and "
    "ending with a letter or digit, not an IP address, not starting with `goog`, not containing `google`.",
    "images": "`image` and `build.image` are Docker image references: `[registry[:port]/]path[:tag][@digest]`, "
    "path parts lowercase (`a-z0-9` joined by `.`, `_`, `__` or dashes), tags at most 128 characters, "
    "digests `sha256:` and hex; at most 255 characters before the tag.",
    "labels": "at most 64; keys start with a lowercase letter; keys and values use lowercase letters, "
    "digits, `_` and `-`, at most 63 characters each.",
    "cpu": 'a number ("2", "0.5") or whole millicores ("500m"), above 0 and at most 96 (Vertex AI\'s limit).',
    "memory": 'a whole number with an optional unit K, M, G, T, P, E or Ki … Ei ("8Gi", "512M"), above 0 '
    "and at most 624G (Vertex AI's limit).",
    "gpu": "a whole number of accelerators, 0-16 (0: none).",
    "accelerator": "one of Vertex AI's accelerator types: " + ", ".join(sorted(ACCELERATOR_TYPES)) + ".",
    "machine_type": "a Compute Engine machine type Vertex AI offers, in a size that exists (e.g. "
    "`n1-standard-8`, not `n1-standard-7`).",
    "retry_backoff": 'whole seconds, minutes or hours ("30s", "5m", "1h"), at most 1 hour.',
    "timeout": "whole seconds, at most 604800 (7 days).",
    "build.timeout": "whole seconds, at most 86400 (24 hours, Cloud Build's limit).",
    "build.machine_type": "one of Cloud Build's machine types: " + ", ".join(sorted(BUILD_MACHINE_TYPES)) + ".",
    "timezone": "an IANA time zone name (`Europe/Warsaw`), also in a `TZ=` cron prefix.",
    "cron_expression": "five fields of ASCII digits, names, `*`, `,`, `-` and `/` (minute hour day-of-month "
    "month day-of-week), optionally after `TZ=Area/City `.",
    "text": "no control or invisible characters (zero-width spaces, direction marks …) in any key or value; "
    "only descriptions may hold line breaks and tabs.",
    "service_account": "an email address, e.g. `NAME@PROJECT.iam.gserviceaccount.com`.",
    "endpoints": "http:// or https:// URLs.",
    "class paths": "`grouping.cls` (besides identity/tag/auto) and `dynamic_config_providers[].cls` are dotted "
    "Python paths (`package.module.Class`).",
}

# ---------------------------------------------------------------------------------------------- text


def shown(value: object, limit: int = 60) -> str:
    """``repr`` of a value for a message, cut to ``limit`` characters (a 5000-digit number stays readable)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"

_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}


def invisible_character(text: str, *, allow_line_breaks: bool = False) -> str | None:
    """The first control or invisible character in ``text`` as ``U+hhhh NAME`` (hex code point), else None."""
    for char in text:
        if allow_line_breaks and char in "\n\t":
            continue
        if unicodedata.category(char) in _INVISIBLE_CATEGORIES:
            name = unicodedata.name(char, "control character")
            return f"U+{ord(char):04X} {name}"
    return None


def check_text(value: str, *, allow_line_breaks: bool = False) -> str:
    found = invisible_character(value, allow_line_breaks=allow_line_breaks)
    if found:
        raise ValueError(f"contains an invisible or control character ({found}); retype the value")
    return value


# ---------------------------------------------------------------------------------------------- names

_PROJECT_ID = re.compile(r"^(?:[a-z0-9][a-z0-9.-]{0,61}[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]+(?:-[a-z]+)+[0-9]{1,2}$")


def check_project_id(value: str) -> str:
    if not _PROJECT_ID.match(value):
        raise ValueError(f"{shown(value)} is not a Google Cloud project ID: {RULES['project_id']}")
    return value


def check_region(value: str, *, allow_global: bool = False) -> str:
    if allow_global and value == "global":
        return value
    if not _REGION.match(value):
        raise ValueError(f"{shown(value)} is not a Google Cloud region: use one like europe-west1 or us-central1")
    return value


_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")


def check_bucket(name: str) -> str:
    """Cloud Storage's bucket naming rules (cloud.google.com/storage/docs/buckets#naming)."""
    rule = RULES["buckets"]
    if not _BUCKET_CHARS.match(name) or not 3 <= len(name) <= 222:
        raise ValueError(f"bucket name {shown(name)} is not valid: {rule}")
    parts = name.split(".")
    if len(name) > 63 and len(parts) == 1 or any(not 1 <= len(p) <= 63 for p in parts):
        raise ValueError(f"bucket name {shown(name)} is not valid: {rule}")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        raise ValueError(f"bucket name {shown(name)} is an IP address: {rule}")
    if name.startswith("goog") or "google" in name.replace("0", "o"):
        raise ValueError(f"bucket name {shown(name)} is reserved by Google (goog prefix, google in the name)")
    return name


def check_gcs_path(value: str) -> str:
    """``gs://bucket[/object/prefix]`` with a valid bucket name and an object prefix GCS can store."""
    bucket, _, prefix = value.removeprefix("gs://").partition("/")
    check_bucket(bucket)
    if len(prefix.encode("utf-8")) > 1000:
        raise ValueError("the path inside the bucket is longer than Cloud Storage object names allow (1024 bytes)")
    if any(part in {".", ".."} for part in prefix.split("/")):
        raise ValueError(f"{shown(value)}: '.' and '..' are not folder names on Cloud Storage")
    if '"' in prefix or "\\" in prefix:
        raise ValueError(f"{shown(value)}: a pipeline root cannot contain '\"' or '\\': Vertex AI writes it raw "
                         "into the JSON request of steps on a machine_type (CustomJob)")
    return value


def check_network(value: str) -> str:
    """A VPC network name: no '"' or '\\', which no network name holds and a CustomJob request could not carry."""
    if '"' in value or "\\" in value:
        raise ValueError(f"{shown(value)} is not a VPC network (projects/NUMBER/global/networks/NAME): Vertex AI "
                         "writes it raw into the JSON request of steps on a machine_type (CustomJob)")
    return value


# Docker's reference grammar (distribution/reference): domain, lowercase path, tag, digest.
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_PART}(?:/{_PATH_PART})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"^(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$", re.ASCII)
_REPOSITORY = re.compile(rf"^{_NAME}$", re.ASCII)


def check_image(value: str, *, allow_tag: bool = True) -> str:
    """A Docker image reference (``allow_tag=False``: a repository only, as ``build.image`` names)."""
    pattern = _REFERENCE if allow_tag else _REPOSITORY
    match = pattern.match(value)
    name = match.group("name") if match and allow_tag else value
    if match is None or len(name) > 255:
        example = "europe-docker.pkg.dev/PROJECT/REPO/NAME" + (":TAG" if allow_tag else "")
        raise ValueError(f"{shown(value)} is not an image reference like {example}: {RULES['images']}")
    return value


_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$", re.ASCII)


def check_service_account(value: str) -> str:
    if not _EMAIL.match(value) or len(value) > 254:
        raise ValueError(f"{shown(value)} is not a service account email (NAME@PROJECT.iam.gserviceaccount.com)")
    return value


_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[^\s]*)?$", re.ASCII)


def check_endpoint(value: str) -> str:
    if not _URL.match(value):
        raise ValueError(f"{shown(value)} is not an http(s):// URL")
    return value


_CLASS_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$", re.ASCII)


def check_class_path(value: str) -> str:
    if not _CLASS_PATH.match(value):
        raise ValueError(f"{shown(value)} is not a Python class path like package.module.ClassName")
    return value


# ---------------------------------------------------------------------------------------------- quantities

_CPU = re.compile(r"^(?:[0-9]{1,9}(?:\.[0-9]{1,9})?|\.[0-9]{1,9}|[0-9]{1,9}m)$", re.ASCII)
_MEMORY = re.compile(r"^(?P<number>[0-9]{1,20})(?P<unit>E|Ei|P|Pi|T|Ti|G|Gi|M|Mi|K|Ki)?$", re.ASCII)
_MEMORY_UNITS = {
    "": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip
_COUNT = re.compile(r"^[0-9]{1,6}$", re.ASCII)
_BACKOFF = re.compile(r"^(?P<number>[0-9]{1,7})(?P<unit>[smh])$", re.ASCII)
_BACKOFF_UNITS = {"s": 1, "m": 60, "h": 3600}


def check_cpu(value: str) -> str:
    if not _CPU.match(value):
        raise ValueError(f"invalid cpu {shown(value)}: {RULES['cpu']}")
    amount = float(value[:-1]) / 1000 if value.endswith("m") else float(value)
    if not 0 < amount <= MAX_CPU:
        raise ValueError(f"cpu {shown(value)} is outside what Vertex AI accepts: {RULES['cpu']}")
    return value


def check_memory(value: str) -> str:
    match = _MEMORY.match(value)
    if not match:
        raise ValueError(f"invalid memory {shown(value)}: {RULES['memory']}")
    amount = int(match.group("number")) * _MEMORY_UNITS[match.group("unit") or ""]
    if not 0 < amount <= MAX_MEMORY_BYTES:
        raise ValueError(f"memory {shown(value)} is outside what Vertex AI accepts: {RULES['memory']}")
    return value


def check_gpu(value: str) -> str:
    if not _COUNT.match(value) or int(value) > MAX_ACCELERATORS:
        raise ValueError(f"invalid gpu {shown(value)}: {RULES['gpu']}")
    return str(int(value))


def check_accelerator(value: str) -> str:
    if value not in ACCELERATOR_TYPES:
        import difflib

        close = difflib.get_close_matches(value.upper().replace("-", "_"), sorted(ACCELERATOR_TYPES), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown accelerator type {shown(value)}; {hint}{RULES['accelerator']}")
    return value


def check_retry_backoff(value: str) -> str:
    match = _BACKOFF.match(value)
    if not match:
        raise ValueError(f"invalid duration {shown(value)}: {RULES['retry_backoff']}")
    if int(match.group("number")) * _BACKOFF_UNITS[match.group("unit")] > MAX_RETRY_BACKOFF:
        raise ValueError(f"retry_backoff {shown(value)} is too long: {RULES['retry_backoff']}")
    return value


def check_build_machine(value: str) -> str:
    if value not in BUILD_MACHINE_TYPES:
        raise ValueError(f"unknown Cloud Build machine type {shown(value)}: {RULES['build.machine_type']}")
    return value


def plain_number_text(value: Any) -> Any:
    """YAML numbers for string fields (``cpu: 8``), as their text; floats that are not finite stay as given."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else value
    return value
