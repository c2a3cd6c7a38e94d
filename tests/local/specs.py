"""Real PipelineSpecs for run-local tests, compiled by kfp from small container-component pipelines.

Each step runs ``python -c CODE ARGS...``: no Kedro needed, so the executor is tested on its own.
(No ``from __future__ import annotations`` here: kfp reads the component annotations at run time.)
"""

import json
from functools import cache
from pathlib import Path
from typing import Any

ECHO = "import json, sys; print(json.dumps(sys.argv[1:]))"
SLEEP = "import sys, time; time.sleep(float(sys.argv[1])); print('slept', sys.argv[1])"
FAIL = "import sys; print('line one'); print('about to fail', file=sys.stderr); sys.exit(3)"
# Writes argv into <root>/<run id>/out/<name>.json, so tests see what a step was given.
RECORD = (
    "import json, os, pathlib, sys; root, run, name = sys.argv[1:4]; "
    "p = pathlib.Path(root, run, 'out', name + '.json'); p.parent.mkdir(parents=True, exist_ok=True); "
    "p.write_text(json.dumps({'argv': sys.argv[4:], 'env': os.environ.get('STEP_ENV')})); print('recorded', name)"
)


def _compile(pipeline_func) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    import tempfile

    from kfp import compiler

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.json"
        compiler.Compiler().compile(pipeline_func, str(path))
        return json.loads(path.read_text())


@cache
def parallel_sleep_spec() -> str:
    """Two independent 1 s steps then a join step."""
    from kfp import dsl

    @dsl.container_component
    def sleeper(seconds: float):
        return dsl.ContainerSpec(image="python:3.11", command=["python", "-c", SLEEP], args=[seconds])

    @dsl.container_component
    def join():
        return dsl.ContainerSpec(image="python:3.11", command=["python", "-c", "print('joined')"])

    @dsl.pipeline(name="parallel")
    def pipe(seconds: float = 1.0):
        a = sleeper(seconds=seconds).set_caching_options(False)
        b = sleeper(seconds=seconds).set_caching_options(False)
        join().after(a, b)

    return json.dumps(_compile(pipe))


@cache
def failing_spec() -> str:
    """``bad`` fails at once while ``slow`` (independent) runs 1.5 s; ``after-bad`` must not run; ``later``
    (after ``slow``) runs by default (Vertex's "fail slow") and not with ``--fail-fast``."""
    from kfp import dsl

    @dsl.container_component
    def bad():
        return dsl.ContainerSpec(image="python:3.11", command=["python", "-c", FAIL])

    @dsl.container_component
    def slow():
        return dsl.ContainerSpec(image="python:3.11", command=["python", "-c", SLEEP], args=["1.5"])

    @dsl.container_component
    def after_bad():
        return dsl.ContainerSpec(image="python:3.11", command=["python", "-c", "print('must not run')"])

    @dsl.container_component
    def later():
        return dsl.ContainerSpec(image="python:3.11", command=["python", "-c", "print('independent')"])

    @dsl.pipeline(name="failing")
    def pipe():
        b = bad()
        s = slow()
        after_bad().after(b)
        later().after(s)

    return json.dumps(_compile(pipe))


@cache
def placeholder_spec() -> str:
    """One step recording every placeholder and typed input; an exit handler recording its status."""
    from kfp import dsl

    @dsl.container_component
    def record(name: str, text: str, count: int, ratio: float, flag: bool, items: list, options: dict):
        return dsl.ContainerSpec(
            image="python:3.11",
            command=["python", "-c", RECORD],
            args=[
                dsl.PIPELINE_ROOT_PLACEHOLDER,
                dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                name,
                "--job-name",
                dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
                "--run-id",
                dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                "--root",
                dsl.PIPELINE_ROOT_PLACEHOLDER,
                "--text",
                text,
                "--count",
                count,
                "--ratio",
                ratio,
                "--flag",
                flag,
                "--items",
                items,
                "--options",
                options,
                "--node",
                "first_node",
            ],
        )

    @dsl.container_component
    def on_exit(status: dsl.PipelineTaskFinalStatus):
        return dsl.ContainerSpec(
            image="python:3.11",
            command=["python", "-c", RECORD],
            args=[dsl.PIPELINE_ROOT_PLACEHOLDER, dsl.PIPELINE_JOB_ID_PLACEHOLDER, "on-exit", status],
        )

    @dsl.pipeline(name="placeholders")
    def pipe(
        text: str = 'it\'s a "quoted" value',
        count: int = 3,
        ratio: float = 0.25,
        flag: bool = True,
        items: list = [1, 2, "x"],  # noqa: B006 - kfp reads the default
        options: dict = {"depth": 4, "rate": 0.5, "nested": {"on": False}},  # noqa: B006
    ):
        with dsl.ExitHandler(on_exit()):
            record(
                name="record", text=text, count=count, ratio=ratio, flag=flag, items=items, options=options
            ).set_env_variable("STEP_ENV", "from-spec")

    return json.dumps(_compile(pipe))


def load(text: str) -> dict[str, Any]:
    return json.loads(text)
