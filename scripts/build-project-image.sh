#!/usr/bin/env bash
# Build a Kedro project's image offline: build-project-image.sh PROJECT_DIR IMAGE_TAG
#
# Why this shape: the engine from scripts/docker-engine.sh has no network (no Docker Hub, no bridge), so the
# image starts FROM kvc-base:bookworm and every Python package arrives as a wheel built on this host (its
# Python is 3.11 like Debian bookworm's, so cp311 wheels fit). The wheels of the dependency set are cached
# under $KVC_DOCKER_DIR/wheels/<hash of the requirement set>, kedro-vertex-ci's own wheel under
# .../kvc/<hash of its sources>: a rebuild after a code change only rebuilds the small top layers.
#
# The image: /opt/venv with the project's requirements and kedro-vertex-ci's step runtime (the slim install the
# scaffolded Dockerfile makes: kedro-vertex-ci with --no-deps plus kedro_vertex_ci/runtime/requirements.txt;
# KVC_INSTALL=full installs all of kedro-vertex-ci's dependencies instead), the project copied to
# /project (WORKDIR; Kedro adds src/ to sys.path itself), telemetry off. Built by BuildKit (the docker.io
# client's, DOCKER_BUILDKIT=1) with `--network none`; the wheels are bind-mounted, so they never enter a layer.
# Prints the tag on stdout; progress and the build log tail on failure on stderr.
#
# KVC_DOCKER_DIR   engine folder (default /var/tmp/kvc-docker); DOCKER_HOST defaults to its socket
# KVC_DOCKER_CLIENT the docker client with built-in BuildKit (default /usr/bin/docker, from docker.io)
# KVC_HOST_PYTHON  the Python 3.11 whose venv builds wheels (default /usr/bin/python3, Debian's, as in the image)
# KVC_INSTALL      runtime (default: what steps import), full (every dependency of kedro-vertex-ci) or none
#                  (none of them: the yardstick for the runtime's own footprint, bench measure 4)
set -euo pipefail
shopt -s inherit_errexit

