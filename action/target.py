"""Which platform this run deploys to: ``vertexai.yml`` with the ``target`` / ``kfp-host`` inputs applied, and
whether that needs Google credentials (pure functions: the config in, a config or a yes/no out)."""

from __future__ import annotations

from typing import Any

from kedro_vertex_ci.errors import ConfigError, Problem

from .inputs import Inputs

# KFP auth modes that need no Google identity: the job's OIDC token is not needed for them (without a build).
NON_GOOGLE_KFP_AUTH = ("none", "token", "dex")


def target_of(config: Any) -> str:
    return str(getattr(getattr(config, "run_config", None), "target", "vertex"))


def apply_target_inputs(inputs: Inputs, config: Any) -> Any:
    """The config the run deploys with: the inputs win, and the result is validated as vertexai.yml is."""
    from kedro_vertex_ci.config import parse_config

    target = inputs.target or target_of(config)
    if target == target_of(config) and not inputs.kfp_host:
        return config
    if target == "vertex" and inputs.kfp_host:
        raise ConfigError([Problem("action inputs", "kfp-host", "is set but the target is vertex (run_config.target "
                                   "in vertexai.yml): set the input target: kfp, or drop kfp-host")])
    data = config.model_dump()
    data["run_config"]["target"] = target
    if inputs.kfp_host:
        data["kfp"] = {**(data.get("kfp") or {}), "host": inputs.kfp_host}
    if target == "kfp" and not data.get("kfp"):
        raise ConfigError([Problem("action inputs", "target", "is kfp but vertexai.yml has no kfp section: set the "
                                   "input kfp-host (auth mode none), or add kfp.host and kfp.auth to vertexai.yml")])
    try:
        return parse_config(data).config
    except ConfigError as err:
        raise ConfigError([Problem("action inputs", "target" if not inputs.kfp_host else "kfp-host",
                                   f"with target {target}: {p.key}: {p.message}") for p in err.problems]) from None


def needs_google_credentials(build: bool, config: Any) -> bool:
    """Cloud Build, Vertex AI and IAP take a Google identity; a KFP behind none/token/dex does not."""
    if build or target_of(config) != "kfp":
        return True
    return str(config.kfp.auth.mode) not in NON_GOOGLE_KFP_AUTH


def describe_target(config: Any) -> str:
    """One line naming where runs go (dry runs and the summary say it)."""
    if target_of(config) == "kfp":
        return f"Kubeflow Pipelines at {config.kfp.host} (auth {config.kfp.auth.mode})"
    return f"Vertex AI Pipelines in project {config.project_id}, region {config.region}"
