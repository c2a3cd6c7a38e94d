"""A real KFP v2 spec built by kfp's own compiler (no ``from __future__`` here: kfp reads the annotations)."""

import json
import tempfile
from pathlib import Path


def compile_tiny_spec() -> dict:
    """Two container steps and one runtime parameter, compiled by kfp into PipelineSpec JSON."""
    from kfp import compiler, dsl

    @dsl.container_component
    def step(name: str):
        return dsl.ContainerSpec(image="europe-docker.pkg.dev/demo-project/kvc/demo:latest",
                                 command=["kedro-vertex-ci", "step"], args=["--nodes", name])

    @dsl.pipeline(name="demo-pipeline")
    def demo(learning_rate: float = 0.1):
        first = step(name="preprocess")
        step(name="train").after(first)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.json"
        compiler.Compiler().compile(demo, str(path))
        return json.loads(path.read_text())