readonly BASE_IMAGE=kvc-base:bookworm
readonly IMAGE_PYTHON=3.11 # Debian bookworm's python3
readonly RECIPE=2          # bump when the wheel set or Dockerfile recipe changes
readonly INSTALL=${KVC_INSTALL:-runtime}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
DIR=${KVC_DOCKER_DIR:-/var/tmp/kvc-docker}
readonly REPO DIR
export DOCKER_HOST=${KVC_DOCKER_HOST:-unix://$DIR/docker.sock} DOCKER_BUILDKIT=1
# The docker.io client: it has BuildKit built in (the newer client on PATH may lack the buildx plugin).
DOCKER=${KVC_DOCKER_CLIENT:-/usr/bin/docker}
export PIP_DISABLE_PIP_VERSION_CHECK=1 KEDRO_DISABLE_TELEMETRY=true DO_NOT_TRACK=1

log() { printf 'build-project-image: [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

(($# == 2)) || {
  echo "usage: $0 PROJECT_DIR IMAGE_TAG" >&2
  exit 2
}
PROJECT=$(cd "$1" 2>/dev/null && pwd -P) || die "no such project folder: $1"
TAG=$2
readonly PROJECT TAG
if ! grep -qs '^\[tool.kedro\]' "$PROJECT/pyproject.toml"; then
  die "$PROJECT/pyproject.toml has no [tool.kedro] table: not a Kedro project"
fi

host_python() {
  # A venv of the host's Debian python3 (the very Python the image has, so Requires-Python resolves alike),
  # or KVC_HOST_PYTHON. The venv lives in the engine folder, next to the wheel cache; created once, locked.
  local base=${KVC_HOST_PYTHON:-/usr/bin/python3} version
  version=$("$base" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || die "cannot run $base"
  [[ $version == "$IMAGE_PYTHON" ]] ||
    die "$base is Python $version; wheels must be built by Python $IMAGE_PYTHON (the image's). Set KVC_HOST_PYTHON"
  mkdir -p "$DIR"
  locked "$DIR/hostvenv.lock" make_host_venv "$base" "$DIR/hostvenv" >&2
  echo "$DIR/hostvenv/bin/python"
}

make_host_venv() {
  local base=$1 venv=$2
  if [[ ! -f $venv/.ready || $(readlink -f "$venv/bin/python") != $(readlink -f "$base") ]]; then
    rm -rf "$venv"
    "$base" -m venv "$venv" || die "cannot create a venv with $base (apt-get install python3-venv)"
    # Build tools in the venv itself: our wheel then builds without an isolated env (seconds, not ten).
    "$venv/bin/python" -m pip install -q 'setuptools>=68' wheel >"$venv.log" 2>&1 ||
      die "pip install setuptools wheel into $venv failed; see $venv.log"
    touch "$venv/.ready"
  fi
}

pip_quietly() {
  # pip with its chatter in a log file (first argument); the tail is shown when it fails.
  local logfile=$1
  shift
  "$PY" -m pip "$@" >"$logfile" 2>&1 || {
    tail -n 20 "$logfile" >&2
    return 1
  }
}

locked() {
  # Run the rest of the arguments holding an exclusive lock on the file named first (waits up to 15 min).
  local lockfile=$1
  shift
  (
    flock -w 900 7 || die "timed out waiting for $lockfile"
    "$@"
  ) 7>"$lockfile"
}

tree_hash() {
  # Content hash of the given files/folders (paths relative to the first argument), caches ignored.
  local root=$1
  shift
  (cd "$root" && find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z |
    xargs -0 sha256sum) | sha256sum | cut -c1-16
}

project_requirements() {
  # The project's requirements: requirements.txt (Kedro's convention), else [project].dependencies.
  "$PY" - "$PROJECT" <<'EOF'
import pathlib, sys, tomllib
root = pathlib.Path(sys.argv[1])
req = root / "requirements.txt"
if req.is_file():
    lines = [line.split(" #")[0].strip() for line in req.read_text().splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
else:
    lines = tomllib.loads((root / "pyproject.toml").read_text()).get("project", {}).get("dependencies", [])
print("\n".join(sorted(set(lines))))
EOF
}

prune_old() {
  # Keep the three newest entries of a cache folder.
  local folder=$1
  find "$folder" -mindepth 1 -maxdepth 1 -type d ! -name '*.tmp*' -printf '%T@ %p\n' | sort -rn | tail -n +4 |
    cut -d' ' -f2- | while read -r old; do rm -rf "$old" "$old.lock" "$old.pip.log"; done
}

kvc_wheel() {
  # kedro-vertex-ci's own wheel, rebuilt only when its sources change.
  local key out
  key=$(tree_hash "$REPO" pyproject.toml README.md kedro_vertex_ci)
  out=$DIR/wheels/kvc/$key
  locked "$out.lock" build_kvc_wheel "$out" >&2
  compgen -G "$out/kedro_vertex_ci-*.whl" | head -n 1
}

build_kvc_wheel() {
  local out=$1 src
  if ! compgen -G "$out/kedro_vertex_ci-*.whl" >/dev/null; then
    log "building the kedro-vertex-ci wheel ($(basename "$out"))"
    src=$(mktemp -d "$DIR/wheels/kvc/src.tmp.XXXX")
    # Build from a copy: an in-tree build would leave build/ and egg-info in the repository.
    tar -C "$REPO" -c --exclude=__pycache__ --exclude='*.pyc' pyproject.toml README.md kedro_vertex_ci | tar -C "$src" -x
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    pip_quietly "$out.pip.log" wheel --no-deps --no-build-isolation -w "$out.tmp" "$src" || die "pip wheel of kedro-vertex-ci failed"
    rm -rf "$src" "$out" && mv "$out.tmp" "$out"
    prune_old "$DIR/wheels/kvc"
  fi
}

kvc_requirements() {
  # What kedro-vertex-ci adds to the image: the step runtime's list shipped in its wheel, or all its dependencies.
  local kvc=$1
  if [[ $INSTALL == none ]]; then
    return 0
  elif [[ $INSTALL == full ]]; then
    "$PY" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); n = [x for x in z.namelist() if x.endswith(".dist-info/METADATA")][0]; print("\n".join(l.split(":", 1)[1].strip() for l in z.read(n).decode().splitlines() if l.startswith("Requires-Dist:") and "extra ==" not in l))' "$kvc"
  else
    "$PY" -c 'import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).read("kedro_vertex_ci/runtime/requirements.txt").decode())' "$kvc" |
      sed -e 's/#.*//' -e '/^[[:space:]]*$/d'
  fi
}

dependency_wheels() {
  # Wheels of everything the project and kedro-vertex-ci's part need, keyed by the requirement set.
  local kvc=$1 reqs key out
  [[ $INSTALL =~ ^(runtime|full|none)$ ]] || die "KVC_INSTALL=$INSTALL: use runtime, full or none"
  reqs=$( (project_requirements; kvc_requirements "$kvc") | sort -u)
  key=$({
    echo "recipe=$RECIPE python=$("$PY" -c 'import sys, sysconfig; print(sys.version, sysconfig.get_platform())')"
    echo "$reqs"
  } | sha256sum | cut -c1-16)
  out=$DIR/wheels/deps/$key
  locked "$out.lock" build_dependency_wheels "$out" "$reqs" >&2
  echo "$out"
}

build_dependency_wheels() {
  local out=$1 reqs=$2
  if [[ ! -f $out/.complete ]]; then
    log "building dependency wheels ($(basename "$out")): the project's requirements + kedro-vertex-ci's ($INSTALL, once)"
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    printf '%s\n' "$reqs" >"$out.tmp/requirements.txt"
    pip_quietly "$out.pip.log" wheel -w "$out.tmp" -r "$out.tmp/requirements.txt" ||
      die "pip wheel of the requirement set failed"
    rm -f "$out.tmp"/kedro_vertex_ci-*.whl "$out.tmp/requirements.txt"
    touch "$out.tmp/.complete"
    rm -rf "$out" && mv "$out.tmp" "$out"
    prune_old "$DIR/wheels/deps"
  fi
}

write_context() {
  local ctx=$1 deps=$2 kvc=$3
  rm -rf "$ctx" && mkdir -p "$ctx/deps" "$ctx/kvc" "$ctx/project"
  cp -l "$deps"/*.whl "$ctx/deps/" 2>/dev/null || cp "$deps"/*.whl "$ctx/deps/"
  cp -p "$kvc" "$ctx/kvc/"
  # The project without caches, virtualenvs, local run folders, build output, local secrets (conf/local) or
  # data files (as kedro-docker's .dockerignore: data lives in the bucket; run-local mounts data/). The data/
  # folder tree itself is kept.
  tar -C "$PROJECT" -c --exclude=./.git --exclude=./.venv --exclude=./venv --exclude=__pycache__ --exclude='*.pyc' \
    --exclude=./.kedro-vertex-ci --exclude=./build --exclude=./dist --exclude='*.egg-info' --exclude=.pytest_cache \
    --exclude=.ruff_cache --exclude=.mypy_cache --exclude=.ipynb_checkpoints --exclude=mlruns \
    --exclude='./conf/local/*' --exclude=./data . | tar -C "$ctx/project" -x
  if [[ -d $PROJECT/data ]]; then
    (cd "$PROJECT" && find data -type d -print0) | (cd "$ctx/project" && xargs -0 mkdir -p)
  fi
  cat >"$ctx/Dockerfile" <<EOF
# Written by scripts/build-project-image.sh: the project + kedro-vertex-ci, installed offline from wheels.
# BuildKit bind mounts keep the wheels out of the image; bytecode is compiled once, in parallel, so steps
# start fast. No syntax line: that would fetch a frontend image from Docker Hub.
FROM $BASE_IMAGE
ENV VIRTUAL_ENV=/opt/venv \\
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    KEDRO_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 PYTHONUNBUFFERED=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN --mount=type=bind,source=deps,target=/wheels \\
    python3 -m venv /opt/venv \\
 && pip install --no-index --no-deps --no-compile /wheels/*.whl \\
 && { python3 -m compileall -q -j 0 /opt/venv/lib >/dev/null || true; } \\
 && pip check
# kedro-vertex-ci itself without its dependencies: the layer above holds what its step runtime imports.
RUN --mount=type=bind,source=kvc,target=/kvc pip install --no-index --no-deps /kvc/*.whl
COPY project/ /project/
WORKDIR /project
CMD ["kedro", "run"]
EOF
}

main() {
  PY=$(host_python)
  readonly PY
  timeout 10 docker info >/dev/null 2>&1 ||
    die "no Docker engine answers on $DOCKER_HOST; start one: bash $REPO/scripts/docker-engine.sh up"
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 ||
    die "$BASE_IMAGE is missing; build it: bash $REPO/scripts/docker-engine.sh up"
  mkdir -p "$DIR/wheels/kvc" "$DIR/wheels/deps" "$DIR/contexts"
  local slug=${TAG//[^A-Za-z0-9_.-]/-} started=$SECONDS
  exec 8>"$DIR/contexts/$slug.lock"
  flock -w 900 8 || die "another build of $TAG holds $DIR/contexts/$slug.lock"
  local kvc deps ctx=$DIR/contexts/$slug
  kvc=$(kvc_wheel)
  deps=$(dependency_wheels "$kvc")
  touch "$deps" # in use: the newest, so a concurrent build's pruning keeps it
  write_context "$ctx" "$deps" "$kvc"
  log "docker build --network none -t $TAG (context $ctx)"
  if ! "$DOCKER" build --network none --progress plain --label "org.kvc.project=$(basename "$PROJECT")" -t "$TAG" "$ctx" \
    >"$ctx.build.log" 2>&1; then
    tail -n 30 "$ctx.build.log" >&2
    die "docker build failed; full log: $ctx.build.log"
  fi
  # The previous build of this project, now untagged, only holds disk: drop it (never anyone else's images).
  docker image prune -f --filter dangling=true --filter "label=org.kvc.project=$(basename "$PROJECT")" >/dev/null
  log "$TAG built in $((SECONDS - started))s, $(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%d MB", $1/1e6}')"
  echo "$TAG"
}

main
