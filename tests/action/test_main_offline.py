"""The orchestrator on real Kedro projects, for the paths that never touch the cloud: dry run, fork PR,
mode compile and input errors. Each asserts the log, the outputs file and the summary the runner would see."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from action.main import run
from kedro_vertex_ci.testing import make_project

from .conftest import GITHUB_TOKEN, OIDC_TOKEN, read_outputs

VERTEXAI = {
    "project_id": "acme-ml",
    "region": "europe-west4",
    "run_config": {"image": "europe-west4-docker.pkg.dev/acme-ml/kedro/spaceflights", "root": "gs://acme-ml-vertex/root"},
}


def _no_cloud(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("this path must not connect to any cloud API")


@pytest.fixture
def project_env(tmp_path: Path, make_env: Callable[..., dict[str, str]]) -> Callable[..., dict[str, str]]:
    workspace = tmp_path / "workspace"
    make_project(workspace, "spaceflights", shape="diamond", n=5, vertexai=VERTEXAI)

    def make(case: str, **inputs: object) -> dict[str, str]:
        return make_env(case, working_directory="spaceflights", **inputs)

    return make


def _run(env: dict[str, str]) -> tuple[int, str]:
    stream = io.StringIO()
    code = run(env, stream=stream, connect=_no_cloud)
    return code, stream.getvalue()


def test_dry_run_prints_the_plan_and_writes_outputs(project_env: Callable[..., dict[str, str]]) -> None:
    env = project_env("pull_request", dry_run="true")
    code, log = _run(env)
    assert code == 0, log
    assert "Dry run for pipeline '__default__'" in log
    assert "would build: europe-west4-docker.pkg.dev/acme-ml/kedro/spaceflights" in log
    assert "would submit: one run with labels" in log and "'github-pr': '17'" in log
    assert "would comment: one sticky comment on the pull request" in log
    assert "::group::Compile pipeline __default__" in log and "::endgroup::" in log
    outputs = read_outputs(Path(env["GITHUB_OUTPUT"]))
    assert outputs["spec-path"] == "spaceflights/.kedro-vertex-ci/__default__.json"
    assert outputs["job-id"] == "" and outputs["image-digest"] == ""
    spec = json.loads((Path(env["GITHUB_WORKSPACE"]) / outputs["spec-path"]).read_text())
    assert spec["root"]["dag"]["tasks"]
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "Dry run (no cloud API called)" in summary and "```mermaid\nflowchart TD" in summary
    tasks = spec["root"]["dag"]["tasks"]
    edges = sum(len(task.get("dependentTasks", [])) for task in tasks.values())
    assert summary.count(" --> ") == edges > 0
    estimate = re.search(r"\| Estimate \| (\d+) steps, wall ≈ [^,]+, billed ≈ [^(]+ \(lower bound [^;]+; 0/(\d+) node", summary)
    assert estimate and int(estimate.group(1)) == len(tasks), summary  # every node at the default duration
    assert "estimate on Vertex:" in log


def test_dry_run_on_the_default_branch_shows_the_schedule(project_env: Callable[..., dict[str, str]]) -> None:
    code, log = _run(project_env("push_main", dry_run="true", cron="0 6 * * 1"))
    assert code == 0, log
    assert "would schedule: cron 0 6 * * 1" in log and "would submit" not in log


def test_fork_pr_compiles_and_validates_only_and_succeeds(project_env: Callable[..., dict[str, str]]) -> None:
    env = project_env("pull_request_fork", oidc=False)
    assert "ACTIONS_ID_TOKEN_REQUEST_URL" not in env
    code, log = _run(env)
    assert code == 0, log
    assert "::notice title=Compile only::pull request from a fork" in log
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "Compiled and validated" in summary and "pull request from a fork" in summary
    assert read_outputs(Path(env["GITHUB_OUTPUT"]))["spec-path"].endswith("__default__.json")


def test_config_error_becomes_a_file_line_annotation(tmp_path: Path, make_env: Callable[..., dict[str, str]]) -> None:
    workspace = tmp_path / "workspace"
    bad = "project_id: acme-ml\nregion: europe-west4\nrun_config:\n  image: x\n  root: gs://b/r\n  grouping:\n    strategy: bogus\n"
    make_project(workspace, "spaceflights", shape="chain", n=3, vertexai=bad)
    env = make_env("push_branch", working_directory="spaceflights", mode="compile")
    code, log = _run(env)
    assert code == 2
    errors = [line for line in log.splitlines() if line.startswith("::error ")]
    assert errors and "file=spaceflights/conf/base/vertexai.yml" in errors[0] and ",line=" in errors[0]
    assert read_outputs(Path(env["GITHUB_OUTPUT"])) == dict.fromkeys(
        ("image-digest", "image", "job-id", "run-url", "schedule-name", "spec-path", "state"), ""
    )


def test_bad_inputs_are_reported_without_a_traceback(make_env: Callable[..., dict[str, str]]) -> None:
    code, log = _run(make_env("push_branch", mode="deploy", build="perhaps"))
    assert code == 2
    assert "::error title=Invalid action input::mode: expected one of" in log
    assert "::error title=Invalid action input::build: expected true or false" in log
    assert "Traceback" not in log


def test_entrypoint_subprocess_masks_tokens(project_env: Callable[..., dict[str, str]]) -> None:
    env = {**os.environ, **project_env("push_branch", dry_run="true")}
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-P", "-m", "action"], env={**env, "PYTHONPATH": str(root)}, cwd=env["GITHUB_WORKSPACE"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert f"::add-mask::{GITHUB_TOKEN}" in lines[:3] and f"::add-mask::{OIDC_TOKEN}" in lines[:3]
    rest = "\n".join(lines[2:]) + result.stderr
    assert GITHUB_TOKEN not in rest and OIDC_TOKEN not in rest
    assert "would submit" in result.stdout


def test_no_oidc_token_on_a_branch_push_fails_instead_of_a_silent_green(
    project_env: Callable[..., dict[str, str]],
) -> None:
    env = project_env("push_branch", oidc=False,
                      workload_identity_provider="projects/123456789012/locations/global/workloadIdentityPools/gh/providers/r")
    code, log = _run(env)
    assert code == 1, log
    errors = [line for line in log.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1 and "permissions: id-token: write" in errors[0]
    assert set(read_outputs(Path(env["GITHUB_OUTPUT"]))) >= {"job-id", "spec-path", "state", "image"}
    assert "failed" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()


def test_nothing_configured_means_nothing_scheduled_with_a_notice(project_env: Callable[..., dict[str, str]]) -> None:
    """No schedules in vertexai.yml and no cron input: no paid schedule appears (issue 12, point 3)."""
    env = project_env("push_main")
    code, log = _run(env)  # _no_cloud: not even a connection is made
    assert code == 0, log
    notices = [line for line in log.splitlines() if line.startswith("::notice ")]
    assert any("nothing was scheduled" in line and "cron_expression" in line for line in notices), log
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "Nothing scheduled" in summary
    assert read_outputs(Path(env["GITHUB_OUTPUT"]))["schedule-name"] == ""
    code, log = _run(project_env("push_main", dry_run="true"))
    assert code == 0 and "would schedule nothing: no schedule configured" in log, log


def test_a_past_start_time_is_warned_about_on_the_schedule_path(
    tmp_path: Path, make_env: Callable[..., dict[str, str]],
) -> None:
    workspace = tmp_path / "workspace"
    schedules = {"default_schedule": {"cron_expression": "0 4 * * *", "start_time": "2020-01-01T00:00:00Z"}}
    vertexai = {**VERTEXAI, "run_config": {**VERTEXAI["run_config"], "schedules": schedules}}
    make_project(workspace, "spaceflights", shape="chain", n=2, vertexai=vertexai)
    code, log = _run(make_env("push_main", working_directory="spaceflights", dry_run="true"))
    assert code == 0, log
    assert any(line.startswith("::warning ") and "start_time 2020-01-01T00:00:00Z is in the past" in line
               for line in log.splitlines()), log
    assert "would schedule: cron TZ=Etc/UTC 0 4 * * *" in log


@pytest.mark.parametrize("failure", [RuntimeError("socket closed"), IndexError("list index out of range")])
def test_any_failure_after_compiling_keeps_the_spec_path_and_writes_every_output(
    project_env: Callable[..., dict[str, str]], failure: Exception,
) -> None:
    """Unexpected exceptions end like the project's own errors: ::error, outputs, summary, exit 1."""
    env = project_env("push_branch")

    def broken(*_args: object, **_kwargs: object) -> None:
        raise failure

    stream = io.StringIO()
    code = run(env, stream=stream, connect=broken)
    log = stream.getvalue()
    assert code == 1
    assert any(line.startswith("::error ") and str(failure) in line for line in log.splitlines()), log
    outputs = read_outputs(Path(env["GITHUB_OUTPUT"]))
    assert outputs["spec-path"] == "spaceflights/.kedro-vertex-ci/__default__.json"
    assert outputs["job-id"] == "" and outputs["state"] == ""
    assert "failed" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    printed = "\n".join(line for line in log.splitlines() if not line.startswith("::add-mask::"))
    assert GITHUB_TOKEN not in printed and OIDC_TOKEN not in printed


