"""Dynamic config providers: config files (e.g. ``credentials.yml``) generated in each step before Kedro reads config.

``run_config.dynamic_config_providers: [{cls, params}]`` in ``vertexai.yml`` travels to every step inside the
compiled spec, as one JSON argv item (``--dynamic-config``). Each step, before it creates its KedroSession,
instantiates every provider as ``cls(context, **params)``, calls :meth:`DynamicConfigProvider.generate_config`
and deep-merges the result into ``conf/<target_env>/<target_config_file>`` (the provider wins; the file is
replaced atomically). Providers always run, whether or not the project has parameters.

Write your own by subclassing :class:`DynamicConfigProvider`. kedro-vertexai's class paths keep working:
``kedro_vertexai.auth.gcp.MLFlowGoogle*CredentialsProvider`` map to the providers here, and a project's own
provider written against ``kedro_vertexai.dynamic_config.DynamicConfigProvider`` imports this base class
when kedro-vertexai is not installed.

Importing this module is cheap (stdlib only); Google libraries are imported by the Google providers when they
run.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model import ConfigProvider

_HERE = __name__
LEGACY_CLASS_PATHS: Mapping[str, str] = {
    "kedro_vertexai.auth.gcp.MLFlowGoogleOAuthCredentialsProvider": f"{_HERE}.MLFlowGoogleOAuthCredentialsProvider",
    "kedro_vertexai.auth.gcp.MLFlowGoogleIAMCredentialsProvider": f"{_HERE}.MLFlowGoogleIAMCredentialsProvider",
}
_LEGACY_MODULES = ("kedro_vertexai.dynamic_config", "kedro_vertexai.auth.gcp")


class ProviderError(Exception):
    """A provider could not be loaded, failed, or returned something that is not a mapping (one line)."""


@dataclass(frozen=True)
class StepContext:
    """What a provider learns about the step it runs in (passed as ``config`` to the constructor)."""

    project_path: Path
    env: str | None  # the Kedro environment the step runs with (None: Kedro's default run env)
    run_id: str = ""
    job_name: str = ""


class DynamicConfigProvider(ABC):
    """Generates one config file's content in each step, before Kedro loads config.

    Subclasses take their ``params`` from ``vertexai.yml`` as keyword arguments. Secrets do not belong in
    ``params`` (they are visible in the compiled spec): fetch them in :meth:`generate_config`.
    """

    def __init__(self, config: StepContext, **params: Any):
        self.config = config
        self.params = params

    @property
    def target_env(self) -> str:
        """The Kedro environment folder the file is written in (``base``, as kedro-vertexai did)."""
        return "base"

    @property
    @abstractmethod
    def target_config_file(self) -> str:
        """File name inside the environment folder, e.g. ``credentials.yml``."""

    @abstractmethod
    def generate_config(self) -> dict[str, Any]:
        """The config to merge into the file."""

    def merge_with_existing(self, existing_config: dict[str, Any], generated_config: dict[str, Any]) -> dict[str, Any]:
        """Deep merge: nested mappings merge key by key, the generated value wins everywhere else."""
        return deep_merge(existing_config, generated_config)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``override`` recursively (pure; neither argument is changed)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def canonical_class_path(path: str) -> str:
    """Our class path for a kedro-vertexai provider path; any other path unchanged."""
    path = path.strip()
    if path in LEGACY_CLASS_PATHS:
        return LEGACY_CLASS_PATHS[path]
    prefix = "kedro_vertexai.dynamic_config."
    if path.startswith(prefix):
        return f"{_HERE}.{path[len(prefix):]}"
    return path


def run_providers(providers: Iterable[ConfigProvider], context: StepContext, conf_root: Path) -> list[Path]:
    """Run each provider in order and write its file under ``conf_root``; returns the files written."""
    written = []
    for spec in providers:
        provider = load_provider(spec, context)
        written.append(_write_provided(provider, spec.cls, conf_root))
    return written


def load_provider(spec: ConfigProvider, context: StepContext) -> DynamicConfigProvider:
    """Import ``spec.cls`` and instantiate it with the step context and ``spec.params``."""
    path = canonical_class_path(spec.cls)
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise ProviderError(f"dynamic config provider {spec.cls!r}: not a class path like package.module.Class")
    _alias_legacy_modules()
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise ProviderError(
            f"dynamic config provider {spec.cls}: cannot import it ({_one_line(err)}); "
            "is it installed in the step's image?"
        ) from err
    try:
        return cls(context, **dict(spec.params))  # type: ignore[no-any-return]
    except Exception as err:
        raise ProviderError(f"dynamic config provider {spec.cls}: {type(err).__name__}: {_one_line(err)}") from err


def _write_provided(provider: DynamicConfigProvider, name: str, conf_root: Path) -> Path:
    import yaml

    from .fsutil import atomic_write

    try:
        generated = provider.generate_config()
        if not isinstance(generated, Mapping):
            raise TypeError(f"generate_config() returned {type(generated).__name__}, expected a mapping")
        target = conf_root / provider.target_env / provider.target_config_file
        existing = _read_mapping(target)
        merged = provider.merge_with_existing(existing, dict(generated))
        text = yaml.safe_dump(merged, sort_keys=False, default_flow_style=False)
        atomic_write(target, text, mode=0o600)  # credentials: readable by the step's user only
    except ProviderError:
        raise
    except Exception as err:
        raise ProviderError(f"dynamic config provider {name}: {type(err).__name__}: {_one_line(err)}") from err
    return target


def _read_mapping(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        return {}
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path} holds a {type(loaded).__name__}, not a mapping; cannot merge into it")
    return loaded


def _alias_legacy_modules() -> None:
    """Let providers written for kedro-vertexai import its base class from us when it is not installed."""
    if "kedro_vertexai" in sys.modules or importlib.util.find_spec("kedro_vertexai") is not None:
        return
    ours = sys.modules[_HERE]
    package = types.ModuleType("kedro_vertexai")
    package.__path__ = []
    auth = types.ModuleType("kedro_vertexai.auth")
    auth.__path__ = []
    package.auth = auth  # type: ignore[attr-defined]
    package.dynamic_config = ours  # type: ignore[attr-defined]
    auth.gcp = ours  # type: ignore[attr-defined]
    sys.modules.update({"kedro_vertexai": package, "kedro_vertexai.auth": auth})
    sys.modules.update({name: ours for name in _LEGACY_MODULES})


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 400 else text[:397] + "..."


# ---------------------------------------------------------------------------------------------------------
# Google ID tokens (e.g. for an MLflow server behind IAP), in kedro-vertexai's credentials shape


class _GoogleIdTokenProvider(DynamicConfigProvider):
    """Writes ``{gcp_credentials: {MLFLOW_TRACKING_TOKEN: <Google ID token>}}`` into ``credentials.yml``."""

    def __init__(self, config: StepContext, *, client_id: str, **params: Any):
        super().__init__(config, client_id=client_id, **params)
        self.client_id = client_id

    @property
    def target_config_file(self) -> str:
        return "credentials.yml"

    def generate_config(self) -> dict[str, Any]:
        return {"gcp_credentials": {"MLFLOW_TRACKING_TOKEN": self.fetch_token()}}

    @abstractmethod
    def fetch_token(self) -> str:
        """An ID token whose audience is ``client_id``."""


class MLFlowGoogleIAMCredentialsProvider(_GoogleIdTokenProvider):
    """An ID token minted by IAM Credentials ``generateIdToken`` for ``service_account`` (audience ``client_id``).

    The step's identity (on Vertex AI: the pipeline's service account) needs
    roles/iam.serviceAccountOpenIdTokenCreator on ``service_account``.
    """

    def __init__(self, config: StepContext, *, client_id: str, service_account: str, **params: Any):
        super().__init__(config, client_id=client_id, service_account=service_account, **params)
        self.service_account = service_account

    def fetch_token(self) -> str:
        from .gcp.auth import AuthRequest, fetch_id_token, load_credentials
        from .gcp.endpoints import resolve_endpoints

        endpoints = resolve_endpoints(None, os.environ)
        credentials = load_credentials(AuthRequest(project_id="", endpoints=endpoints, environ=dict(os.environ)))
        return fetch_id_token(credentials, self.service_account, self.client_id, endpoints)


class MLFlowGoogleOAuthCredentialsProvider(_GoogleIdTokenProvider):
    """An ID token for audience ``client_id`` from the step's own identity (metadata server or key file).

    Works on Vertex AI and with a service-account key in ``GOOGLE_APPLICATION_CREDENTIALS``; user credentials
    from ``gcloud auth application-default login`` cannot mint ID tokens (use the IAM provider there).
    """

    def fetch_token(self) -> str:
        from google.auth.transport.requests import Request
        from google.oauth2 import id_token

        return str(id_token.fetch_id_token(Request(), self.client_id))
