#!/usr/bin/env bash
# The JavaScript client library (clients/js): installs its dev dependencies (npm ci from the
# committed package-lock.json, only when it changed), checks that the committed build in
# clients/js/dist is what `tsc` makes of the TypeScript source (ripple dev serves that file), builds
# `ripple`, then runs the library's tests (node --test) against a real `ripple dev`.
# Set RIPPLE_TEST_DYNAMODB_ENDPOINT to use a running DynamoDB instead of DynamoDB Local.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1;34m[client-test]\033[0m %s\n' "$*" >&2; }

for tool in node npm cargo; do
  command -v "$tool" >/dev/null 2>&1 || { log "$tool not found on PATH"; exit 1; }
done

stamp=clients/js/node_modules/.ripple-lock.sha256
want=$(sha256sum clients/js/package-lock.json | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [ -x clients/js/node_modules/.bin/tsc ] && [ "$want" = "$have" ]; then
  log "node modules: up to date with clients/js/package-lock.json"
else
  log "node modules: npm ci --prefix clients/js"
  npm ci --prefix clients/js --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi

log "tsc: checking that clients/js/dist matches clients/js/src"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
clients/js/node_modules/.bin/tsc -p clients/js --outDir "$out"
if ! diff -r "$out" clients/js/dist >&2; then
  log "clients/js/dist is out of date: run \`npm run build --prefix clients/js\` and commit clients/js/dist"
  exit 1
fi

log "building ripple (cargo build -p ripple)"
cargo build -p ripple --quiet

log "running node --test clients/js/test/*.test.mjs"
node --test clients/js/test/*.test.mjs
