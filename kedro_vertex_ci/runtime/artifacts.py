"""Kedro datasets as KFP output artifacts (``run_config.artifacts: true``), so lineage shows in Vertex ML Metadata.

The compiled step declares each catalog dataset its nodes write as a ``system.Dataset`` output artifact and
receives the KFP executor input (``{{$}}``). After its nodes ran, the step writes the executor output
(``ExecutorOutput`` JSON, to ``outputs.outputFile``) naming each artifact's URI as the catalog's own path — the
way a KFP Python component reports an artifact whose ``uri`` it changed — so the console links the real file,
not an empty object under the pipeline root. Pure helpers plus one session-local hook.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.framework.hooks import hook_impl


def dataset_uri(description: Mapping[str, Any], project: Path) -> str | None:
    """The URI of a dataset from its ``_describe()``: ``gs://bucket/x.csv``, or an absolute local path."""
    filepath = description.get("filepath") or description.get("path")
    if not filepath:
        return None
    protocol = str(description.get("protocol") or "")
    text = str(filepath)
    if "://" in text:
        return text
    if protocol and protocol not in ("file", "local"):
        return f"{protocol}://{PurePosixPath(text)}"
    path = Path(text)
    return str(path if path.is_absolute() else (project / path).resolve())


def executor_output(uris: Mapping[str, str], names: Mapping[str, str]) -> dict[str, Any]:
    """``ExecutorOutput`` JSON: each output artifact ``names[dataset]`` at ``uris[dataset]`` (pure)."""
    artifacts = {}
    for dataset, name in sorted(names.items()):
        if dataset in uris:
            artifacts[name] = {"artifacts": [{"name": name, "uri": uris[dataset],
                                              "metadata": {"kedro_dataset": dataset}}]}
    return {"artifacts": artifacts}


class RecordArtifacts:
    """After the step's nodes ran: report where the catalog wrote each declared dataset."""

    def __init__(self, executor_input: str, names: Mapping[str, str], project: Path):
        self._input, self._names, self._project = executor_input, dict(names), project

    @hook_impl
    def after_pipeline_run(self, run_params: Mapping[str, Any], run_result: Any, pipeline: Any, catalog: Any) -> None:
        try:
            output_file = json.loads(self._input)["outputs"]["outputFile"]
        except (ValueError, KeyError, TypeError):
            return  # not run by a KFP launcher (a plain run-local without executor input)
        uris = {}
        for dataset in self._names:
            found = catalog.get(dataset)
            uri = dataset_uri(found._describe(), self._project) if found is not None else None
            if uri:
                uris[dataset] = uri
        target = Path(output_file)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(executor_output(uris, self._names), sort_keys=True), encoding="utf-8")
