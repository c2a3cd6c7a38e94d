"""The action's inputs: read from ``INPUT_*`` variables, defaulted and validated before anything runs.

GitHub upper-cases input names but keeps hyphens (``INPUT_PROJECT-ID``); shells and ``docker run -e`` users
write underscores (``INPUT_PROJECT_ID``). Both are accepted; the hyphenated name wins when both are set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from kedro_vertex_ci.errors import ConfigError, Problem

MODES = ("auto", "run-once", "schedule", "unschedule", "compile")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", ""}
_PARAM_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")

# name -> default, exactly as documented in action.yml
DEFAULTS: dict[str, str] = {
    "project-id": "",
    "region": "",
    "workload-identity-provider": "",
    "service-account": "",
    "env": "",
    "pipeline": "__default__",
    "image": "",
    "build": "true",
    "mode": "auto",
    "cron": "",
    "params": "",
    "wait": "false",
    "github-token": "",
    "working-directory": ".",
    "requirements": "requirements.txt",
    "dry-run": "false",
    "force": "false",
    "cancel-superseded": "true",
    "pip-cache-dir": "",
}


@dataclass(frozen=True)
class Inputs:
    """Validated action inputs. Empty strings from the workflow become None (meaning: take it from the config)."""

    project_id: str | None = None
    region: str | None = None
    workload_identity_provider: str | None = None
    service_account: str | None = None
    env: str | None = None
    pipeline: str = "__default__"
    image: str | None = None
    build: bool = True
    mode: str = "auto"
    cron: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    wait: bool = False
    github_token: str | None = None
    working_directory: str = "."
    requirements: str | None = "requirements.txt"
    dry_run: bool = False
    force: bool = False  # submit (and build) again even when this commit already has a run (an image)
    cancel_superseded: bool = True
    pip_cache_dir: str | None = None  # relative to the workspace; restored by actions/cache when opted in


def raw_input(environ: Mapping[str, str], name: str) -> str:
    """The value GitHub passed for input ``name`` (hyphen or underscore spelling), else its default."""
    upper = name.upper()
    for key in (f"INPUT_{upper}", f"INPUT_{upper.replace('-', '_')}"):
        if key in environ:
            return environ[key].strip()
    return DEFAULTS[name]


def parse_bool(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError([Problem(file="action inputs", key=name, message=f"expected true or false, got {text!r}")])


def parse_params(text: str) -> dict[str, str]:
    """``params`` as ``key=value`` lines (or a JSON object); values stay strings, the compiler types them."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError([Problem("action inputs", "params", f"invalid JSON object: {err.msg}")]) from err
        if not isinstance(loaded, dict):
            raise ConfigError([Problem("action inputs", "params", "expected a JSON object")])
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in loaded.items()}
    params: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _PARAM_KEY.match(key):
            raise ConfigError(
                [Problem("action inputs", "params", f"line {number}: expected key=value, got {line!r}")]
            )
        params[key] = value.strip()
    return params


def validate_provider(provider: str) -> list[Problem]:
    """The provider name checked by the one validator the CLI uses too (``gcp.auth.parse_provider``)."""
    from kedro_vertex_ci.errors import AuthError
    from kedro_vertex_ci.gcp.auth import parse_provider

    try:
        parse_provider(provider)
    except AuthError as err:
        return [Problem("action inputs", "workload-identity-provider", str(err))]
    return []


def read_inputs(environ: Mapping[str, str]) -> Inputs:
    """Read and validate every input; all problems are reported together."""
    raw = {name: raw_input(environ, name) for name in DEFAULTS}
    problems: list[Problem] = []

    def boolean(name: str) -> bool:
        try:
            return parse_bool(name, raw[name])
        except ConfigError as err:
            problems.extend(err.problems)
            return False

    build, wait, dry_run = boolean("build"), boolean("wait"), boolean("dry-run")
    force, cancel_superseded = boolean("force"), boolean("cancel-superseded")
    mode = raw["mode"].lower() or "auto"
    if mode not in MODES:
        problems.append(Problem("action inputs", "mode", f"expected one of {', '.join(MODES)}, got {raw['mode']!r}"))
    params: dict[str, str] = {}
    try:
        params = parse_params(raw["params"])
    except ConfigError as err:
        problems.extend(err.problems)
    if raw["workload-identity-provider"]:
        problems.extend(validate_provider(raw["workload-identity-provider"]))
    if raw["service-account"] and "@" not in raw["service-account"]:
        problems.append(Problem("action inputs", "service-account", "expected an email like NAME@PROJECT.iam.gserviceaccount.com"))
    if problems:
        raise ConfigError(problems)
    return Inputs(
        project_id=raw["project-id"] or None,
        region=raw["region"] or None,
        workload_identity_provider=raw["workload-identity-provider"] or None,
        service_account=raw["service-account"] or None,
        env=raw["env"] or None,
        pipeline=raw["pipeline"] or "__default__",
        image=raw["image"] or None,
        build=build,
        mode=mode,
        cron=raw["cron"] or None,
        params=params,
        wait=wait,
        github_token=raw["github-token"] or None,
        working_directory=raw["working-directory"] or ".",
        requirements=raw["requirements"] or None,
        dry_run=dry_run,
        force=force,
        cancel_superseded=cancel_superseded,
        pip_cache_dir=raw["pip-cache-dir"] or None,
    )