def _wheel(folder: Path, name: str, version: str, requires: list[str]) -> Path:
    """A minimal pure-Python wheel, so pip resolves offline against a local folder."""
    import zipfile

    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    path = folder / f"{module}-{version}-py3-none-any.whl"
    files = {
        f"{module}/__init__.py": "",
        f"{info}/METADATA": "Metadata-Version: 2.1\n"
        f"Name: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{f},,\n" for f in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as archive:
        for member, text in files.items():
            archive.writestr(member, text)
    return path


def test_requirements_that_would_replace_the_actions_pins_fail_fast_naming_the_conflict(
    project_env: Callable[..., dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A project dependency wanting kfp<2 must not silently downgrade the kfp the compiler runs on."""
    from importlib.metadata import version

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "needs-old-kfp", "1.0", ["kfp<2"])
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    env = project_env("push_branch", mode="compile")
    project = Path(env["GITHUB_WORKSPACE"]) / "spaceflights"
    (project / "requirements.txt").write_text("# the project's own\nkedro\nneeds-old-kfp==1.0\n")
    before = version("kfp")
    code, log = _run(env)
    assert code == 2, log
    errors = [line for line in log.splitlines() if line.startswith("::error ")]
    assert len(errors) == 1 and "file=spaceflights/requirements.txt" in errors[0], errors
    assert "kfp<2" in errors[0] and f"kfp=={before}" in errors[0] and "requirements: ''" in errors[0]
    assert version("kfp") == before


def test_the_constraints_are_every_installed_distribution_but_the_installers() -> None:
    from action.requirements import constraints_text

    text = constraints_text([("Kedro", "1.7.0"), ("google_cloud.storage", "3.1"), ("pip", "26"), ("wheel", "0.4")])
    assert text == "google-cloud-storage==3.1\nkedro==1.7.0\n"


def test_an_unpinned_per_node_image_is_refused_before_any_cloud_call(tmp_path: Path, make_env) -> None:
    workspace = tmp_path / "workspace"
    run_config = {**VERTEXAI["run_config"], "resources": {"node_1": {"image": "ghcr.io/acme/gpu:latest"}}}
    make_project(workspace, "spaceflights", shape="diamond", n=5, vertexai={**VERTEXAI, "run_config": run_config})
    code, log = _run(make_env("push_branch", working_directory="spaceflights"))
    assert code == 2, log
    assert "ghcr.io/acme/gpu:latest (step node-1)" in log and "IMAGE@sha256:DIGEST" in log
    assert "Traceback" not in log

    pinned = {"node_1": {"image": "ghcr.io/acme/gpu@sha256:" + "a" * 64}}
    make_project(workspace, "spaceflights", shape="diamond", n=5,
                 vertexai={**VERTEXAI, "run_config": {**VERTEXAI["run_config"], "resources": pinned}})
    code, log = _run(make_env("push_branch", working_directory="spaceflights", dry_run="true"))
    assert code == 0, log
