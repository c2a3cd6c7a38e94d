#!/usr/bin/env bash
# Publish the action: build the image once, push it to GHCR under every version tag, and write the
# published action.yml that points at the image by digest, so users' jobs pull a prebuilt, immutable image
# instead of building the Dockerfile on every run.
#
#   scripts/release-action-image.sh 1.4.2 [ghcr.io/ORG/kedro-vertex-action] [OUT_DIR]
#
# Tags pushed: v1, v1.4, v1.4.2 and sha-<commit>. OUT_DIR (default dist/action) receives action.yml with
# `image: docker://REPO@sha256:...` (scripts/stamp-action.sh), plus the Action repository's README.md,
# LICENSE and CHANGELOG.md: commit that folder to getindata/kedro-vertex-action, tag it v1.4.2 and move v1
# to it (`init --github` resolves v1 to that commit). The tag-triggered .github/workflows/release.yml does
# all of this; this script is the manual path. Needs: docker with push access (docker login ghcr.io), git.
set -euo pipefail

VERSION=${1:?usage: release-action-image.sh X.Y.Z [IMAGE_REPOSITORY] [OUT_DIR]}
REPOSITORY=${2:-ghcr.io/getindata/kedro-vertex-action}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
OUT=${3:-$ROOT/dist/action}

[[ $VERSION =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || { echo "version must be X.Y.Z, got $VERSION" >&2; exit 2; }
MAJOR=${BASH_REMATCH[1]} MINOR=${BASH_REMATCH[2]}
COMMIT=$(git -C "$ROOT" rev-parse HEAD)
[[ -z $(git -C "$ROOT" status --porcelain -- action kedro_vertex_ci Dockerfile pyproject.toml) ]] ||
  { echo "uncommitted changes in the action's sources: release from a clean commit" >&2; exit 2; }

TAGS=("v$MAJOR" "v$MAJOR.$MINOR" "v$VERSION" "sha-${COMMIT:0:12}")
ARGS=()
for tag in "${TAGS[@]}"; do ARGS+=(--tag "$REPOSITORY:$tag"); done

docker build "${ARGS[@]}" \
  --label "org.opencontainers.image.version=$VERSION" \
  --label "org.opencontainers.image.revision=$COMMIT" \
  --label "org.opencontainers.image.source=https://github.com/${REPOSITORY#ghcr.io/}" \
  "$ROOT"
for tag in "${TAGS[@]}"; do docker push --quiet "$REPOSITORY:$tag" >/dev/null; done

# The registry's digest of what was pushed (identical for every tag): the one immutable reference.
DIGEST=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$REPOSITORY:v$VERSION" |
  grep -m1 "^$REPOSITORY@sha256:" | cut -d@ -f2)
[[ $DIGEST == sha256:* ]] || { echo "could not read the pushed digest of $REPOSITORY:v$VERSION" >&2; exit 1; }

mkdir -p "$OUT"
bash "$ROOT/scripts/stamp-action.sh" "$ROOT/action.yml" "$OUT/action.yml" "$REPOSITORY" "$DIGEST" "$VERSION"
cp "$ROOT/action-repository/README.md" "$ROOT/LICENSE" "$ROOT/CHANGELOG.md" "$OUT/"
echo "published $REPOSITORY@$DIGEST as ${TAGS[*]}"
echo "wrote $OUT/action.yml (runs.image pinned by digest)"
