#!/usr/bin/env bash
# Build the three Lambda zips (connect, ingest, fanout) with cargo-lambda.
#
#   bash scripts/package.sh            # x86_64 (the default on this kind of machine)
#   bash scripts/package.sh arm64      # arm64 (needs: rustup target add aarch64-unknown-linux-gnu)
#   RIPPLE_ARCH=arm64 bash scripts/package.sh
#   bash scripts/package.sh --install-only   # only install cargo-lambda
#
# cargo-lambda (with zig bundled) is installed from PyPI into a venv under
# ${RIPPLE_CACHE:-$HOME/.cache/ripple}/venv the first time; later runs reuse it.
# The zips land in target/lambda/{connect,ingest,fanout}/bootstrap.zip, where terraform/ reads them.
# Set the Terraform variable `architecture` to the same value as RIPPLE_ARCH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${RIPPLE_CACHE:-$HOME/.cache/ripple}"
VENV="$CACHE/venv"
CARGO_LAMBDA_VERSION="${CARGO_LAMBDA_VERSION:-1.9.2}"
ARCH="${RIPPLE_ARCH:-x86_64}"
INSTALL_ONLY=0
for arg in "$@"; do
    case "$arg" in
        --install-only) INSTALL_ONLY=1 ;; # just make sure cargo-lambda is installed
        -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
        *) ARCH="$arg" ;;
    esac
done
PACKAGES=(connect ingest fanout)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'package.sh: %s\n' "$*" >&2; exit 1; }

ensure_venv() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        log "creating venv $VENV"
        mkdir -p "$CACHE"
        python3 -m venv "$VENV" || die "could not create a venv at $VENV (is python3-venv installed?)"
    fi
}

ensure_cargo_lambda() {
    if [[ -x "$VENV/bin/cargo-lambda" ]] && "$VENV/bin/cargo-lambda" lambda --version >/dev/null 2>&1; then
        return 0
    fi
    ensure_venv
    log "installing cargo-lambda==$CARGO_LAMBDA_VERSION from PyPI into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "cargo-lambda==$CARGO_LAMBDA_VERSION" \
        || die "pip install cargo-lambda failed"
}

case "$ARCH" in
    x86_64 | x86-64 | amd64) ARCH_FLAG=--x86-64 ;;
    arm64 | aarch64)
        ARCH_FLAG=--arm64
        if command -v rustup >/dev/null 2>&1 \
            && ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
            die "arm64 needs the aarch64 standard library: rustup target add aarch64-unknown-linux-gnu"
        fi
        ;;
    *) die "unknown architecture '$ARCH' (use x86_64 or arm64)" ;;
esac

ensure_cargo_lambda
export PATH="$VENV/bin:$PATH"
log "$(cargo lambda --version)"

if [[ $INSTALL_ONLY == 1 ]]; then
    exit 0
fi

cd "$ROOT"
args=()
for p in "${PACKAGES[@]}"; do args+=(-p "$p"); done
log "cargo lambda build --release --output-format zip $ARCH_FLAG ${args[*]}"
cargo lambda build --release --output-format zip "$ARCH_FLAG" "${args[@]}"

missing=0
for p in "${PACKAGES[@]}"; do
    zip="target/lambda/$p/bootstrap.zip"
    if [[ -f "$zip" ]]; then
        ls -l "$zip"
    else
        printf 'package.sh: missing %s\n' "$zip" >&2
        missing=1
    fi
done
[[ $missing == 0 ]] || die "some zips were not built"
log "built for $ARCH; deploy with: cd terraform && terraform apply -var architecture=$( [[ $ARCH_FLAG == --arm64 ]] && echo arm64 || echo x86_64 )"
