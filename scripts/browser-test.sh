#!/usr/bin/env bash
# Browser end-to-end test of the `ripple dev` demo page (tests/browser/): installs what it needs
# when missing (Debian's Chromium, playwright-core from tests/browser/package-lock.json), builds
# `ripple`, then runs `node --test tests/browser/`. Safe to run again and again.
# Set RIPPLE_TEST_DYNAMODB_ENDPOINT to use a running DynamoDB instead of DynamoDB Local.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1;34m[browser-test]\033[0m %s\n' "$*" >&2; }

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

for tool in node npm cargo; do
  command -v "$tool" >/dev/null 2>&1 || { log "$tool not found on PATH"; exit 1; }
done

# npm ci only when playwright-core is missing or the lockfile changed since the last install.
stamp=tests/browser/node_modules/.ripple-lock.sha256
want=$(sha256sum tests/browser/package-lock.json | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [ -d tests/browser/node_modules/playwright-core ] && [ "$want" = "$have" ]; then
  log "node modules: up to date with tests/browser/package-lock.json"
else
  log "node modules: npm ci --prefix tests/browser"
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi

log "building ripple (cargo build -p ripple)"
cargo build -p ripple --quiet

mkdir -p target/browser
log "running node --test tests/browser/"
node --test tests/browser/
log "passed; screenshot of bob's page: target/browser/demo.png"
