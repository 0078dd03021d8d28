#!/usr/bin/env bash
# Browser end-to-end test of the `ripple dev` demo page (tests/browser/): installs what it needs
# when missing (Debian's Chromium, playwright-core from tests/browser/package-lock.json), builds
# `ripple`, then runs `node --test tests/browser/`. Safe to run again and again.
# Set RIPPLE_TEST_DYNAMODB_ENDPOINT to use a running DynamoDB instead of DynamoDB Local.
set -euo pipefail
cd "$(dirname "$0")/.."

LOG_TAG=browser-test
. scripts/lib.sh

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else log "need root to run: $*"; return 1
  fi
}

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  log "chromium: $CHROMIUM is there"
else
  log "chromium: installing (apt-get update && apt-get install -y chromium)"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi

require_tools node npm cargo
npm_ci_when_changed tests/browser tests/browser/node_modules/playwright-core
build_ripple

mkdir -p target/browser
log "running node --test tests/browser/"
node --test tests/browser/
log "passed; screenshot of bob's page: target/browser/demo.png"
