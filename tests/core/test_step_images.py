"""``resources.<node|tag|group>.image`` (kedro-vertexai #129): a step runs in its own image; nodes share a step
only with nodes of the same image; the spec carries it where kfp.compiler puts it (see test_spec_parity)."""

from __future__ import annotations

import json

import pytest

from kedro_vertex_ci import spec
from kedro_vertex_ci.compiler import build_plan
from kedro_vertex_ci.config import parse_config
from kedro_vertex_ci.errors import ConfigError
from kedro_vertex_ci.model import DatasetKind, NodeInfo, PipelineGraph
from kedro_vertex_ci.settings import unpinned_images

GPU = "europe-docker.pkg.dev/p/r/gpu@sha256:" + "1" * 64
NODES = (
    NodeInfo("load", ("raw",), ("frame",), frozenset({"group.prep"})),
    NodeInfo("clean", ("frame",), ("clean",), frozenset({"group.prep"})),
    NodeInfo("train", ("clean",), ("model",), frozenset({"gpu"})),
    NodeInfo("report", ("model",), ("report",), frozenset()),
)
GRAPH = PipelineGraph("__default__", NODES, {"raw": DatasetKind.CATALOG, "report": DatasetKind.CATALOG})


def _plan(resources: dict, grouping: str = "identity"):
    config = parse_config({"project_id": "my-project", "region": "europe-west1", "run_config": {
        "image": "europe-docker.pkg.dev/p/r/app:1", "resources": resources, "grouping": {"cls": grouping}}}).config
    return build_plan(graph=GRAPH, config=config, project_name="demo", env=None)


def _images(plan) -> dict[str, str]:
    emitted = json.loads(spec.to_json_bytes(spec.emit(plan)))
    return {name[5:]: e["container"]["image"] for name, e in emitted["deploymentSpec"]["executors"].items()}


def test_a_tag_key_gives_its_nodes_their_image_and_the_rest_keep_the_default():
    images = _images(_plan({"gpu": {"image": GPU, "gpu": 1, "accelerator": "NVIDIA_TESLA_T4"}}))
    assert images == {"load": "europe-docker.pkg.dev/p/r/app:1", "clean": "europe-docker.pkg.dev/p/r/app:1",
                      "train": GPU, "report": "europe-docker.pkg.dev/p/r/app:1"}


def test_a_group_key_sets_the_image_of_the_whole_group():
    images = _images(_plan({"prep": {"image": GPU}}, grouping="tag"))
    assert images["prep"] == GPU and images["train"].endswith("app:1")


def test_nodes_of_different_images_never_share_a_step():
    with pytest.raises(ConfigError) as caught:
        _plan({"load": {"image": GPU}}, grouping="tag")
    message = str(caught.value)
    assert "step 'prep' fuses nodes that ask for different images" in message
    assert f"load: {GPU}" in message and "clean: run_config.image" in message


def test_a_machine_type_step_runs_its_image_in_the_custom_job():
    plan = _plan({"train": {"image": GPU, "machine_type": "n1-standard-8"}})
    emitted = json.loads(spec.to_json_bytes(spec.emit(plan)))
    payload = emitted["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert GPU in json.dumps(emitted["components"]["comp-train"]) or GPU in json.dumps(payload)
    assert "app:1" not in json.dumps(emitted["components"]["comp-train"]) + json.dumps(payload)


def test_only_images_without_a_digest_count_as_unpinned():
    plan = _plan({"train": {"image": "ghcr.io/acme/gpu:latest"}, "report": {"image": GPU}})
    assert unpinned_images(plan.resources) == {"train": "ghcr.io/acme/gpu:latest"}
