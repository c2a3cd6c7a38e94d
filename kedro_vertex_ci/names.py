"""Names Vertex AI accepts: pipeline names, task names, job ids and labels (pure functions)."""

from __future__ import annotations

import hashlib
import re

_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


def sanitize_name(text: str, *, max_length: int = 128, fallback: str = "pipeline") -> str:
    """Lowercase letters, digits and dashes, starting with a letter: ``"My Model_v2"`` → ``"my-model-v2"``."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"{fallback}-{name}".strip("-")
    if len(name) > max_length:
        digest = hashlib.sha1(text.encode()).hexdigest()[:6]
        name = f"{name[: max_length - 7].rstrip('-')}-{digest}"
    return name


def sanitize_label_value(text: str) -> str:
    """A label value from free text (branch names, shas): lowercase, ≤ 63 chars, ``[a-z0-9_-]``."""
    value = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")
    if len(value) > 63:
        value = value[:56].rstrip("-") + "-" + hashlib.sha1(text.encode()).hexdigest()[:6]
    return value


def validate_label(key: str, value: str) -> None:
    """Raise ValueError unless ``key: value`` is a valid Google Cloud label."""
    if not _LABEL_KEY.match(key):
        raise ValueError(
            f"label key {key!r} must start with a lowercase letter and use only a-z, 0-9, _ and - (≤ 63)"
        )
    if not isinstance(value, str) or not _LABEL_VALUE.match(value):
        raise ValueError(f"label {key}={value!r}: values use only lowercase a-z, 0-9, _ and - (≤ 63)")
