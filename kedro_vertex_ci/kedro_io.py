"""The one place that opens a Kedro project: bootstrap, session, config loader, catalog, pipelines.

Everything it returns is a plain value (:class:`~kedro_vertex_ci.model.PipelineGraph`, dicts, paths), so the
core never holds Kedro objects. Kedro's own APIs do the work, so environments, config patterns, custom
config loaders and dataset factories behave exactly as in ``kedro run``.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigSource
from .errors import ConfigError, Problem, ProjectError
from .model import DatasetKind, NodeInfo, PipelineGraph

VERTEXAI_PATTERNS = ["vertexai*", "vertexai*/**", "**/vertexai*"]
_MEMORY_TYPES = {"MemoryDataset", "SharedMemoryDataset"}


@dataclass(frozen=True)
class ProjectInfo:
    """Static facts about the project, read from its ``pyproject.toml``."""

    path: Path
    package_name: str
    project_name: str


def _environ_defaults() -> None:
    """Quiet, offline Kedro: no telemetry prompt, and our commands' output not buried in Kedro's INFO logs.

    Kedro configures logging when ``kedro.framework.project`` is first imported, from
    ``KEDRO_LOGGING_CONFIG``. The quiet config is set only around that import: left in ``os.environ`` it
    would reach the step processes ``run-local`` starts, and silence the project's own logging there.
    """
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # Kedro 1.7 calls omegaconf's deprecated register_new_resolver itself: not the user's concern.
    warnings.filterwarnings(
        "ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning
    )
    if "kedro.framework.project" in sys.modules or "KEDRO_LOGGING_CONFIG" in os.environ:
        return
    os.environ["KEDRO_LOGGING_CONFIG"] = str(Path(__file__).parent / "templates" / "quiet_logging.yml")
    try:
        import kedro.framework.project  # noqa: F401  (configures logging, once per process)
    finally:
        del os.environ["KEDRO_LOGGING_CONFIG"]


def bootstrap(project: Path) -> ProjectInfo:
    """Kedro's own ``bootstrap_project``, with a clear error when ``project`` is not a Kedro project."""
    _environ_defaults()
    pyproject = project / "pyproject.toml"
    if not pyproject.is_file() or "[tool.kedro]" not in pyproject.read_text(
        encoding="utf-8", errors="replace"
    ):
        raise ProjectError(
            f"{project} is not a Kedro project (no pyproject.toml with [tool.kedro]); "
            "run from the project root or pass --project PATH"
        )
    from kedro.framework.startup import bootstrap_project

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            metadata = bootstrap_project(project)
    except Exception as err:  # Kedro raises many kinds here; all mean "cannot load this project"
        raise ProjectError(f"cannot load the Kedro project at {project}: {err}") from err
    return ProjectInfo(path=project, package_name=metadata.package_name, project_name=metadata.project_name)


