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
from .yaml_guard import YamlDocument

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
        from kedro.framework.project import settings

        from .runtime import resolvers

        resolvers.register()
        self.info = info
        self._settings = settings
        self._catalog: Any = None  # built on first use: the config loader re-reads catalog files each time
        loader_args = dict(getattr(settings, "CONFIG_LOADER_ARGS", {}) or {})
        self.base_env: str = loader_args.get("base_env") or "base"
        self.env: str = env or loader_args.get("default_run_env") or "local"
        self.requested_env = env
        self._documents: list[YamlDocument] | None = None
        if env is not None:
            self._check_env_exists(env)
        self._loader_args = loader_args
        self._hook_manager = _compile_hook_manager()
        self.set_runtime_params(None)

    def set_runtime_params(self, runtime_params: dict[str, Any] | None) -> None:
        """(Re)build the context with the values ``${runtime_params:…}`` resolves to, as ``kedro run --params``."""
        settings, info, env = self._settings, self.info, self.requested_env
        extra = {"runtime_params": runtime_params} if runtime_params else {}
        self._catalog = None  # the catalog config may use ${runtime_params:...} too
        try:
            config_loader = settings.CONFIG_LOADER_CLASS(
                conf_source=str(info.path / settings.CONF_SOURCE), env=env, **self._loader_args, **extra
            )
            self._context = settings.CONTEXT_CLASS(
                package_name=info.package_name,
                project_path=info.path,
                config_loader=config_loader,
                env=env,
                hook_manager=self._hook_manager,
                **extra,
            )
        except Exception as err:
            raise ProjectError(f"cannot load the Kedro project {info.path} (env {env!r}): {err}") from err

    def runtime_param_refs(self) -> list[Any]:
        """Every ``${runtime_params:…}`` in the run environment's and the base environment's config files."""
        from .params import runtime_param_refs

        refs = []
        for env in dict.fromkeys((self.env, self.base_env)):
            folder = self.conf_root / env
            for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
                if path.suffix in (".yml", ".yaml", ".json") and path.is_file():
                    text = path.read_text(encoding="utf-8", errors="replace")
                    if "runtime_params:" in text:
                        refs.extend(runtime_param_refs(text, str(path)))
        return refs

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
        """The vertexai files the config loader reads, the run environment's first (checked, see config_raw)."""
        return [ConfigSource(Path(d.path), d.text) for d in self._config_documents()]

    def _config_documents(self) -> list[YamlDocument]:
        """Each file Kedro's loader will read for ``vertexai``, read once and checked by ``yaml_guard``.

        Only those files: a ``vertexai.yml.bak`` or a binary ``vertexai.pkl`` beside them is none of ours.
        """
        if self._documents is None:
            from .yaml_guard import read_document

            documents = []
            loader = self._context.config_loader
            for env in self._env_order():
                in_env = []
                for path in _loaded_config_files(loader, self.conf_root, env):
                    try:
                        data = path.read_bytes()
                    except OSError as err:
                        problem = Problem(str(path), "", f"cannot read the file: {err.strerror or err}")
                        raise ConfigError([problem]) from None
                    in_env.append(read_document(str(path), data))
                _check_duplicates_across_files(in_env)
                documents += in_env
            self._documents = documents
        return self._documents

    def _env_order(self) -> list[str]:
        return [self.env] if self.env == self.base_env else [self.env, self.base_env]

    def config_raw(self) -> dict[str, Any]:
        """``vertexai.yml`` merged across environments by the project's own config loader."""
        from kedro.config import MissingConfigException

        loader = self._context.config_loader
        patterns = getattr(loader, "config_patterns", None)
        if isinstance(patterns, dict):
            patterns.setdefault("vertexai", VERTEXAI_PATTERNS)
        documents = self._config_documents()
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
        except (Exception, RecursionError) as err:  # interpolation, or anything the checks above missed
            raise ConfigError([_loader_problem(err, documents, self.conf_root)]) from None
        try:
            return _plain_dict(raw)
        except (Exception, RecursionError) as err:  # an interpolation resolved only when read
            raise ConfigError([_loader_problem(err, documents, self.conf_root)]) from None

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
        credentials = _CompileCredentials(_credentials(config_loader))
        return self._settings.DATA_CATALOG_CLASS.from_config(catalog=conf_catalog, credentials=credentials)

    def parameters(self) -> dict[str, Any]:
        try:
            return dict(self._context.params or {})
        except Exception as err:  # an interpolation or a parameters file Kedro cannot read
            if type(err).__module__.startswith(("omegaconf", "kedro")):
                raise ConfigError([Problem(str(self.conf_root), "parameters", " ".join(str(err).split()))]) from None
            raise

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
        if self._catalog is None:
            self._catalog = self._catalog_without_parameters()
        catalog = self._catalog
        kinds = {d: _dataset_kind(catalog, d) for d in sorted(datasets)}
        return PipelineGraph(
            name=pipeline_name, nodes=nodes, dataset_kinds=kinds, parameters=self.parameters()
        )


