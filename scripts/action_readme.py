"""Write the README of the Action repository (getindata/kedro-vertex-action) from action.yml.

    python scripts/action_readme.py > action-repository/README.md

Usage first, then inputs and outputs exactly as action.yml declares them; tests/test_release.py fails when
the committed README is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kedro_vertex_ci.scaffold.pins import ACTION_MAJOR, ACTION_REPOSITORY  # noqa: E402

USAGE = """\
```yaml
permissions:
  contents: read
jobs:
  vertex:
    runs-on: ubuntu-latest
    permissions:
      contents: read
      id-token: write       # Workload Identity Federation: no JSON key anywhere
      pull-requests: write  # the one sticky PR comment
    steps:
      - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0
        with:
          persist-credentials: false
      - uses: {repository}@{major}
        with:
          workload-identity-provider: ${{{{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}}}
          service-account: ${{{{ vars.GCP_SERVICE_ACCOUNT }}}}
```
"""


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render(action: dict) -> str:
    lines = [
        f"# {action['name']}",
        "",
        _cell(action["description"]),
        "",
        "## Usage",
        "",
        USAGE.format(repository=ACTION_REPOSITORY, major=ACTION_MAJOR).rstrip("\n"),
        "",
        "In a Kedro project, `pip install kedro-vertex-ci && kedro-vertex-ci init PROJECT_ID REGION --github` "
        f"writes this workflow with `{ACTION_REPOSITORY}` pinned to the release commit "
        f"(`@<sha> # {ACTION_MAJOR}.x.y`), a Dockerfile, dependabot.yml and `gcp-setup.sh`, the one-time Google "
        "Cloud setup (service accounts, Workload Identity Federation bound to your repository).",
        "",
        "## Inputs",
        "",
        "| Input | Required | Default | Description |",
        "|---|---|---|---|",
    ]
    for name, spec in action["inputs"].items():
        default = spec.get("default", "")
        shown = f"`{_cell(default)}`" if str(default) != "" else ""
        lines.append(f"| `{name}` | {'yes' if spec.get('required') else 'no'} | {shown} | "
                     f"{_cell(spec['description'])} |")
    lines += ["", "## Outputs", "", "| Output | Description |", "|---|---|"]
    for name, spec in action["outputs"].items():
        lines.append(f"| `{name}` | {_cell(spec['description'])} |")
    lines += [
        "",
        "## More",
        "",
        "Documentation, troubleshooting and the source: https://github.com/getindata/kedro-vertex-ci "
        "(docs/action.md, docs/quickstart-gcp.md, docs/troubleshooting.md). This repository holds only the "
        "released `action.yml`, which runs a prebuilt image pinned by digest.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    sys.stdout.write(render(action))


if __name__ == "__main__":
    main()