class KedroProject:
    """A Kedro context built the way ``KedroSession`` builds it, minus the session.

    No session means no plugin hooks (kedro-mlflow would import mlflow, ~1 s) and no session store: the
    compile only needs the project's config loader, catalog, parameters and pipelines.
    """

    def __init__(self, info: ProjectInfo, env: str | None):
        from kedro.framework.hooks import _create_hook_manager
        from kedro.framework.project import settings

        from .runtime import resolvers

        resolvers.register()
        self.info = info
        self._settings = settings
        loader_args = dict(getattr(settings, "CONFIG_LOADER_ARGS", {}) or {})
        self.base_env: str = loader_args.get("base_env") or "base"
        self.env: str = env or loader_args.get("default_run_env") or "local"
        self.requested_env = env
        if env is not None:
            self._check_env_exists(env)
        try:
            config_loader = settings.CONFIG_LOADER_CLASS(
                conf_source=str(info.path / settings.CONF_SOURCE), env=env, **loader_args
            )
            self._context = settings.CONTEXT_CLASS(
                package_name=info.package_name,
                project_path=info.path,
                config_loader=config_loader,
                env=env,
                hook_manager=_create_hook_manager(),
            )
        except Exception as err:
            raise ProjectError(f"cannot load the Kedro project {info.path} (env {env!r}): {err}") from err

    def close(self) -> None:
        """Nothing to release: no session was opened."""

    def _check_env_exists(self, env: str) -> None:
        """A requested environment is a folder of the conf source (Kedro would quietly load base alone)."""
        root = self.conf_root
        if not env or env in {".", ".."} or any(c in env for c in "/\\\0"):
            raise ProjectError(f"Kedro environment {env!r}: not an environment name (a folder name under {root})")
        if not root.is_dir() or (root / env).is_dir():
            return  # a packed conf source (.zip/.tar.gz) is checked by Kedro itself
        envs = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        raise ProjectError(
            f"Kedro environment {env!r} (from -e/--env or $KEDRO_ENV) does not exist: no folder {root / env}; "
            f"environments: {', '.join(envs) or 'none'}"
        )

    @property
    def conf_root(self) -> Path:
        return self.info.path / getattr(self._settings, "CONF_SOURCE", "conf")

    def config_sources(self) -> list[ConfigSource]:
        """The vertexai files that feed the merged config, the run environment's first."""
        sources = []
        for env in (self.env, self.base_env):
            folder = self.conf_root / env
            for path in sorted(folder.glob("vertexai*")) + sorted(folder.glob("vertexai*/**/*.y*ml")):
                if path.is_file():
                    sources.append(ConfigSource(path, path.read_text(encoding="utf-8")))
        return sources

    def config_raw(self) -> dict[str, Any]:
        """``vertexai.yml`` merged across environments by the project's own config loader."""
        from kedro.config import MissingConfigException

        loader = self._context.config_loader
        patterns = getattr(loader, "config_patterns", None)
        if isinstance(patterns, dict):
            patterns.setdefault("vertexai", VERTEXAI_PATTERNS)
        try:
            raw = loader["vertexai"]
        except MissingConfigException as err:
            raise ConfigError(
                [
                    Problem(
                        str(self.conf_root / self.base_env / "vertexai.yml"),
                        "",
                        "no vertexai.yml found; create one with `kedro-vertex-ci init PROJECT_ID REGION`",
                    )
                ]
            ) from err
        except Exception as err:  # a YAML or interpolation error inside the user's file
            raise ConfigError(
                [Problem(str(self.conf_root), "vertexai", f"cannot read the config: {err}")]
            ) from err
        return dict(raw or {})

    def _catalog_without_parameters(self) -> Any:
        """The project's catalog as ``context.catalog`` builds it, minus feeding it the parameters.

        ``context.catalog`` rebuilds on every access and wraps each parameter in a MemoryDataset, which
        imports pandas and numpy to pick a copy mode: half a second the compile does not need.
        """
        config_loader = self._context.config_loader
        try:
            conf_catalog = config_loader["catalog"]
        except Exception:  # MissingConfigException: a project may have no catalog at all
            conf_catalog = {}
        credentials = _CompileCredentials(self._context._get_config_credentials())
        return self._settings.DATA_CATALOG_CLASS.from_config(catalog=conf_catalog, credentials=credentials)

    def parameters(self) -> dict[str, Any]:
        return dict(self._context.params or {})

    def pipeline_names(self) -> list[str]:
        from kedro.framework.project import pipelines

        return sorted(pipelines.keys())

    def graph(self, pipeline_name: str) -> PipelineGraph:
        """The named pipeline as values, every dataset classified as catalog or intermediate."""
        from kedro.framework.project import pipelines

        try:
            pipeline = pipelines[pipeline_name]
        except KeyError:
            import difflib

            names = self.pipeline_names()
            close = difflib.get_close_matches(pipeline_name, names, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(
                [
                    Problem(
                        "--pipeline", pipeline_name, f"no such pipeline; {hint}available: {', '.join(names)}"
                    )
                ]
            ) from None
        nodes = tuple(
            NodeInfo(name=n.name, inputs=tuple(n.inputs), outputs=tuple(n.outputs), tags=frozenset(n.tags))
            for n in pipeline.nodes
        )
        datasets = {d for n in nodes for d in (*n.inputs, *n.outputs)}
        catalog = self._catalog_without_parameters()
        kinds = {d: _dataset_kind(catalog, d) for d in sorted(datasets)}
        return PipelineGraph(
            name=pipeline_name, nodes=nodes, dataset_kinds=kinds, parameters=self.parameters()
        )


class _CompileCredentials(dict):  # type: ignore[type-arg]
    """Credentials as compile sees them: a name not (yet) defined resolves to an empty mapping.

    Compile only asks the catalog for dataset types. Credentials a dynamic config provider writes in each
    step do not exist on the compiling machine, and must not stop the compile.
    """

    def __missing__(self, key: str) -> dict[str, Any]:
        return {}

    def __bool__(self) -> bool:  # Kedro replaces a falsy credentials mapping by a plain {}
        return True


def _dataset_kind(catalog: Any, name: str) -> DatasetKind:
    """Catalog-persisted or not, asked of the catalog without materialising the dataset."""
    if name == "parameters" or name.startswith("params:"):
        return DatasetKind.PARAMETER
    dataset_type = catalog.get_type(name)
    if dataset_type is None or dataset_type.rsplit(".", 1)[-1] in _MEMORY_TYPES:
        return DatasetKind.INTERMEDIATE
    return DatasetKind.CATALOG


@contextlib.contextmanager
def open_project(project: Path, env: str | None) -> Iterator[KedroProject]:
    """Bootstrap the project and open one session for the duration of the block."""
    info = bootstrap(project.resolve())
    kedro_project = KedroProject(info, env)
    try:
        yield kedro_project
    finally:
        kedro_project.close()
