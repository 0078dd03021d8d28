#!/usr/bin/env bash
# The JavaScript client library (clients/js): installs its dev dependencies (npm ci from the
# committed package-lock.json, only when it changed), checks that the committed build in
# clients/js/dist is what `tsc` makes of the TypeScript source (ripple dev serves that file), builds
# `ripple`, then runs the library's tests (node --test) against a real `ripple dev`.
# Set RIPPLE_TEST_DYNAMODB_ENDPOINT to use a running DynamoDB instead of DynamoDB Local.
set -euo pipefail
cd "$(dirname "$0")/.."

LOG_TAG=client-test
. scripts/lib.sh

require_tools node npm cargo
npm_ci_when_changed clients/js clients/js/node_modules/.bin/tsc

log "tsc: checking that clients/js/dist matches clients/js/src"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
clients/js/node_modules/.bin/tsc -p clients/js --outDir "$out"
if ! diff -r "$out" clients/js/dist >&2; then
  log "clients/js/dist is out of date: run \`npm run build --prefix clients/js\` and commit clients/js/dist"
  exit 1
fi

build_ripple

log "running node --test clients/js/test/*.test.mjs"
node --test clients/js/test/*.test.mjs
