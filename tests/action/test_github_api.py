"""The sticky PR comment against a fake GitHub REST API over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from action.github_api import GitHubClient, comment_marker
from kedro_vertex_ci.errors import CloudError
from tests.fakes.github_api import FakeGitHub

TOKEN = "ghs_test_token_123"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(TOKEN) as server:
        yield server


def client(server: FakeGitHub, token: str = TOKEN) -> GitHubClient:
    return GitHubClient(server.url, token, "acme/spaceflights", retries=0)


def test_first_run_creates_then_updates_in_place(github: FakeGitHub) -> None:
    marker = comment_marker("__default__")
    github.state.add_comment(5, "LGTM", user="bob")
    first = client(github).upsert_sticky_comment(5, marker, "run 1")
    second = client(github).upsert_sticky_comment(5, marker, "run 2")
    assert first == second
    bodies = [c["body"] for c in github.state.comments[5]]
    assert bodies == ["LGTM", f"{marker}\nrun 2"]
    assert [r.method for r in github.calls() if r.method != "GET"] == ["POST", "PATCH"]
    assert all(r.authorization == f"Bearer {TOKEN}" for r in github.calls())


def test_marker_is_found_beyond_the_first_page(github: FakeGitHub) -> None:
    marker = comment_marker("training")
    for index in range(130):
        github.state.add_comment(9, f"chatter {index}")
    github.state.add_comment(9, f"{marker}\nold")
    client(github).upsert_sticky_comment(9, marker, "new")
    assert [c["body"] for c in github.state.comments[9]][-1] == f"{marker}\nnew"
    assert len(github.state.comments[9]) == 131
    pages = [r.query.get("page", ["1"])[0] for r in github.calls("GET")]
    assert pages[:2] == ["1", "2"]


def test_pipelines_keep_separate_comments_and_the_oldest_duplicate_wins(github: FakeGitHub) -> None:
    a, b = comment_marker("__default__"), comment_marker("training")
    github.state.add_comment(3, f"{a}\noldest")
    github.state.add_comment(3, f"{a}\nduplicate")
    client(github).upsert_sticky_comment(3, a, "fresh")
    client(github).upsert_sticky_comment(3, b, "other pipeline")
    assert [c["body"] for c in github.state.comments[3]] == [f"{a}\nfresh", f"{b}\nother pipeline"]


def test_two_runs_racing_leave_exactly_one_comment(github: FakeGitHub) -> None:
    marker = comment_marker("__default__")
    github.state.list_barrier = threading.Barrier(2, timeout=10)  # both list before either creates
    results: list[int] = []
    errors: list[BaseException] = []

    def run(body: str) -> None:
        try:
            results.append(client(github).upsert_sticky_comment(21, marker, body))
        except BaseException as err:  # noqa: BLE001 - surfaced below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(f"run {n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert not errors
    assert len([r for r in github.calls("POST")]) == 2  # the race really happened
    remaining = github.state.comments[21]
    assert len(remaining) == 1 and remaining[0]["body"] in (f"{marker}\nrun 1", f"{marker}\nrun 2")
    assert results == [remaining[0]["id"]] * 2


def test_branch_push_finds_its_open_pr(github: FakeGitHub) -> None:
    github.state.commit_pulls["abc123"] = [42]
    assert client(github).pull_requests_for_commit("abc123") == [42]
    assert client(github).pull_requests_for_commit("def456") == []


def test_a_bad_token_says_what_to_fix_without_printing_it(github: FakeGitHub) -> None:
    with pytest.raises(CloudError) as caught:
        client(github, token="wrong-token-value").upsert_sticky_comment(1, comment_marker("p"), "x")
    assert "pull-requests: write" in str(caught.value)
    assert "wrong-token-value" not in str(caught.value)


def test_a_comment_missing_from_the_list_right_after_creating_it_is_still_the_one_kept(github: FakeGitHub) -> None:
    """api.github.com's read-after-write lag: the create response counts, the list may lag behind."""
    marker = comment_marker("__default__")
    github.state.list_lag = 1
    first = client(github).upsert_sticky_comment(7, marker, "run 1")
    assert [c["id"] for c in github.state.comments[7]] == [first]
    second = client(github).upsert_sticky_comment(7, marker, "run 2")
    assert second == first and [c["body"] for c in github.state.comments[7]] == [f"{marker}\nrun 2"]


@pytest.mark.parametrize("kind", ["primary", "secondary", "secondary429"])
def test_rate_limits_are_waited_out_for_as_long_as_github_asks(github: FakeGitHub, kind: str) -> None:
    slept: list[float] = []
    now = 1_800_000_000.0
    github.state.rate_limit(kind, 30, times=2)
    api = GitHubClient(github.url, TOKEN, "acme/spaceflights", retries=0, sleep=slept.append,
                       clock=lambda: now)
    github.state.commit_pulls["abc"] = [4]
    if kind == "primary":  # the fake's reset is in real epoch seconds: wait until then, plus one
        api._clock = time.time  # type: ignore[method-assign]
    assert api.pull_requests_for_commit("abc") == [4]
    assert len(slept) == 2 and all(29 <= s <= 32 for s in slept), slept


def test_a_rate_limit_beyond_the_wait_budget_is_not_called_a_permission_problem(github: FakeGitHub) -> None:
    github.state.rate_limit("secondary", 3600)
    api = GitHubClient(github.url, TOKEN, "acme/spaceflights", retries=0, sleep=lambda _s: None)
    with pytest.raises(CloudError) as caught:
        api.pull_requests_for_commit("abc")
    message = str(caught.value)
    assert "rate limited" in message and "not a permission problem" in message
    assert "pull-requests: write" not in message
