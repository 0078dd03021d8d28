#!/usr/bin/env bash
# The README's test command. Installs what the tests need (idempotently, into $RIPPLE_CACHE),
# starts one DynamoDB Local for the whole run, then: formatting, lints, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

log "formatting (cargo fmt --check)"
cargo fmt --all --check

log "lints (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

start_dynamodb_local
trap 'kill "$DDB_PID" 2>/dev/null || true' EXIT
export RIPPLE_TEST_DYNAMODB_ENDPOINT="$DDB_ENDPOINT"
log "DynamoDB Local at $DDB_ENDPOINT"

if [ -x scripts/validate-terraform.sh ] || [ -f scripts/validate-terraform.sh ]; then
  log "terraform: offline validation"
  bash scripts/validate-terraform.sh
fi

log "packaged Lambda binaries (scripts/package.sh --profile dev: what tests/tests/packaged.rs runs)"
bash scripts/package.sh --profile dev
# tests/tests/packaged.rs uses these zips instead of building them again.
export RIPPLE_LAMBDA_DEV_BUILT=1

log "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

log "client library (clients/js: tsc, node --test against ripple dev)"
bash scripts/client-test.sh

log "browser test (headless Chromium on the demo page)"
bash scripts/browser-test.sh
