"""The compiled spec on a self-hosted Kubeflow Pipelines 2.x, through the real ``kfp.Client``.

A pipeline per (project, Kedro pipeline) with one version per distinct spec (named by its content hash, so a
rerun reuses it), one experiment, runs, and exactly one enabled recurring run per pipeline: a deploy creates the
new recurring run first (no gap) and then deletes every other one with the same name, keeping the newest by a
total order (creation time, then id), so two deploys racing keep the same one and no duplicate survives.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AuthError, CloudError
from .auth import KfpAccess

TERMINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELED", "SKIPPED")


@dataclass(frozen=True)
class KfpRun:
    run_id: str
    display_name: str
    url: str
    state: str | None = None


@dataclass(frozen=True)
class Deployed:
    recurring_run_id: str
    replaced: tuple[str, ...]


def cron_for_kfp(cron: str, timezone: str | None) -> str:
    """KFP's scheduled workflows take six cron fields (seconds first) in the cluster's time zone (UTC)."""
    from ..errors import ConfigError

    if timezone and timezone not in ("UTC", "Etc/UTC"):
        raise ConfigError(f"schedule time zone {timezone}: Kubeflow Pipelines runs cron schedules in the "
                          "cluster's time zone (UTC) and has no per-schedule zone; write the cron in UTC")
    fields = cron.split()
    if len(fields) == 5:
        return " ".join(["0", *fields])
    if len(fields) == 6:
        return cron
    raise ConfigError(f"cron {cron!r}: expected 5 fields (minute hour day month weekday)")


class KfpTarget:
    """One KFP endpoint. ``access`` (re)authenticates: it is called again once when a session has expired."""

    def __init__(self, host: str, access: Callable[[], KfpAccess], *, namespace: str | None = None,
                 ui_host: str | None = None):
        self.host = host.rstrip("/")
        self.ui_host = (ui_host or self.host.removesuffix("/pipeline")).rstrip("/")
        self.namespace = namespace
        self._access = access
        self._client: Any = None

    # ------------------------------------------------------------------ plumbing
    def _connect(self) -> Any:
        import warnings

        access = self._access()
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            return _client_class()(host=self.host, namespace=self.namespace or "kubeflow",
                                   existing_token=access.existing_token, cookies=access.cookies,
                                   credentials=access.credentials, ui_host=self.ui_host)

    def _call(self, what: str, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(client)``; log in again once if the session expired; turn API errors into CloudError."""
        from kfp_server_api.exceptions import ApiException

        for attempt in (1, 2):
            try:
                if self._client is None:
                    self._client = self._connect()
                with contextlib.redirect_stdout(io.StringIO()):  # kfp.Client prints links; we print our own
                    return fn(self._client)
            except ApiException as err:
                if err.status in (401, 403, 302) and attempt == 1:
                    self._client = None
                    continue
                raise _api_error(what, err, self.host) from err
            except (ValueError, json.JSONDecodeError) as err:
                if attempt == 1 and "<" in str(err)[:200]:  # an HTML login page where JSON was expected
                    self._client = None
                    continue
                raise CloudError(f"Kubeflow Pipelines at {self.host}: could not {what}: {err}") from err
            except OSError as err:
                raise CloudError(f"cannot reach Kubeflow Pipelines at {self.host} to {what}: "
                                 f"{type(err).__name__}: {err}") from err
        raise AuthError(f"Kubeflow Pipelines at {self.host} refused the credentials twice while trying to {what}")

    # ------------------------------------------------------------------ pipelines, experiments
    def ensure_pipeline(self, name: str, spec: Mapping[str, Any], description: str = "") -> tuple[str, str]:
        """(pipeline id, version id) of ``spec`` under pipeline ``name``; uploaded only when new."""
        from kfp_server_api.exceptions import ApiException

        text = json.dumps(spec, sort_keys=True)
        version = f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
        with tempfile.TemporaryDirectory(prefix="kvc-kfp-") as folder:
            package = Path(folder) / f"{version}.yaml"
            package.write_text(text, encoding="utf-8")  # JSON is YAML: the upload endpoint takes .yaml
            pipeline_id = self._call("look up the pipeline", lambda c: c.get_pipeline_id(name))
            if pipeline_id is None:
                try:  # the pipeline and its first version (named like the pipeline); ours follows below
                    pipeline_id = self._call("upload the pipeline", lambda c: c.upload_pipeline(
                        str(package), pipeline_name=name, description=description,
                        namespace=self.namespace)).pipeline_id
                except CloudError as err:
                    if not isinstance(err.__cause__, ApiException) or err.__cause__.status != 409:
                        raise
                    pipeline_id = self._call("look up the pipeline", lambda c: c.get_pipeline_id(name))
            existing = self._version_id(pipeline_id, version)
            if existing:
                return pipeline_id, existing
            try:
                uploaded = self._call("upload a pipeline version", lambda c: c.upload_pipeline_version(
                    str(package), pipeline_version_name=version, pipeline_id=pipeline_id, description=description))
                return pipeline_id, uploaded.pipeline_version_id
            except CloudError as err:
                found = self._version_id(pipeline_id, version)
                if found:  # a concurrent deploy uploaded the same spec first
                    return pipeline_id, found
                raise err

    def _version_id(self, pipeline_id: str, version_name: str) -> str | None:
        flt = _equals("display_name", version_name)
        listed = self._call("list pipeline versions",
                            lambda c: c.list_pipeline_versions(pipeline_id, page_size=100, filter=flt))
        versions = listed.pipeline_versions or []
        return versions[0].pipeline_version_id if versions else None

    def ensure_experiment(self, name: str, description: str | None = None) -> str:
        """The experiment's id; created when missing. A concurrent deploy creating it first (409) is fine."""
        from kfp_server_api.exceptions import ApiException

        try:
            experiment = self._call("create or find the experiment", lambda c: c.create_experiment(
                name, description=description, namespace=self.namespace))
        except CloudError as err:
            found = self.find_experiment(name) if isinstance(err.__cause__, ApiException) \
                and err.__cause__.status == 409 else None
            if found is None:
                raise
            return found
        return str(experiment.experiment_id)

    # ------------------------------------------------------------------ runs
    def run_once(self, *, experiment_id: str, pipeline_id: str, version_id: str, display_name: str,
                 params: Mapping[str, Any], pipeline_root: str | None, service_account: str | None,
                 enable_caching: bool | None, description: str | None = None) -> KfpRun:
        run = self._call("create the run", lambda c: c.run_pipeline_described(
            experiment_id=experiment_id, job_name=display_name, params=dict(params), pipeline_id=pipeline_id,
            version_id=version_id, pipeline_root=pipeline_root, enable_caching=enable_caching,
            service_account=service_account, description=description))
        return KfpRun(run.run_id, display_name, self.run_url(run.run_id), str(run.state or "") or None)

    def pipeline_id(self, name: str) -> str | None:
        return self._call("look up the pipeline", lambda c: c.get_pipeline_id(name))

    def runs_named(self, experiment_id: str, display_name: str) -> list[Any]:
        """The experiment's runs with exactly this name, oldest first (creation time, then id)."""
        flt = _equals("display_name", display_name)
        page = self._call("list runs", lambda c: c.list_runs(page_size=100, experiment_id=experiment_id,
                                                            namespace=self.namespace, filter=flt))
        return sorted(page.runs or [], key=_run_order)

    def terminate(self, run_id: str) -> bool:
        """Stop a run; False when it had already finished (KFP answers 400 for runs in a final state)."""
        from kfp_server_api.exceptions import ApiException

        try:
            self._call("terminate a run", lambda c: c.terminate_run(run_id))
        except CloudError as err:
            if isinstance(err.__cause__, ApiException) and err.__cause__.status in (400, 404):
                return False
            raise
        return True

    def run_url(self, run_id: str) -> str:
        return f"{self.ui_host}/#/runs/details/{run_id}"

    def wait(self, run_id: str, *, timeout_seconds: float | None, poll_seconds: float,
             on_update: Callable[[str], None] = lambda _s: None) -> str:
        begun = time.monotonic()
        while True:
            state = str(self._call("read the run", lambda c: c.get_run(run_id)).state or "")
            on_update(state)
            if state in TERMINAL_STATES:
                return state
            if timeout_seconds is not None and time.monotonic() - begun > timeout_seconds:
                return state
            time.sleep(poll_seconds)

    # ------------------------------------------------------------------ recurring runs
    def deploy_recurring(self, *, display_name: str, experiment_id: str, pipeline_id: str, version_id: str,
                         cron: str, params: Mapping[str, Any], max_concurrency: int, start_time: str | None,
                         end_time: str | None, pipeline_root: str | None, service_account: str | None,
                         description: str = "") -> Deployed:
        created = self._call("create the recurring run", lambda c: c.create_recurring_run(
            experiment_id=experiment_id, job_name=display_name, description=description, cron_expression=cron,
            start_time=start_time, end_time=end_time, max_concurrency=max_concurrency, no_catchup=True,
            params=dict(params), pipeline_id=pipeline_id, version_id=version_id, enabled=True,
            pipeline_root=pipeline_root, service_account=service_account))
        keep, replaced = newest_and_older(self.recurring_runs(display_name), created)
        for rid in replaced:
            self.delete_recurring(rid)
        return Deployed(str(keep.recurring_run_id), replaced)

    def delete_recurring(self, rid: str) -> None:
        """Delete; already gone is fine (a concurrent deploy deleted it first)."""
        from kfp_server_api.exceptions import ApiException

        try:
            self._call("delete a replaced recurring run", lambda c: c.delete_recurring_run(rid))
        except CloudError as err:
            if not (isinstance(err.__cause__, ApiException) and err.__cause__.status == 404):
                raise

    def recurring_runs(self, display_name: str | None = None) -> list[Any]:
        flt = _equals("display_name", display_name) if display_name else None
        found: list[Any] = []
        token = ""
        while True:
            page = self._call("list recurring runs", lambda c, token=token: c.list_recurring_runs(
                page_token=token, page_size=100, namespace=self.namespace, filter=flt))
            found += page.recurring_runs or []
            token = page.next_page_token or ""
            if not token:
                return found

    def runs(self, experiment_id: str | None, limit: int) -> list[Any]:
        page = self._call("list runs", lambda c: c.list_runs(page_size=limit, experiment_id=experiment_id,
                                                            namespace=self.namespace, sort_by="created_at desc"))
        return list(page.runs or [])

    def find_experiment(self, name: str) -> str | None:
        try:
            return str(self._call("find the experiment", lambda c: c.get_experiment(
                experiment_name=name, namespace=self.namespace)).experiment_id)
        except CloudError as err:
            if "No experiment is found" in str(err):
                return None
            raise


