"""Build the pipeline a :class:`Plan` describes with kfp's own DSL and compiler: the yardstick for ``spec``.

Each step becomes a real ``@dsl.container_component`` function, generated from source so kfp sees an ordinary
typed signature; the pipeline function takes every pipeline parameter with its default. Task settings go
through the public ``PipelineTask`` setters (``set_cpu_limit``, ``set_retry``, ``set_env_variable``…), and an
on-exit step runs under ``dsl.ExitHandler`` with a ``dsl.PipelineTaskFinalStatus`` input.

Step args come from :func:`argv.build_step_args`, except that each parameter value ``KEY=…`` is rebuilt as an
f-string around the placeholder object kfp passes in, so kfp renders the placeholder itself; the on-exit flags
are written here independently of ``spec.exit_step_args``.

A step whose resources name a machine type is wrapped with GCPC's ``create_custom_training_job_from_component``
(machine, accelerator, spot, boot disk, service account, network; the plan's env goes into the worker pool,
since a task-level env would land on the launcher), which is what users of GCPC write by hand.
"""

from __future__ import annotations

import keyword
from pathlib import Path
from typing import Any

import yaml

from kedro_vertex_ci import argv
from kedro_vertex_ci.model import ParamType, PipelineParam, Plan, Resources, Step

ANNOTATIONS = {
    ParamType.STRING: "str",
    ParamType.NUMBER_INTEGER: "int",
    ParamType.NUMBER_DOUBLE: "float",
    ParamType.BOOLEAN: "bool",
    ParamType.LIST: "list",
    ParamType.STRUCT: "dict",
}


def compile_with_kfp(plan: Plan, workdir: Path) -> dict[str, Any]:
    """Compile ``plan``'s pipeline with ``kfp.compiler`` to ``workdir/pipeline.yaml`` and load it."""
    from kfp import compiler

    package = workdir / "pipeline.yaml"
    compiler.Compiler().compile(_pipeline_func(plan), str(package))
    loaded: dict[str, Any] = yaml.safe_load(package.read_text())
    return loaded


def _python_name(step_name: str) -> str:
    """The function name kfp turns back into ``step_name`` (it maps ``_`` to ``-``)."""
    name = step_name.replace("-", "_")
    assert name.isidentifier() and not keyword.iskeyword(name), step_name
    return name


def _pipeline_func(plan: Plan) -> Any:
    from kfp import dsl

    by_key = {p.key: p for p in plan.params}
    components = {step.name: _component(plan, step, by_key) for step in plan.steps}
    exit_component = _component(plan, plan.on_exit, by_key, on_exit=True) if plan.on_exit else None

    def body(**pipeline_inputs: Any) -> None:
        if exit_component is None:
            _add_tasks(plan, components, pipeline_inputs)
            return
        exit_task = _call(exit_component, plan.on_exit, by_key, pipeline_inputs)
        _configure(exit_task, plan, plan.on_exit)
        with dsl.ExitHandler(exit_task):
            _add_tasks(plan, components, pipeline_inputs)

    namespace: dict[str, Any] = {"body": body, "defaults": {p.name: p.default for p in plan.params}}
    signature = ", ".join(f"{p.name}: {ANNOTATIONS[p.type]} = defaults[{p.name!r}]" for p in plan.params)
    call = ", ".join(f"{p.name}={p.name}" for p in plan.params)
    _define(f"def pipeline_func({signature}):\n    body({call})\n", namespace)
    return dsl.pipeline(name=plan.pipeline_name, description=plan.description or None)(
        namespace["pipeline_func"]
    )


def _define(source: str, namespace: dict[str, Any]) -> None:
    """Run generated ``def`` source with real (not postponed) annotations, as kfp needs to read them."""
    exec(compile(source, "<kfp_reference>", "exec", dont_inherit=True), namespace)


def _add_tasks(plan: Plan, components: dict[str, Any], pipeline_inputs: dict[str, Any]) -> None:
    by_key = {p.key: p for p in plan.params}
    tasks: dict[str, Any] = {}
    for step in plan.steps:
        task = _call(components[step.name], step, by_key, pipeline_inputs)
        if step.depends_on:
            task.after(*(tasks[name] for name in step.depends_on))
        _configure(task, plan, step)
        tasks[step.name] = task


def _call(
    component: Any, step: Step, by_key: dict[str, PipelineParam], pipeline_inputs: dict[str, Any]
) -> Any:
    names = [by_key[key].name for key in step.parameters]
    return component(**{name: pipeline_inputs[name] for name in names})


