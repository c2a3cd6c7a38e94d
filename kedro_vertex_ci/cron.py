"""Cron validation before any cloud call: Vertex AI schedules take unix cron, optionally ``TZ=Area/City ``."""

from __future__ import annotations

import re

_MONTHS = {m: i for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), start=1)}
_DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_TZ_PREFIX = re.compile(r"^(CRON_TZ|TZ)=(\S+)\s+")
_NUMBER = re.compile(r"^[0-9]{1,4}$", re.ASCII)  # str.isdigit() also takes "²" and "٣", which int() refuses
_TIMEZONE = re.compile(r"^[A-Za-z0-9_+-]{1,64}(?:/[A-Za-z0-9_+-]{1,64}){0,3}$", re.ASCII)


def validate_timezone(name: str) -> str:
    """Return ``name`` if it is an IANA time zone, else raise ValueError (never an OSError).

    ``ZoneInfo`` opens a file named after the key: a folder of tzdata (``Europe``) raises IsADirectoryError
    and an over-long name OSError, so the shape is checked first and any failure to load is "unknown".
    """
    if _TIMEZONE.match(name) and ".." not in name:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(name)
        except Exception:  # ZoneInfoNotFoundError, IsADirectoryError, ValueError, UnicodeError …
            pass
        else:
            return name
    shown = name if len(name) <= 80 else name[:77] + "..."
    raise ValueError(f"unknown time zone {shown!r} (use an IANA name like Europe/Warsaw)")


def split_timezone(expression: str) -> tuple[str | None, str]:
    """``"TZ=Europe/Warsaw 0 3 * * *"`` → ``("Europe/Warsaw", "0 3 * * *")``."""
    match = _TZ_PREFIX.match(expression.strip())
    if match:
        return match.group(2), expression.strip()[match.end() :]
    return None, expression.strip()


def _value(token: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    number = names.get(token.upper()) if names and token.isascii() else None
    if number is None:
        if not _NUMBER.match(token):
            raise ValueError(f"{field}: {token!r} is not a number")
        number = int(token)
    if not low <= number <= high:
        raise ValueError(f"{field}: {number} is outside {low}-{high}")
    return number


def _check_field(text: str, field: str, low: int, high: int, names: dict[str, int]) -> None:
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and (not _NUMBER.match(step) or int(step) == 0):
            raise ValueError(f"{field}: step {step!r} must be a positive number")
        if base == "*":
            continue
        start, dash, end = base.partition("-")
        first = _value(start, low, high, names, field)
        if dash:
            last = _value(end, low, high, names, field)
            if last < first:
                raise ValueError(f"{field}: range {base!r} runs backwards")


def validate_cron(expression: str) -> str:
    """Return the expression if it is valid unix cron (5 fields), else raise ValueError saying which field."""
    if not re.fullmatch(r"[ -~]*", expression):
        raise ValueError(f"cron {expression!r} holds characters other than printable ASCII and spaces")
    tz, body = split_timezone(expression)
    if tz is not None:
        try:
            validate_timezone(tz)
        except ValueError as err:
            raise ValueError(f"{err} in the cron's TZ= prefix") from None
    fields = body.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron {expression!r} has {len(fields)} fields; expected 5: minute hour day-of-month month day-of-week"
        )
    for text, (field, low, high, names) in zip(fields, _FIELDS, strict=True):
        try:
            _check_field(text, field, low, high, names)
        except ValueError as err:
            raise ValueError(f"invalid cron {expression!r}: {err}") from None
    return expression