def _client_class() -> Any:
    """``kfp.Client`` with two behaviours a CLI needs, both on the client's own extension points.

    A login redirect (Dex, an expired session) comes back as the 302 it is instead of being followed into an
    HTML page that fails to parse; and the health probe the constructor makes is tried once, not five times
    with 5 s sleeps and a logged traceback each, so wrong credentials fail in a second with the server's status.
    """
    from kfp.client import Client
    from urllib3.util import Retry

    class QuietClient(Client):  # type: ignore[misc]
        def _load_config(self, *args: Any, **kwargs: Any) -> Any:
            config = super()._load_config(*args, **kwargs)
            config.retries = Retry(total=3, connect=3, read=0, redirect=0, raise_on_redirect=False)
            return config

        def get_kfp_healthz(self, sleep_duration: int = 5) -> Any:
            return self._healthz_api.healthz_service_get_healthz()

        def run_pipeline_described(self, *, experiment_id: str, job_name: str, description: str | None,
                                   service_account: str | None, **job: Any) -> Any:
            """``run_pipeline`` plus the run's description, which KFP has and ``run_pipeline`` does not set."""
            import kfp_server_api

            config = self._create_job_config(pipeline_package_path=None, cache_key=None, **job)
            body = kfp_server_api.V2beta1Run(
                experiment_id=experiment_id, display_name=job_name, description=description,
                pipeline_spec=config.pipeline_spec, pipeline_version_reference=config.pipeline_version_reference,
                runtime_config=config.runtime_config, service_account=service_account)
            return self._run_api.run_service_create_run(run=body)

    return QuietClient


