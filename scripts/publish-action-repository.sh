#!/usr/bin/env bash
# Publish a release folder (stamped action.yml, README.md, LICENSE, CHANGELOG.md) to the Action repository:
# commit it, tag vX.Y.Z and move the major tag vX to that commit (what `uses: …@v1` and
# `kedro-vertex-ci init --github` resolve).
#
#   scripts/publish-action-repository.sh RELEASE_DIR X.Y.Z
#
# ACTION_REPOSITORY_URL  where to push (default https://github.com/getindata/kedro-vertex-action.git)
# ACTION_REPOSITORY_TOKEN token with contents:write on that repository (https only; never printed, never
#                        stored in a remote URL: git reads it through a credential helper from the env)
set -euo pipefail

(($# == 2)) || {
  echo "usage: $0 RELEASE_DIR X.Y.Z" >&2
  exit 2
}
RELEASE=$(cd "$1" && pwd -P)
VERSION=$2
readonly RELEASE VERSION
[[ $VERSION =~ ^([0-9]+)\.[0-9]+\.[0-9]+$ ]] || {
  echo "version must be X.Y.Z, got $VERSION" >&2
  exit 2
}
readonly MAJOR="v${BASH_REMATCH[1]}"
readonly URL=${ACTION_REPOSITORY_URL:-https://github.com/getindata/kedro-vertex-action.git}
for name in action.yml README.md LICENSE CHANGELOG.md; do
  [[ -f $RELEASE/$name ]] || {
    echo "$RELEASE/$name is missing" >&2
    exit 1
  }
done
grep -q '^  image: docker://.*@sha256:[0-9a-f]\{64\} # v' "$RELEASE/action.yml" || {
  echo "$RELEASE/action.yml is not stamped with an image digest (scripts/stamp-action.sh)" >&2
  exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck disable=SC2016 # expanded by git's shell, from the environment, at use
helper='!f() { test "$1" = get && printf "username=x-access-token\npassword=%s\n" "$ACTION_REPOSITORY_TOKEN"; }; f'
git_() { git -c credential.helper= -c "credential.helper=$helper" -c user.name="kedro-vertex-ci release" \
  -c user.email="kedro-vertex-ci-release@users.noreply.github.com" "$@"; }

git_ clone --quiet "$URL" "$work/repo"
cd "$work/repo"
if git rev-parse --quiet --verify "refs/tags/v$VERSION" >/dev/null; then
  echo "v$VERSION already exists in $URL: a release is never rewritten" >&2
  exit 1
fi
cp "$RELEASE/action.yml" "$RELEASE/README.md" "$RELEASE/LICENSE" "$RELEASE/CHANGELOG.md" .
git_ add action.yml README.md LICENSE CHANGELOG.md
git_ commit --quiet --allow-empty -m "kedro-vertex-action v$VERSION"
git_ tag -a "v$VERSION" -m "kedro-vertex-action v$VERSION"
git_ tag -f "$MAJOR" "v$VERSION^{commit}" >/dev/null
git_ push --quiet origin HEAD "refs/tags/v$VERSION"
git_ push --quiet --force origin "refs/tags/$MAJOR"
echo "published v$VERSION ($(git rev-parse HEAD)); $MAJOR moved to it"
