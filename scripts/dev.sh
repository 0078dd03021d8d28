#!/usr/bin/env bash
# The README's run command: `ripple dev` with DynamoDB Local started for you.
# Extra arguments go to `ripple dev` (see `bash scripts/dev.sh --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_dynamodb_local >/dev/null
log "building ripple (first time: a few minutes)"
cargo build -p ripple --quiet
exec target/debug/ripple dev "$@"
