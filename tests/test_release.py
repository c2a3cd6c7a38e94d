"""Release engineering, checked the way a release would exercise it, without publishing anything:
sdist + wheel built and accepted by `twine check`; action.yml stamped with a digest on a scratch copy; the
Action repository published to a local bare repository (release tag + major tag moved); the Action README
generated from action.yml; the workflows of this repository lint-clean; version and licence in one place."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from kedro_vertex_ci import __version__

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
DIGEST = "sha256:" + "ab" * 32


def run(*argv: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                          check=False)


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m build` (sdist, then the wheel built from that sdist) of this checkout."""
    out = tmp_path_factory.mktemp("dist")
    proc = run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.mark.slow
def test_distributions_build_and_pass_twine_check(dists: Path) -> None:
    files = sorted(p.name for p in dists.iterdir())
    assert files == [f"kedro_vertex_ci-{__version__}-py3-none-any.whl", f"kedro_vertex_ci-{__version__}.tar.gz"]
    proc = run(BIN / "twine", "check", "--strict", *sorted(dists.iterdir()))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with zipfile.ZipFile(next(dists.glob("*.whl"))) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(f"kedro_vertex_ci-{__version__}.dist-info/METADATA").decode()
    assert f"Version: {__version__}\n" in metadata  # pyproject reads the version from kedro_vertex_ci/__init__.py
    assert "kedro_vertex_ci/templates/github/gcp-setup.sh" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names)
    with tarfile.open(next(dists.glob("*.tar.gz"))) as sdist:
        assert f"kedro_vertex_ci-{__version__}/LICENSE" in sdist.getnames()


def test_version_is_written_in_one_place() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r"^version\s*=\s*\"", pyproject, re.MULTILINE) is None  # no literal version
    assert 'dynamic = ["version"]' in pyproject and 'attr = "kedro_vertex_ci.__version__"' in pyproject
    assert f"## [{__version__}]" in (ROOT / "CHANGELOG.md").read_text()


def test_license_is_the_apache_2_text() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text) > 10_000
    assert 'license = { text = "Apache-2.0" }' in (ROOT / "pyproject.toml").read_text()


def test_stamp_dry_run_on_a_scratch_copy(tmp_path: Path) -> None:
    scratch = tmp_path / "action.yml"
    scratch.write_text((ROOT / "action.yml").read_text())
    out = tmp_path / "stamped.yml"
    proc = run("bash", ROOT / "scripts" / "stamp-action.sh", scratch, out, "ghcr.io/getindata/kedro-vertex-action",
               DIGEST, "1.4.2")
    assert proc.returncode == 0, proc.stderr
    stamped = yaml.safe_load(out.read_text())
    assert stamped["runs"] == {"using": "docker", "image": f"docker://ghcr.io/getindata/kedro-vertex-action@{DIGEST}"}
    original = yaml.safe_load((ROOT / "action.yml").read_text())
    assert {k: v for k, v in stamped.items() if k != "runs"} == {k: v for k, v in original.items() if k != "runs"}
    assert scratch.read_text() == (ROOT / "action.yml").read_text()  # the source is never touched


@pytest.mark.parametrize(
    ("digest", "version", "message"),
    [("sha256:abc", "1.4.2", "digest must be"), (DIGEST, "v1.4", "version must be X.Y.Z")],
)
def test_stamp_refuses_bad_arguments_and_writes_nothing(tmp_path: Path, digest: str, version: str, message: str) -> None:
    out = tmp_path / "stamped.yml"
    proc = run("bash", ROOT / "scripts" / "stamp-action.sh", ROOT / "action.yml", out,
               "ghcr.io/getindata/kedro-vertex-action", digest, version)
    assert proc.returncode == 2 and message in proc.stderr and not out.exists()


