"""Reading `git ls-remote --tags` output and choosing the commit and release a major tag stands for."""

from __future__ import annotations

import pytest

from kedro_vertex_ci.scaffold.pins import Pin, parse_ls_remote, pick_release, pin_workflow_text

A, B, C, T = "a" * 40, "b" * 40, "c" * 40, "f" * 40
LS_REMOTE = "\n".join([
    f"{T}\trefs/tags/v1.0.0",  # annotated: the tag object, peeled on the next line
    f"{A}\trefs/tags/v1.0.0^{{}}",
    f"{B}\trefs/tags/v1.1.0",
    f"{B}\trefs/tags/v1",
    f"{C}\trefs/tags/v2.0.0",
    f"{C}\trefs/heads/main",
    "garbage line",
])


def test_annotated_tags_resolve_to_their_commit() -> None:
    assert parse_ls_remote(LS_REMOTE) == {"v1.0.0": A, "v1.1.0": B, "v1": B, "v2.0.0": C}


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("v1", Pin("", B, "v1.1.0")),  # the major tag's commit, labelled with the release on it
        ("v1.0.0", Pin("", A, "v1.0.0")),
        ("v2", Pin("", C, "v2.0.0")),  # no v2 tag: the highest v2.x.y
        ("v3", None),
    ],
)
def test_pick_release(ref: str, expected: Pin | None) -> None:
    assert pick_release(parse_ls_remote(LS_REMOTE), ref) == expected


def test_uses_text() -> None:
    assert Pin("o/r", A, "v1.0.0").uses() == f"o/r@{A} # v1.0.0"
    assert Pin("o/r", "v1").uses() == "o/r@v1"


def test_pin_workflow_text_rewrites_only_unpinned_refs() -> None:
    text = f"steps:\n  - uses: o/a@v1\n  - uses: o/b@{A} # v9.9.9\n  - uses: o/c@v2 # note\n"

    def resolver(repository: str, ref: str) -> Pin:
        return Pin(repository, B, "v1.1.0") if repository == "o/a" else Pin(repository, ref)

    pinned, unresolved = pin_workflow_text(text, resolver)
    assert pinned == f"steps:\n  - uses: o/a@{B} # v1.1.0\n  - uses: o/b@{A} # v9.9.9\n  - uses: o/c@v2 # note\n"
    assert unresolved == ["o/c@v2"]