def _run_order(run: Any) -> tuple[str, str]:
    return (str(run.created_at or ""), str(run.run_id))


def newest_and_older(listed: list[Any], created: Any) -> tuple[Any, tuple[str, ...]]:
    """The one to keep and the ids to delete, from ONE listing: a second listing could show a newer run made
    by a concurrent deploy, which this deploy would then delete while that one deletes ours, leaving none."""
    seen = {str(r.recurring_run_id): r for r in listed}
    seen.setdefault(str(created.recurring_run_id), created)  # a listing may lag behind our own create
    keep = max(seen.values(), key=_order)
    return keep, tuple(rid for rid in seen if rid != str(keep.recurring_run_id))


def _order(recurring: Any) -> tuple[str, str]:
    return (str(recurring.created_at or ""), str(recurring.recurring_run_id))


def _equals(key: str, value: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": key, "stringValue": value}]})


def _api_error(what: str, err: Any, host: str) -> CloudError:
    try:
        detail = json.loads(err.body or "{}").get("message") or err.reason
    except (ValueError, AttributeError):
        detail = err.reason
    if err.status in (401, 403):
        return AuthError(f"Kubeflow Pipelines at {host} refused to {what} (HTTP {err.status}: {detail}): check "
                         "kfp.auth in vertexai.yml")
    return CloudError(f"Kubeflow Pipelines at {host} could not {what} (HTTP {err.status}): {detail}")
