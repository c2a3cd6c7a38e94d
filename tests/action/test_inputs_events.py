"""Inputs are read robustly; the plan for each recorded event is what the README promises."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from action.events import COMPILE, RUN_ONCE, SCHEDULE, decide, read_event
from action.inputs import read_inputs
from kedro_vertex_ci.errors import AuthError, ConfigError

PROVIDER = "projects/123456789012/locations/global/workloadIdentityPools/github/providers/acme"


def test_hyphenated_and_underscored_names_and_defaults() -> None:
    inputs = read_inputs(
        {"INPUT_PROJECT-ID": "acme-ml", "INPUT_DRY_RUN": "TRUE", "INPUT_WORKLOAD-IDENTITY-PROVIDER": PROVIDER}
    )
    assert inputs.project_id == "acme-ml"
    assert inputs.dry_run is True
    assert inputs.pipeline == "__default__" and inputs.mode == "auto" and inputs.build is True
    assert inputs.region is None and inputs.wait is False and inputs.working_directory == "."


def test_params_as_lines_or_json() -> None:
    lines = read_inputs({"INPUT_PARAMS": "a=1\n# comment\n\nmodel.test_size = 0.3\nname=x=y"})
    assert lines.params == {"a": "1", "model.test_size": "0.3", "name": "x=y"}
    as_json = read_inputs({"INPUT_PARAMS": '{"a": 1, "b": "two", "c": [1, 2]}'})
    assert as_json.params == {"a": "1", "b": "two", "c": "[1, 2]"}


def test_every_bad_input_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        read_inputs(
            {
                "INPUT_BUILD": "maybe",
                "INPUT_MODE": "deploy",
                "INPUT_PARAMS": "novalue",
                "INPUT_WORKLOAD-IDENTITY-PROVIDER": "projects/acme-ml/locations/global/workloadIdentityPools/p/providers/x",
            }
        )
    keys = [p.key for p in caught.value.problems]
    assert keys == ["build", "mode", "params", "workload-identity-provider"]
    assert "project NUMBER" in str(caught.value)


def test_a_pool_instead_of_a_provider_names_the_fix() -> None:
    with pytest.raises(ConfigError, match="names a pool, not a provider"):
        read_inputs({"INPUT_WORKLOAD-IDENTITY-PROVIDER": "projects/1/locations/global/workloadIdentityPools/github"})


@pytest.mark.parametrize(
    ("case", "operation", "build", "comment", "words"),
    [
        ("push_branch", RUN_ONCE, True, True, "push to branch feature/faster-prep"),
        ("push_main", SCHEDULE, True, False, "default branch main"),
        ("pull_request", RUN_ONCE, True, True, "pull request #17"),
        ("pull_request_fork", COMPILE, False, False, "fork"),
        ("workflow_dispatch", RUN_ONCE, True, False, "workflow_dispatch"),
    ],
)
def test_auto_mode_per_event(make_env: Callable[..., dict[str, str]], case, operation, build, comment, words) -> None:
    env = make_env(case)
    plan = decide(read_inputs(env), read_event(env))
    assert (plan.operation, plan.build, plan.comment) == (operation, build, comment)
    assert words in plan.reason


def test_event_facts_from_real_payloads(make_env: Callable[..., dict[str, str]]) -> None:
    pr = read_event(make_env("pull_request"))
    assert (pr.pr_number, pr.branch, pr.fork, pr.default_branch) == (17, "feature/faster-prep", False, "main")
    assert pr.head_sha.startswith("4f2c1a9b") and pr.sha == "c" * 40
    fork = read_event(make_env("pull_request_fork"))
    assert fork.fork and fork.pr_number == 18
    push = read_event(make_env("push_branch"))
    assert push.branch == "feature/faster-prep" and push.pr_number is None
    assert push.run_url == "https://github.com/acme/spaceflights/actions/runs/9876543210"


@pytest.mark.parametrize("case", ["push_branch", "push_main", "pull_request", "workflow_dispatch"])
def test_no_oidc_token_outside_fork_prs_is_an_error_naming_the_permission(
    make_env: Callable[..., dict[str, str]], case: str
) -> None:
    """Compiling only and exiting 0 made users believe the pipeline ran or was scheduled (issue 12, point 2)."""
    env = make_env(case, oidc=False, workload_identity_provider=PROVIDER)
    with pytest.raises(AuthError, match="permissions: id-token: write") as caught:
        decide(read_inputs(env), read_event(env))
    assert caught.value.exit_code == 1
    dry = make_env(case, oidc=False, dry_run="true")
    assert decide(read_inputs(dry), read_event(dry)).operation != COMPILE  # the dry run shows the real plan
    compile_only = make_env(case, oidc=False, mode="compile")
    assert decide(read_inputs(compile_only), read_event(compile_only)).operation == COMPILE
    fork = make_env("pull_request_fork", oidc=False)
    assert decide(read_inputs(fork), read_event(fork)).operation == COMPILE


def test_reuse_and_cancel_superseded_per_event(make_env: Callable[..., dict[str, str]]) -> None:
    def plan(case: str, **inputs: str):
        env = make_env(case, **inputs)
        return decide(read_inputs(env), read_event(env))

    assert (plan("pull_request").reuse, plan("pull_request").cancel_superseded) == (True, True)
    assert (plan("push_branch").reuse, plan("push_branch").cancel_superseded) == (True, True)
    assert plan("pull_request", force="true").reuse is False
    assert plan("pull_request", cancel_superseded="false").cancel_superseded is False
    assert (plan("workflow_dispatch").reuse, plan("workflow_dispatch").cancel_superseded) == (False, False)


def test_explicit_modes_and_build_false(make_env: Callable[..., dict[str, str]]) -> None:
    env = make_env("pull_request", mode="schedule", build="false")
    plan = decide(read_inputs(env), read_event(env))
    assert (plan.operation, plan.build, plan.comment) == (SCHEDULE, False, False)
    env = make_env("push_main", mode="compile")
    assert decide(read_inputs(env), read_event(env)).operation == COMPILE


def test_labels_are_valid_vertex_labels(make_env: Callable[..., dict[str, str]]) -> None:
    env = make_env("pull_request")
    labels = decide(read_inputs(env), read_event(env)).labels
    assert labels == {"git-sha": "4f2c1a9be3d84c7f9a0e1b2c3d4e5f6a7b8c9d0e", "github-event": "pull_request",
                      "git-branch": "feature-faster-prep", "github-pr": "17", "github-run": "9876543210"}