def _compile_hook_manager() -> Any:
    """An empty hook manager with Kedro's hook specs: compile registers no hook and runs none.

    Built from public names (``kedro.framework.hooks.markers``, ``kedro.framework.hooks.specs``) rather than
    Kedro's private ``_create_hook_manager``; the context only needs it to exist.
    """
    from kedro.framework.hooks import specs
    from kedro.framework.hooks.markers import HOOK_NAMESPACE
    from pluggy import PluginManager

    manager = PluginManager(HOOK_NAMESPACE)
    for spec in (
        specs.NodeSpecs,
        specs.PipelineSpecs,
        specs.DataCatalogSpecs,
        specs.DatasetSpecs,
        specs.KedroContextSpecs,
    ):
        manager.add_hookspecs(spec)
    return manager


def _credentials(config_loader: Any) -> dict[str, Any]:
    """``credentials*`` as the project's config loader merges them; none is no error (as in Kedro)."""
    from kedro.config import MissingConfigException

    try:
        return dict(config_loader["credentials"] or {})
    except MissingConfigException:
        return {}


class _CompileCredentials(dict):  # type: ignore[type-arg]
    """Credentials as compile sees them: a name not (yet) defined resolves to an empty mapping.

    Compile only asks the catalog for dataset types. Credentials a dynamic config provider writes in each
    step do not exist on the compiling machine, and must not stop the compile.
    """

    def __missing__(self, key: str) -> dict[str, Any]:
        return {}

    def __bool__(self) -> bool:  # Kedro replaces a falsy credentials mapping by a plain {}
        return True


_CONFIG_SUFFIXES = {".yml", ".yaml", ".json"}


def _loaded_config_files(loader: Any, conf_root: Path, env: str) -> list[Path]:
    """The local files a Kedro config loader reads for ``vertexai`` in one environment folder.

    Asked of the loader itself where it can tell (OmegaConfigLoader: its patterns, its hidden-file rule,
    its yaml/yml/json suffixes), so the line locator never opens a file Kedro skipped.
    """
    patterns = getattr(loader, "config_patterns", {}).get("vertexai", VERTEXAI_PATTERNS)
    is_hidden = getattr(loader, "_is_hidden", None)
    ignore_hidden = getattr(loader, "ignore_hidden", True)
    folder = conf_root / env
    found: set[Path] = set()
    for pattern in patterns:
        found.update(folder.glob(pattern))
        if pattern.endswith("**"):  # fsspec's "**" also yields files; pathlib's (before 3.13) only folders
            found.update(folder.glob(pattern + "/*"))
    files: list[Path] = []
    for path in sorted(found):
        hidden = is_hidden(str(path)) if callable(is_hidden) else any(
            part.startswith(".") for part in path.relative_to(conf_root).parts
        )
        if path.suffix in _CONFIG_SUFFIXES and path.is_file() and not (ignore_hidden and hidden):
            files.append(path)
    return files


def _top_level_keys(document: YamlDocument) -> set[tuple[str, ...]]:
    """The keys Kedro compares between files of one folder (``_private`` keys excepted)."""
    return {key for key in document.lines if len(key) == 1 and not key[0].startswith("_")}


def _check_duplicates_across_files(documents: list[YamlDocument]) -> None:
    """Kedro refuses a key set by two files of one environment folder; say which key, where (file, line)."""
    problems = []
    for i, first in enumerate(documents):
        for second in documents[i + 1 :]:
            for key in sorted(_top_level_keys(first) & _top_level_keys(second)):
                problems.append(
                    Problem(
                        second.path,
                        ".".join(key),
                        f"also set in {first.path}:{first.lines.get(key)}; Kedro refuses the same top-level "
                        "key in two files of one environment folder: keep it in one file",
                        second.lines.get(key),
                    )
                )
    if problems:
        raise ConfigError(problems)


def _plain_dict(raw: Any) -> dict[str, Any]:
    """The loader's result as plain containers (resolving interpolations now, inside our error handling)."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(raw, DictConfig):
        raw = OmegaConf.to_container(raw, resolve=True)
    return dict(raw or {})


def _loader_problem(err: BaseException, documents: list[YamlDocument], conf_root: Path) -> Problem:
    """Kedro's loader failed on files :mod:`yaml_guard` accepted: name the files, and the key if known."""
    files = ", ".join(d.path for d in documents) or str(conf_root)
    full_key = getattr(err, "full_key", None)  # OmegaConf errors know the key they failed on
    message = str(err).splitlines()[0] if str(err) else type(err).__name__
    if len(message) > 300:
        message = message[:297] + "..."
    if full_key:
        for document in documents:
            line = document.lines.get(tuple(str(full_key).split(".")))
            if line:
                return Problem(document.path, str(full_key), f"Kedro's config loader refused it: {message}", line)
    return Problem(files, str(full_key or ""), f"Kedro's config loader refused the config: {message}")


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
