#!/usr/bin/env bash
# Wheels for building the action image offline (no Docker Hub, no index inside `docker build`): every
# wheel kedro-vertex-ci needs, built once from the registry pip is set up for, kept outside the repo and
# reused while pyproject.toml is unchanged. Prints the wheelhouse folder.
#   bash scripts/action-wheelhouse.sh     # -> /var/tmp/kvc-wheels/<hash of pyproject.toml and this script>
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
KEY=$(cat "$REPO/pyproject.toml" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)
DIR=${KVC_WHEELHOUSE:-/var/tmp/kvc-wheels}/$KEY
if [[ ! -f $DIR/.complete ]]; then
  rm -rf "$DIR" && mkdir -p "$DIR"
  # Dependencies and the build backend (the package itself is installed from the build context):
  # `pip wheel .` builds ours too, removed afterwards so a stale copy can never shadow the sources.
  "$PYTHON" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$DIR" "$REPO" \
    "setuptools>=68" wheel >"$DIR.log" 2>&1 ||
    { cat "$DIR.log" >&2; exit 1; }
  rm -f "$DIR"/kedro_vertex_ci-*.whl
  touch "$DIR/.complete"
fi
echo "$DIR"
