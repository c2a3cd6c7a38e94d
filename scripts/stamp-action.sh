#!/usr/bin/env bash
# Stamp a release into a copy of action.yml: `runs.image` becomes the published image pinned by digest, so
# users' jobs pull the prebuilt, immutable image instead of building the Dockerfile on every run.
#
#   scripts/stamp-action.sh ACTION_YML OUT_YML IMAGE_REPOSITORY DIGEST VERSION
#   e.g. scripts/stamp-action.sh action.yml dist/action/action.yml ghcr.io/getindata/kedro-vertex-action \
#          sha256:0123…(64 hex) 1.4.2
#
# Fails (and writes nothing) unless the input has exactly one `  image: Dockerfile` line and the arguments
# are well formed. The release workflow and scripts/release-action-image.sh call it; tests dry-run it.
set -euo pipefail

(($# == 5)) || {
  echo "usage: $0 ACTION_YML OUT_YML IMAGE_REPOSITORY DIGEST VERSION" >&2
  exit 2
}
readonly SOURCE=$1 OUT=$2 REPOSITORY=$3 DIGEST=$4 VERSION=$5

[[ $DIGEST =~ ^sha256:[0-9a-f]{64}$ ]] || {
  echo "digest must be sha256:<64 hex>, got $DIGEST" >&2
  exit 2
}
[[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || {
  echo "version must be X.Y.Z, got $VERSION" >&2
  exit 2
}
[[ $REPOSITORY =~ ^[a-z0-9.-]+(/[a-z0-9._-]+)+$ ]] || {
  echo "image repository must look like ghcr.io/OWNER/NAME, got $REPOSITORY" >&2
  exit 2
}
count=$(grep -c '^  image: Dockerfile$' "$SOURCE" || true)
[[ $count == 1 ]] || {
  echo "$SOURCE: expected exactly one '  image: Dockerfile' line under runs, found $count" >&2
  exit 1
}
tmp=$(mktemp "$(dirname "$OUT")/.action.yml.XXXXXX")
trap 'rm -f "$tmp"' EXIT
sed -E "s|^  image: Dockerfile$|  image: docker://$REPOSITORY@$DIGEST # v$VERSION|" "$SOURCE" >"$tmp"
grep -q "^  image: docker://$REPOSITORY@$DIGEST # v$VERSION\$" "$tmp" || {
  echo "runs.image was not rewritten" >&2
  exit 1
}
mv "$tmp" "$OUT"
trap - EXIT
echo "stamped $OUT: runs.image = docker://$REPOSITORY@$DIGEST (v$VERSION)"