def test_stamp_refuses_an_already_stamped_file(tmp_path: Path) -> None:
    once = tmp_path / "once.yml"
    args = ["ghcr.io/getindata/kedro-vertex-action", DIGEST, "1.4.2"]
    assert run("bash", ROOT / "scripts" / "stamp-action.sh", ROOT / "action.yml", once, *args).returncode == 0
    proc = run("bash", ROOT / "scripts" / "stamp-action.sh", once, tmp_path / "twice.yml", *args)
    assert proc.returncode == 1 and "found 0" in proc.stderr


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_publish_tags_the_release_and_moves_the_major_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    remote = tmp_path / "kedro-vertex-action.git"
    _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    env = {**__import__("os").environ, "ACTION_REPOSITORY_URL": str(remote), "ACTION_REPOSITORY_TOKEN": "unused"}
    releases = {}
    for version in ("1.0.0", "1.1.0"):
        release = tmp_path / f"release-{version}"
        release.mkdir()
        assert run("bash", ROOT / "scripts" / "stamp-action.sh", ROOT / "action.yml", release / "action.yml",
                   "ghcr.io/getindata/kedro-vertex-action", DIGEST, version).returncode == 0
        for name in ("LICENSE", "CHANGELOG.md"):
            (release / name).write_text((ROOT / name).read_text())
        (release / "README.md").write_text((ROOT / "action-repository" / "README.md").read_text())
        proc = run("bash", ROOT / "scripts" / "publish-action-repository.sh", release, version, env=env)
        assert proc.returncode == 0, proc.stderr
        releases[version] = _git(remote, "rev-parse", f"v{version}^{{commit}}")
    assert _git(remote, "rev-parse", "v1^{commit}") == releases["1.1.0"] != releases["1.0.0"]
    assert "docker://ghcr.io/getindata/kedro-vertex-action@" in _git(remote, "show", "v1:action.yml")
    again = run("bash", ROOT / "scripts" / "publish-action-repository.sh", tmp_path / "release-1.0.0", "1.0.0", env=env)
    assert again.returncode == 1 and "never rewritten" in again.stderr
    unstamped = tmp_path / "unstamped"
    unstamped.mkdir()
    for name in ("action.yml", "LICENSE", "CHANGELOG.md"):
        (unstamped / name).write_text((ROOT / name).read_text())
    (unstamped / "README.md").write_text("x")
    refused = run("bash", ROOT / "scripts" / "publish-action-repository.sh", unstamped, "1.2.0", env=env)
    assert refused.returncode == 1 and "not stamped" in refused.stderr


def test_action_repository_readme_is_generated_from_action_yml() -> None:
    proc = run(sys.executable, ROOT / "scripts" / "action_readme.py")
    assert proc.returncode == 0, proc.stderr
    committed = (ROOT / "action-repository" / "README.md").read_text()
    assert committed == proc.stdout, "stale: python scripts/action_readme.py > action-repository/README.md"
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    sections = [line for line in committed.splitlines() if line.startswith("## ")]
    assert sections[:3] == ["## Usage", "## Inputs", "## Outputs"]  # leads with usage, then inputs and outputs
    for name in [*action["inputs"], *action["outputs"]]:
        assert f"| `{name}` |" in committed
    assert "uses: getindata/kedro-vertex-action@v1" in committed


def test_release_and_ci_workflows_exist_with_least_privilege() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"ci.yml", "release.yml"} <= names
    ci = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    assert "pull_request" in ci[True] and ci["permissions"] == {"contents": "read"}
    assert any("make test" in step.get("run", "") for step in ci["jobs"]["test"]["steps"])
    release = yaml.safe_load((ROOT / ".github/workflows/release.yml").read_text())
    assert release[True] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}} and release["permissions"] == {}
    assert release["jobs"]["pypi"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert release["jobs"]["action"]["needs"] == "pypi"
    text = (ROOT / ".github/workflows/release.yml").read_text()
    for expected in ("python -m build", "twine check", "pypa/gh-action-pypi-publish@", "--provenance=mode=max",
                     "scripts/stamp-action.sh", "scripts/publish-action-repository.sh"):
        assert expected in text, expected


def test_zizmor_and_actionlint_find_nothing_in_our_workflows() -> None:
    zizmor = run(BIN / "zizmor", "--offline", "--no-progress", *WORKFLOWS)
    assert zizmor.returncode == 0 and "No findings to report" in zizmor.stdout, zizmor.stdout + zizmor.stderr
    lint = run("bash", ROOT / "scripts" / "actionlint.sh", *WORKFLOWS)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout.count("passed lint checks") == len(WORKFLOWS)  # every file was checked, not only the first


def test_actionlint_script_checks_every_file_it_is_given(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.nope }}\n")
    proc = run("bash", ROOT / "scripts" / "actionlint.sh", WORKFLOWS[0], bad)
    assert proc.returncode == 1 and "matrix.nope" not in proc.stdout.split("bad.yml")[0]
    assert '"nope" is not defined' in proc.stdout


def test_shell_scripts_are_shellcheck_clean() -> None:
    scripts = [ROOT / "scripts" / name for name in ("stamp-action.sh", "publish-action-repository.sh",
                                                    "release-action-image.sh", "actionlint.sh")]
    proc = run(BIN / "shellcheck", *scripts)
    assert proc.returncode == 0, proc.stdout
