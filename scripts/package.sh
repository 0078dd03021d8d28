#!/usr/bin/env bash
# Build the three Lambda zips (connect, ingest, fanout) with cargo-lambda, and the build record.
#
#   bash scripts/package.sh                  # x86_64 (the default on this kind of machine)
#   bash scripts/package.sh --arm64          # arm64; needs the aarch64 standard library once:
#                                            #   rustup target add aarch64-unknown-linux-gnu
#   bash scripts/package.sh --profile dev    # unoptimised, fast to build: what the tests run
#                                            # (into target/lambda-dev/, never deployed)
#   bash scripts/package.sh --install-only   # only install cargo-lambda
#   (RIPPLE_ARCH=arm64|x86_64 and RIPPLE_PROFILE=release|dev do the same as the flags)
#
# cargo-lambda (with zig bundled) is installed from PyPI into a venv under
# ${RIPPLE_CACHE:-$HOME/.cache/ripple}/venv the first time; later runs reuse it.
# The release zips land in target/lambda/{connect,ingest,fanout}/bootstrap.zip with
# target/lambda/build.json, the build record terraform/ reads: the architecture the functions get
# (a different `architecture` set in terraform/main.tf fails the plan) and each zip's base64 SHA-256.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${RIPPLE_CACHE:-$HOME/.cache/ripple}"
VENV="$CACHE/venv"
CARGO_LAMBDA_VERSION="${CARGO_LAMBDA_VERSION:-1.9.2}"
ARCH="${RIPPLE_ARCH:-x86_64}"
PROFILE="${RIPPLE_PROFILE:-release}"
INSTALL_ONLY=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --install-only) INSTALL_ONLY=1 ;; # just make sure cargo-lambda is installed
        --arm64) ARCH=arm64 ;;
        --x86-64 | --x86_64) ARCH=x86_64 ;;
        --profile) PROFILE="${2:?--profile needs release or dev}"; shift ;;
        --profile=*) PROFILE="${1#--profile=}" ;;
        -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
        -*) printf 'package.sh: unknown flag %s (see --help)\n' "$1" >&2; exit 2 ;;
        *) ARCH="$1" ;; # the older positional form: arm64 | x86_64
    esac
    shift
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
case "$ARCH_FLAG" in --arm64) ARCH=arm64 ;; *) ARCH=x86_64 ;; esac

case "$PROFILE" in
    release) PROFILE_ARGS=(--release); LAMBDA_DIR=target/lambda ;;
    dev) PROFILE_ARGS=(); LAMBDA_DIR=target/lambda-dev ;;
    *) die "unknown profile '$PROFILE' (use release or dev)" ;;
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
log "cargo lambda build ${PROFILE_ARGS[*]} --output-format zip --lambda-dir $LAMBDA_DIR $ARCH_FLAG ${args[*]}"
cargo lambda build "${PROFILE_ARGS[@]}" --output-format zip --lambda-dir "$LAMBDA_DIR" "$ARCH_FLAG" "${args[@]}"

missing=0
for p in "${PACKAGES[@]}"; do
    zip="$LAMBDA_DIR/$p/bootstrap.zip"
    if [[ -f "$zip" ]]; then
        ls -l "$zip"
    else
        printf 'package.sh: missing %s\n' "$zip" >&2
        missing=1
    fi
done
[[ $missing == 0 ]] || die "some zips were not built"

# The build record: what terraform/ deploys (architecture, per-function zip and base64 SHA-256,
# the value filebase64sha256() computes), written last so it only ever describes a complete build.
python3 - "$LAMBDA_DIR" "$ARCH" "$PROFILE" "$CARGO_LAMBDA_VERSION" "${PACKAGES[@]}" <<'PY' \
    || die "could not write $LAMBDA_DIR/build.json"
import base64, hashlib, json, os, sys
lambda_dir, arch, profile, cargo_lambda, *packages = sys.argv[1:]
functions = {}
for p in packages:
    zip_path = os.path.join(lambda_dir, p, "bootstrap.zip")
    with open(zip_path, "rb") as f:
        digest = hashlib.sha256(f.read()).digest()
    functions[p] = {"zip": f"{p}/bootstrap.zip", "base64sha256": base64.b64encode(digest).decode()}
record = {"architecture": arch, "profile": profile, "cargo_lambda": cargo_lambda, "functions": functions}
tmp = os.path.join(lambda_dir, f"build.json.{os.getpid()}.tmp")
with open(tmp, "w") as f:
    json.dump(record, f, indent=2)
    f.write("\n")
os.replace(tmp, os.path.join(lambda_dir, "build.json"))
PY
log "wrote $LAMBDA_DIR/build.json ($ARCH, $PROFILE)"
if [[ $PROFILE == release ]]; then
    log "deploy with: cd terraform && terraform init && terraform apply   (architecture $ARCH, from build.json)"
fi
