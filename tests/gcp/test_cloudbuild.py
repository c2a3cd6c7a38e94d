"""Cloud Build and the build context: ignore rules, the build body, the LRO against the fake, uploads."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from kedro_vertex_ci.errors import CloudError
from kedro_vertex_ci.gcp.cloudbuild import (
    BuildSettings,
    CloudBuild,
    build_body,
    image_repository,
    pushed_digest,
)
from kedro_vertex_ci.gcp.retry import RetryPolicy
from kedro_vertex_ci.gcp.source import collect_files, make_tarball
from kedro_vertex_ci.gcp.storage import Storage, default_staging_bucket

from .conftest import PROJECT, REGION

FAST = RetryPolicy(attempts=4, base_delay=0.0)
REPO = "europe-docker.pkg.dev/demo-project/kvc/demo"


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


BASE = {
    "Dockerfile": "FROM python:3.11\n", "src/pkg/nodes.py": "x = 1\n", "src/pkg/__pycache__/n.cpython-311.pyc": "b",
    ".git/HEAD": "ref", "gha-creds-abcdef.json": "{}", "data/01_raw/a.csv": "1", "data/08_reporting/r.png": "p",
    "conf/base/catalog.yml": "{}", "conf/local/credentials.yml": "s: 1",
    "keys/deployer.json": json.dumps({"type": "service_account", "private_key": "-----BEGIN"}),
    "conf/base/schema.json": json.dumps({"type": "object"}), ".env": "TOKEN=x", ".venv/bin/python": "",
}


def test_defaults_without_ignore_files(tmp_path):
    files = collect_files(_tree(tmp_path, BASE))
    assert files == ["Dockerfile", "conf/base/catalog.yml", "conf/base/schema.json", "data/01_raw/a.csv",
                     "src/pkg/nodes.py"]


def test_gcloudignore_gitignore_semantics_with_include_and_negation(tmp_path):
    _tree(tmp_path, {**BASE, ".gitignore": "*.log\n", "notes/a.md": "", "deep/x/trace.log": "",
                     "keep.log": "", "docs/build/index.html": "", "tools/build": "a file named build",
                     ".gcloudignore": "#!include:.gitignore\n!keep.log\nnotes/\nbuild/\n",
                     ".kedro-vertex-ci/pip-cache/wheels/x.whl": "w"})
    files = collect_files(tmp_path)
    assert "deep/x/trace.log" not in files and "keep.log" in files
    assert "notes/a.md" not in files and "docs/build/index.html" not in files
    assert "tools/build" in files  # `build/` names folders only
    assert ".git/HEAD" not in files and "gha-creds-abcdef.json" not in files  # whatever the file says
    assert not any(f.startswith(".kedro-vertex-ci/") for f in files)  # the action's pip cache, specs
    assert "src/pkg/__pycache__/n.cpython-311.pyc" in files  # defaults apply only without ignore files


def test_dockerignore_patterns_are_anchored_at_the_root(tmp_path):
    _tree(tmp_path, {**BASE, "docs/a.md": "", "sub/docs/b.md": "", "x/y/z.tmp": "", "README.md": "",
                     ".dockerignore": "docs\n**/*.tmp\n*.md\n!README.md\n"})
    files = collect_files(tmp_path)
    assert "docs/a.md" not in files and "sub/docs/b.md" in files
    assert "x/y/z.tmp" not in files and "README.md" in files
    assert "keys/deployer.json" not in files and ".env" not in files


def test_tarball_is_deterministic_and_complete(tmp_path):
    _tree(tmp_path, BASE)
    files = collect_files(tmp_path)
    first, second = make_tarball(tmp_path, files), make_tarball(tmp_path, files)
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as tar:
        assert tar.getnames() == files
        assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())


def test_build_body_cache_tags_and_logging():
    settings = BuildSettings(repository=REPO, commit="abc", bucket="b", source_object="s.tgz", branch="dev/x",
                             machine_type="E2_HIGHCPU_8", timeout_seconds=900)
    body = build_body(settings)
    assert body["images"] == [f"{REPO}:abc", f"{REPO}:dev-x"]
    assert [s["args"] for s in body["steps"][:-1]] == [["pull", f"{REPO}:dev-x"], ["pull", f"{REPO}:main"],
                                                       ["pull", f"{REPO}:latest"]]
    assert all(s["allowFailure"] for s in body["steps"][:-1])
    assert body["options"] == {"machineType": "E2_HIGHCPU_8"} and "serviceAccount" not in body
    assert body["timeout"] == "900s"
    with_sa = build_body(BuildSettings(repository=REPO, commit="abc", bucket="b", source_object="s.tgz",
                                       service_account="b@p.iam.gserviceaccount.com", project="p"))
    assert with_sa["options"]["logging"] == "CLOUD_LOGGING_ONLY"
    assert with_sa["serviceAccount"] == "projects/p/serviceAccounts/b@p.iam.gserviceaccount.com"
    assert image_repository(f"{REPO}:v1") == REPO and image_repository(f"{REPO}@sha256:00") == REPO
    assert image_repository("localhost:5000/img") == "localhost:5000/img"


@pytest.fixture
def settings():
    return BuildSettings(repository=REPO, commit="abc", bucket="b", source_object="s.tgz",
                         service_account="builder@demo-project.iam.gserviceaccount.com", project=PROJECT)


@pytest.mark.parametrize("region", [REGION, None])
def test_build_lro_reports_id_log_url_and_digest(fake, credentials, endpoints, settings, region):
    client = CloudBuild(PROJECT, credentials, endpoints, region=region, policy=FAST, sleep=lambda _s: None)
    started = client.start(build_body(settings))
    assert started.build_id in fake.builds and started.log_url.startswith("https://console.cloud.google.com/")
    seen: list[str] = []
    finished = client.wait(started, on_update=seen.append, poll_seconds=0)
    assert seen[-1] == "SUCCESS" and "WORKING" in seen
    assert pushed_digest(finished, settings.image).startswith("sha256:")
    expected = f"/v1/projects/{PROJECT}/locations/{REGION}/builds" if region else f"/v1/projects/{PROJECT}/builds"
    create, = fake.calls("POST", "builds$")
    assert create.path == expected and create.bearer == credentials.token


def test_build_poll_survives_transient_errors(fake, credentials, endpoints, settings):
    client = CloudBuild(PROJECT, credentials, endpoints, region=REGION, policy=FAST, sleep=lambda _s: None)
    fake.inject("POST", "builds$", status=503)
    started = client.start(build_body(settings))
    fake.inject("GET", "operations", status=500)
    fake.inject("GET", "operations", drop=True)
    assert client.wait(started, poll_seconds=0)["status"] == "SUCCESS"


def test_failed_build_names_its_logs(fake, credentials, endpoints, settings):
    fake.build_status = "FAILURE"
    client = CloudBuild(PROJECT, credentials, endpoints, region=REGION, policy=FAST, sleep=lambda _s: None)
    started = client.start(build_body(settings))
    with pytest.raises(CloudError, match="failed") as err:
        client.wait(started, poll_seconds=0)
    assert started.log_url in str(err.value)


def test_build_permission_denied_hint(fake, credentials, endpoints, settings):
    fake.inject("POST", "builds$", status=403)
    client = CloudBuild(PROJECT, credentials, endpoints, region=REGION, policy=FAST, sleep=lambda _s: None)
    with pytest.raises(CloudError, match="roles/cloudbuild.builds.editor"):
        client.start(build_body(settings))


def test_default_staging_bucket_is_created_once_and_reused(credentials, endpoints, bucket):
    storage = Storage(PROJECT, credentials, endpoints, policy=FAST, sleep=lambda _s: None)
    name = default_staging_bucket(PROJECT)
    uri = storage.upload(name, "src/a.tgz", b"data", region=REGION, create_missing=True)
    assert uri == f"gs://{name}/src/a.tgz"
    assert storage.upload(name, "src/b.tgz", b"more", region=REGION, create_missing=True).endswith("b.tgz")
    assert bucket.client.bucket(name).blob("src/a.tgz").download_as_bytes() == b"data"
