"""Workflow command formatting and the runner's files."""

from __future__ import annotations

import io
from pathlib import Path

from action.workflow_commands import Runner, command, error_annotation, output_entry

from .conftest import read_outputs


def test_error_annotation_escapes_message_and_properties() -> None:
    line = error_annotation("bad value: 50%\nsecond line", file="conf/base/a,b:c.yml", line=7, title="Invalid")
    assert line == "::error file=conf/base/a%2Cb%3Ac.yml,line=7,title=Invalid::bad value: 50%25%0Asecond line"


def test_command_leaves_out_unset_properties() -> None:
    assert command("error", "boom", file=None, line=None) == "::error::boom"


def test_multiline_output_uses_a_delimiter_not_in_the_value(tmp_path: Path) -> None:
    value = "line one\nghadelimiter_x\nname=evil"
    out = tmp_path / "out"
    Runner(output_file=out, summary_file=None, stream=io.StringIO()).set_outputs({"spec": value, "job-id": "j1"})
    assert read_outputs(out) == {"spec": value, "job-id": "j1"}
    assert output_entry("a", "b") == "a=b\n"


def test_masked_secret_is_announced_first_and_never_printed(tmp_path: Path) -> None:
    stream = io.StringIO()
    runner = Runner(output_file=tmp_path / "o", summary_file=tmp_path / "s", stream=stream)
    runner.mask("s3cr3t-token")
    runner.log("calling with s3cr3t-token now")
    runner.error("failed for s3cr3t-token")
    runner.add_summary("token s3cr3t-token")
    runner.set_outputs({"x": "s3cr3t-token"})
    lines = stream.getvalue().splitlines()
    assert lines[0] == "::add-mask::s3cr3t-token"
    assert all("s3cr3t-token" not in line for line in lines[1:])
    assert "s3cr3t-token" not in (tmp_path / "s").read_text() + (tmp_path / "o").read_text()


def test_group_is_closed_when_the_body_raises() -> None:
    stream = io.StringIO()
    runner = Runner(output_file=None, summary_file=None, stream=stream)
    try:
        with runner.group("Compile"):
            raise RuntimeError("x")
    except RuntimeError:
        pass
    assert stream.getvalue().splitlines() == ["::group::Compile", "::endgroup::"]