def _configure(task: Any, plan: Plan, step: Step) -> None:
    resources = plan.resources.get(step.name) or Resources()
    caching = plan.caching if resources.caching is None else resources.caching
    task.set_caching_options(caching)
    if resources.custom_job:  # the machine is set in the wrapper; only task-level settings remain
        if resources.retries > 0:
            task.set_retry(resources.retries, backoff_duration=resources.retry_backoff)
        return
    if resources.cpu is not None:
        task.set_cpu_limit(resources.cpu)
    if resources.memory is not None:
        task.set_memory_limit(resources.memory)
    if resources.accelerator_type is not None:
        task.set_accelerator_type(resources.accelerator_type)
    if resources.accelerator_count is not None:
        task.set_accelerator_limit(resources.accelerator_count)
    if resources.retries > 0:
        task.set_retry(resources.retries, backoff_duration=resources.retry_backoff)
    for name in sorted(plan.extra_env):
        task.set_env_variable(name, plan.extra_env[name])


def _component(plan: Plan, step: Step, by_key: dict[str, PipelineParam], on_exit: bool = False) -> Any:
    """A container component whose typed inputs are the step's parameters (plus ``status`` on exit)."""
    from kfp import dsl

    params = [by_key[key] for key in step.parameters]
    resources = plan.resources.get(step.name)
    template = argv.build_step_args(plan, step, resources)

    def make_spec(**inputs: Any) -> Any:
        args = _kfp_args(template, params, inputs)
        if on_exit:
            args += ["--on-exit", "--status", f"{inputs['status']}"]
        image = (resources.image if resources is not None else None) or plan.image
        return dsl.ContainerSpec(image=image, command=list(argv.STEP_COMMAND), args=args)

    namespace: dict[str, Any] = {"make_spec": make_spec, "dsl": dsl}
    signature = [f"{p.name}: {ANNOTATIONS[p.type]}" for p in params]
    if on_exit:
        signature.append("status: dsl.PipelineTaskFinalStatus")
    outputs = list(argv.artifact_names(plan.artifacts.get(step.name, ())).values())
    signature += [f"{name}: dsl.Output[dsl.Dataset]" for name in outputs]
    names = [p.name for p in params] + (["status"] if on_exit else []) + outputs
    call = ", ".join(f"{name}={name}" for name in names)
    func_name = _python_name(step.name)
    _define(f"def {func_name}({', '.join(signature)}):\n    return make_spec({call})\n", namespace)
    component = dsl.container_component(namespace[func_name])
    if resources is not None and resources.custom_job:
        return _as_custom_job(plan, component, resources)
    return component


def _as_custom_job(plan: Plan, component: Any, resources: Resources) -> Any:
    """The component wrapped by GCPC into a CustomJob launcher on the step's machine."""
    from google_cloud_pipeline_components.v1.custom_job import create_custom_training_job_from_component

    options: dict[str, Any] = {
        "machine_type": resources.machine_type,
        "strategy": "SPOT" if resources.spot else "STANDARD",
        "env": [{"name": name, "value": plan.extra_env[name]} for name in sorted(plan.extra_env)],
        "service_account": resources.service_account or "",
        "network": resources.network or "",
    }
    if resources.accelerator_type is not None:
        options["accelerator_type"] = resources.accelerator_type
    if resources.accelerator_count is not None:
        options["accelerator_count"] = resources.accelerator_count
    if resources.boot_disk_size_gb is not None:
        options["boot_disk_size_gb"] = resources.boot_disk_size_gb
    return create_custom_training_job_from_component(component, **options)


def _kfp_args(template: list[str], params: list[PipelineParam], inputs: dict[str, Any]) -> list[str]:
    """Rebuild each ``--param``/``--param-json`` value ``KEY=…`` as ``f"KEY={kfp placeholder}"``.

    The value after the flag is found by position, not by matching our placeholder text, so a wrong
    placeholder in ``argv`` would show up as a difference from kfp's output. The same holds for the run's
    times: the value after ``--scheduled-time`` / ``--create-time`` is kfp's ``dsl.PIPELINE_JOB_*_TIME_UTC``
    placeholder, and the one after ``--pipeline-job`` (with an experiment) ``dsl.PIPELINE_JOB_RESOURCE_NAME``.
    """
    from kfp import dsl

    kfp_constants = {"--scheduled-time": dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER,
                     "--create-time": dsl.PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER,
                     "--pipeline-job": dsl.PIPELINE_JOB_RESOURCE_NAME_PLACEHOLDER}
    by_key = {p.key: p for p in params}
    args: list[str] = []
    rebuilt: list[str] = []
    for index, item in enumerate(template):
        if index > 0 and template[index - 1] in kfp_constants:  # kfp's own constant, not our text
            args.append(kfp_constants[template[index - 1]])
        elif index > 0 and template[index - 1] in ("--param", "--param-json"):
            key = item.partition("=")[0]
            args.append(f"{key}={inputs[by_key[key].name]}")
            rebuilt.append(key)
        else:
            args.append(item)
    assert sorted(rebuilt) == sorted(by_key), (rebuilt, sorted(by_key))
    return args
