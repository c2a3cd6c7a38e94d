#!/usr/bin/env bash
# Create the benchmark's side-by-side environments, all with the same Kedro version:
#   bench/.venv-kvai   kedro-vertexai 1.0.0 (the tool we compare against), from PyPI
#   bench/.venv-plain  Kedro alone: the floor for step start and `kedro --help`
#   bench/.venv-kvc    Kedro + this checkout of kedro-vertex-ci (editable) and its dependencies only, so
#                      our numbers are not inflated by unrelated plugins of the dev .venv (kedro-mlflow's
#                      hooks import mlflow at every Kedro start)
# Idempotent: a venv whose .installed marker exists is left alone (delete the folder to rebuild it).
# Pins from issue 6: kedro-vertexai's unpinned resolution backtracks for many minutes; these resolve fast.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
PYTHON="${PYTHON:-python3}"
KVAI="$HERE/.venv-kvai"
PLAIN="$HERE/.venv-plain"
KVC="$HERE/.venv-kvc"

make_venv() {  # $1 = venv dir; remaining = pip arguments
    local dir="$1"; shift
    if [[ -f "$dir/.installed" ]]; then
        echo "setup_baseline: $dir already installed"
        return 0
    fi
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    "$dir/bin/python" -m pip install -q -U pip
    "$dir/bin/python" -m pip install -q "$@"
    touch "$dir/.installed"
    echo "setup_baseline: installed $dir"
}

make_venv "$KVAI" \
    "kedro-vertexai==1.0.0" \
    "protobuf==4.25.8" "kfp==2.8.0" "grpcio-status==1.62.3" "mlflow==2.22.1" \
    "google-cloud-aiplatform==1.110.0"

KEDRO_VERSION="$("$KVAI/bin/python" -c 'import importlib.metadata as m; print(m.version("kedro"))')"
make_venv "$PLAIN" "kedro==$KEDRO_VERSION"

# Resolve our dependencies to the versions the dev .venv already has (no backtracking, mostly cached).
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
if [[ -x "$REPO/.venv/bin/python" ]]; then
    "$REPO/.venv/bin/python" -m pip freeze --exclude-editable 2>/dev/null \
        | grep -v -i -E '^(kedro|spaceflights[-_]lite)==' > "$CONSTRAINTS" || true
fi
# The bundled example (for the dry-run measure) brings kedro-datasets, pandas, scikit-learn.
EXTRA=()
for example in "$REPO"/examples/*/; do
    [[ -f "$example/pyproject.toml" ]] && EXTRA+=(-e "$example")
done
# An editable install bakes the console-script targets of pyproject.toml into bin/: reinstall when the
# project files change, so the bench never runs a stale entry point.
STAMP="$(cat "$REPO/pyproject.toml" "$REPO"/examples/*/pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)"
if [[ -f "$KVC/.installed" && "$(cat "$KVC/.installed")" != "$STAMP" ]]; then
    echo "setup_baseline: pyproject.toml changed, refreshing $KVC"
    "$KVC/bin/python" -m pip install -q -c "$CONSTRAINTS" "kedro==$KEDRO_VERSION" -e "$REPO" "${EXTRA[@]}"
    echo "$STAMP" > "$KVC/.installed"
fi
make_venv "$KVC" -c "$CONSTRAINTS" "kedro==$KEDRO_VERSION" -e "$REPO" "${EXTRA[@]}" pandas numpy scikit-learn
echo "$STAMP" > "$KVC/.installed"
