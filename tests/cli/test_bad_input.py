"""Issue 11, "CLI and files": each defect seen, as a named case. Exit 2, one clear line, no traceback."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import click
import pytest

from kedro_vertex_ci.cli import cli
from kedro_vertex_ci.errors import OutputError
from kedro_vertex_ci.fsutil import atomic_write

from .conftest import invoke

BIG = "9" * 5000

PARAM_CASES = {
    "inf": ("test_size=.inf", "test_size: inf is not a finite number"),
    "nan": ("test_size=.nan", "test_size: nan is not a finite number"),
    "5000 digits": (f"start={BIG}", "start: cannot read value"),
    "past 2**53 rounds": ("start=9007199254740993", "beyond ±2**53"),
    "past 2**53 inside a list": ("ids=[1, 9007199254740993]", "beyond ±2**53"),
    "nested wrong type": ("model_options.max_depth=deep", "model_options.max_depth: expected number_integer"),
    "nested unknown key": ("model_options.nope=1", "no such key 'nope' in parameter 'model_options'"),
    "deeper unknown key": ("model_options.sub.b=1", "no such key 'b' in parameter 'model_options.sub'"),
    "nested through a scalar": ("model_options.max_depth.x=1", "'model_options.max_depth' is not a mapping"),
    "deep brackets": ("ids=" + "[" * 3000, "nested too deeply"),
}


@pytest.mark.parametrize("case", list(PARAM_CASES))
def test_compile_param_defects(project: Path, tmp_path: Path, case: str) -> None:
    item, expected = PARAM_CASES[case]
    out = invoke(["compile", "--param", item, "-o", str(tmp_path / "spec.json")], cwd=project)
    assert not out.crashed, out.crashed
    assert out.exit_code == 2 and expected in out.output and "--param" in out.output, out.output
    assert not (tmp_path / "spec.json").exists()


def test_nested_params_keep_their_types_and_reach_the_spec(project: Path, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    out = invoke(["compile", "--param", "model_options.max_depth=7", "--param", "start=9007199254740992",
                  "-o", str(spec)], cwd=project)
    assert out.exit_code == 0, out.output + out.crashed
    inputs = json.loads(spec.read_text())["root"]["inputDefinitions"]["parameters"]
    assert inputs["start"]["defaultValue"] == 2**53


@pytest.mark.parametrize(("item", "expected"), [
    ("start=9007199254740993", "beyond ±2**53"),
    (f"start={BIG}", "not a valid NUMBER_INTEGER"),
])
def test_run_local_param_defects(project: Path, tmp_path: Path, item: str, expected: str) -> None:
    out = invoke(["run-local", "--root", str(tmp_path / "runs"), "--no-preload", "--param", item], cwd=project)
    assert not out.crashed, out.crashed
    assert out.exit_code == 2 and expected in out.output, out.output


def _output_targets(tmp_path: Path) -> dict[str, tuple[str, str]]:
    (tmp_path / "afile").write_text("x")
    os.mkfifo(tmp_path / "fifo")
    return {
        "into a file's folder": (str(tmp_path / "afile" / "x.json"), "afile is a file, not a folder"),
        "two levels under a file": (str(tmp_path / "afile" / "y" / "x.json"), "afile is a file, not a folder"),
        "/proc": ("/proc/kvc-test.json", "cannot write in /proc"),
        "read-only /sys": ("/sys/kvc-test.json", "/sys/kvc-test.json"),
        "empty": ("", "names no file"),
        "a FIFO": (str(tmp_path / "fifo"), "not a regular file"),
        "a name past 255 bytes": (str(tmp_path / ("n" * 300 + ".json")), "cannot write it"),
    }


@pytest.mark.parametrize("case", ["into a file's folder", "two levels under a file", "/proc", "read-only /sys",
                                  "empty", "a FIFO", "a name past 255 bytes"])
def test_output_defects(project: Path, tmp_path: Path, case: str) -> None:
    target, expected = _output_targets(tmp_path)[case]
    out = invoke(["compile", "-o", target], cwd=project)
    assert not out.crashed, out.crashed
    assert out.exit_code == 2 and expected in out.output, out.output


def test_output_onto_a_device_node_is_refused_and_the_node_kept(tmp_path: Path) -> None:
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    except PermissionError:
        device = Path("/dev/null")  # not root: the real one, which we cannot replace anyway
    with pytest.raises(OutputError, match="not a regular file"):
        atomic_write(device, "{}")
    assert stat.S_ISCHR(device.stat().st_mode)


def test_output_onto_a_symlink_writes_through_it(project: Path, tmp_path: Path) -> None:
    real = tmp_path / "real" / "spec.json"
    real.parent.mkdir()
    link = tmp_path / "link.json"
    link.symlink_to(real)
    out = invoke(["compile", "-o", str(link)], cwd=project)
    assert out.exit_code == 0, out.output + out.crashed
    assert link.is_symlink() and json.loads(real.read_text())["pipelineInfo"]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_new_files_respect_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        path = atomic_write(tmp_path / "new.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("mode", [0o600, 0o755, 0o640])
def test_an_overwritten_file_keeps_its_mode(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "spec.json"
    path.write_text("old")
    path.chmod(mode)
    atomic_write(path, "new")
    assert stat.S_IMODE(path.stat().st_mode) == mode and path.read_text() == "new"


def test_every_file_init_github_writes_is_0644_under_umask_022(project: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "p"
    shutil.copytree(project, copy)
    (copy / "conf" / "base" / "vertexai.yml").unlink()
    old = os.umask(0o022)
    try:
        out = invoke(["init", "my-project", "europe-west1", "--github", "--github-repo", "acme/p"], cwd=copy)
    finally:
        os.umask(old)
    assert out.exit_code == 0, out.output + out.crashed
    written = [line.split(" ", 1)[1] for line in out.output.splitlines() if line.startswith("wrote ")]
    assert {"Dockerfile", ".dockerignore", ".gitignore", "conf/base/vertexai.yml"} <= set(written), written
    modes = {name: stat.S_IMODE((copy / name).stat().st_mode) for name in written}
    assert modes.pop("gcp-setup.sh") == 0o755  # the setup script is executable, within the umask too
    assert set(modes.values()) == {0o644}, modes


@pytest.mark.parametrize(("root", "expected"), [
    ("/proc/kvc-runs", "--root /proc/kvc-runs: cannot create the folder"),
    ("/sys/kvc-runs", "--root /sys/kvc-runs: cannot create the folder"),
    ("{tmp}/afile/runs", "afile is a file, not a folder"),
])
def test_run_local_root_defects(project: Path, tmp_path: Path, root: str, expected: str) -> None:
    (tmp_path / "afile").write_text("x")
    out = invoke(["run-local", "--no-preload", "--root", root.format(tmp=tmp_path)], cwd=project)
    assert not out.crashed, out.crashed
    assert out.exit_code == 2 and expected in out.output, out.output


@pytest.mark.parametrize(("args", "env"), [
    (["-e", "nope", "compile"], None),
    (["compile", "-e", "nope"], None),
    (["compile", "--env", "nope"], None),
    (["compile"], {"KEDRO_ENV": "nope"}),
    (["run-local", "-e", "nope", "--no-preload"], None),
])
def test_unknown_environment_is_named_with_the_list(project: Path, tmp_path: Path, args: list[str],
                                                    env: dict[str, str] | None) -> None:
    out = invoke([*args, "-o" if "compile" in args else "--root", str(tmp_path / "x")], cwd=project, env=env)
    assert not out.crashed, out.crashed
    assert out.exit_code == 2 and "'nope'" in out.output and "does not exist" in out.output, out.output
    assert "environments: base, local" in out.output


def test_the_subcommand_env_wins_over_the_group_env(project: Path, tmp_path: Path) -> None:
    out = invoke(["-e", "nope", "compile", "-e", "local", "-o", str(tmp_path / "s.json")], cwd=project)
    assert out.exit_code == 0, out.output + out.crashed


def test_every_subcommand_accepts_e_and_env() -> None:
    def walk(group: click.Group) -> list[click.Command]:
        found: list[click.Command] = []
        for sub in group.commands.values():
            found.append(sub)
            if isinstance(sub, click.Group):
                found += walk(sub)
        return found

    commands = walk(cli)
    assert len(commands) >= 8
    for command in commands:
        opts = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert {"-e", "--env"} <= opts, command.name


def test_init_github_with_a_non_utf8_vertexai_yml_writes_nothing(project: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "p"
    shutil.copytree(project, copy)
    (copy / "conf" / "base" / "vertexai.yml").write_bytes(b"project_id: \xff\xfe\n")
    out = invoke(["init", "my-project", "europe-west1", "--github", "--github-repo", "acme/p"], cwd=copy)
    assert not out.crashed, out.crashed
    assert out.exit_code == 2 and "vertexai.yml: is not UTF-8 text (byte 0xff at offset 12)" in out.output
    assert not (copy / "Dockerfile").exists() and not (copy / ".gitignore").exists()


def test_init_github_keeps_a_non_utf8_dockerfile_byte_for_byte(project: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "p"
    shutil.copytree(project, copy)
    (copy / "conf" / "base" / "vertexai.yml").unlink()
    (copy / "Dockerfile").write_bytes(b"FROM python:3.11\n# caf\xe9\n")
    out = invoke(["init", "my-project", "europe-west1", "--github", "--github-repo", "acme/p"], cwd=copy)
    assert out.exit_code == 0 and not out.crashed, out.output + out.crashed
    assert "kept Dockerfile" in out.output
    assert (copy / "Dockerfile").read_bytes() == b"FROM python:3.11\n# caf\xe9\n"


@pytest.mark.parametrize(("before", "after"), [
    (None, b"# kedro-vertex-ci run-local: pickled intermediate data and logs\n.kedro-vertex-ci/\n"),
    (b"*.pyc", b"*.pyc\n# kedro-vertex-ci run-local: pickled intermediate data and logs\n.kedro-vertex-ci/\n"),
    (b"/.kedro-vertex-ci\n", b"/.kedro-vertex-ci\n"),
    (b"caf\xe9\n", b"caf\xe9\n# kedro-vertex-ci run-local: pickled intermediate data and logs\n.kedro-vertex-ci/\n"),
])
def test_init_git_ignores_the_run_folder_once(project: Path, tmp_path: Path, before: bytes | None,
                                               after: bytes) -> None:
    import shutil

    copy = tmp_path / "p"
    shutil.copytree(project, copy)
    if before is not None:
        (copy / ".gitignore").write_bytes(before)
    for _ in range(2):  # idempotent
        out = invoke(["init", "my-project", "europe-west1", "--force"], cwd=copy)
        assert out.exit_code == 0, out.output + out.crashed
    assert (copy / ".gitignore").read_bytes() == after


def test_init_refuses_a_gitignore_folder_before_writing(project: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "p"
    shutil.copytree(project, copy)
    (copy / ".gitignore").mkdir()
    before = (copy / "conf" / "base" / "vertexai.yml").read_bytes()
    out = invoke(["init", "my-project", "europe-west1", "--force"], cwd=copy)
    assert out.exit_code == 2 and ".gitignore: is not a regular file" in out.output, out.output + out.crashed
    assert (copy / "conf" / "base" / "vertexai.yml").read_bytes() == before


@pytest.mark.parametrize(("content", "expected"), [
    (b"\xff\xfe{}", "not UTF-8 text"),
    (b"[" * 5000, "nested too deeply"),
    (b"9" * 5000, "cannot read it"),
    (b"(:", "not a KFP PipelineSpec"),
])
def test_run_local_spec_file_defects(project: Path, tmp_path: Path, content: bytes, expected: str) -> None:
    spec = tmp_path / "given.json"
    spec.write_bytes(content)
    out = invoke(["run-local", "--no-preload", "--root", str(tmp_path / "runs"), "--spec", str(spec)], cwd=project)
    assert not out.crashed, out.crashed
    assert out.exit_code == 2 and expected in out.output and "given.json" in out.output, out.output


@pytest.mark.parametrize("tagged", ["!!bool maybe", "!!float abc", "!!int x", "!!timestamp soon", "!!python/name:os.system"])
def test_yaml_tags_yaml_cannot_construct_are_clean_errors_everywhere_a_value_is_read(tagged, tmp_path):
    """`--param`, a `--spec` file and runtime values: a tag PyYAML cannot construct raises KeyError/ValueError,
    not YAMLError — each is one error naming the input (found by the CLI fuzzer)."""
    from kedro_vertex_ci.errors import ConfigError
    from kedro_vertex_ci.local.specgraph import parse_spec_text
    from kedro_vertex_ci.params import _read_value, _runtime_value

    with pytest.raises(ConfigError, match="--param"):
        _read_value("start", tagged)
    with pytest.raises(ConfigError, match="spec.yaml"):
        parse_spec_text(f"root: {tagged}\n", "spec.yaml")
    assert _runtime_value(tagged) == tagged
