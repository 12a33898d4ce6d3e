#!/usr/bin/env bash
# The CNCF distribution registry (Debian package `docker-registry`, 2.8.x) on 127.0.0.1:PORT with
# its filesystem storage under DIR: the peer that benchmarks compare against, and an upstream that
# base images come from. Deletes are enabled so tests can clean up.
#
#   scripts/peer-registry.sh start DIR [PORT]   prints the base URL once /v2/ answers (port 5000 by default)
#                                               with PEER_HTPASSWD=FILE, Basic auth by that htpasswd file
#   scripts/peer-registry.sh stop DIR           stops it (DIR is left for the caller to remove)
set -euo pipefail

usage() { echo "usage: $0 start DIR [PORT] | stop DIR" >&2; exit 2; }
cmd="${1:-}"
dir="${2:-}"
port="${3:-5000}"
[ -n "$cmd" ] && [ -n "$dir" ] || usage

start() {
  command -v docker-registry >/dev/null ||
    { echo "docker-registry is missing: apt-get install -y docker-registry" >&2; exit 3; }
  mkdir -p "$dir/data"
  dir="$(cd "$dir" && pwd)"
  cat >"$dir/config.yml" <<CFG
version: 0.1
log:
  level: warn
  accesslog: {disabled: true}
storage:
  filesystem: {rootdirectory: $dir/data}
  delete: {enabled: true}
  maintenance:
    uploadpurging: {enabled: false}
http:
  addr: 127.0.0.1:$port
CFG
  if [ -n "${PEER_HTPASSWD:-}" ]; then
    printf 'auth:\n  htpasswd: {realm: peer, path: %s}\n' "$PEER_HTPASSWD" >>"$dir/config.yml"
  fi
  setsid docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  local url="http://127.0.0.1:$port"
  for _ in $(seq 150); do
    # With auth, /v2/ answers 401: that it answers at all is what matters.
    if curl -s -o /dev/null -w '%{http_code}' "$url/v2/" | grep -qE '^(200|401)$'; then echo "$url"; return 0; fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "docker-registry did not start; its log ($dir/registry.log) ends with:" >&2
  tail -n 20 "$dir/registry.log" >&2 || true
  stop
  exit 1
}

stop() {
  local pid
  pid="$(cat "$dir/pid" 2>/dev/null || true)"
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
}

case "$cmd" in
start) start ;;
stop) stop ;;
*) usage ;;
esac
