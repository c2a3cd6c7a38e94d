#!/usr/bin/env bash
# Create bench/.venv-kvai with kedro-vertexai 1.0.0 (the tool we compare against) and
# bench/.venv-plain with Kedro alone (the "without our plugin" side of the CLI measure).
# Idempotent: a venv whose marker file exists is left alone. Pins from issue 6: the unpinned
# resolution of kedro-vertexai backtracks for many minutes; these resolve in about 1.5 min.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
KVAI="$HERE/.venv-kvai"
PLAIN="$HERE/.venv-plain"

make_venv() {  # $1 = venv dir; remaining = pip requirements
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
    "google-cloud-aiplatform==1.110.0" \
    "pandas" "numpy"

KEDRO_VERSION="$("$KVAI/bin/python" -c 'import importlib.metadata as m; print(m.version("kedro"))')"
make_venv "$PLAIN" "kedro==$KEDRO_VERSION"
