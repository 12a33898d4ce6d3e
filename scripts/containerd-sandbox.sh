#!/usr/bin/env bash
# A private containerd (Debian package `containerd`) that plays the edge device in end-to-end
# tests: its config, root, state and socket all live under DIR, so it never touches the host's
# containerd or images. Needs root (containerd refuses to start otherwise).
#
#   scripts/containerd-sandbox.sh start DIR   prints the socket path once containerd answers
#   scripts/containerd-sandbox.sh stop DIR    stops it (DIR is left for the caller to remove)
#
# Pull with the native snapshotter, which keeps every layer snapshot as a plain directory:
#   ctr -a DIR/containerd.sock image pull --plain-http --snapshotter native 127.0.0.1:PORT/REPO:TAG
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
cmd="${1:-}"
dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || usage

start() {
  command -v containerd >/dev/null && command -v ctr >/dev/null ||
    { echo "containerd is missing: apt-get install -y containerd" >&2; exit 3; }
  [ "$(id -u)" = 0 ] || { echo "containerd needs root" >&2; exit 3; }
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  local sock="$dir/containerd.sock"
  # The CRI plugin would want a CNI setup; the tests only pull and unpack images.
  cat >"$dir/config.toml" <<CFG
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = "$sock.debug"
CFG
  # setsid: containerd gets its own session, so signals to the caller's group don't reach it and
  # `stop` is the only way it ends.
  setsid containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  for _ in $(seq 150); do
    if ctr -a "$sock" version >/dev/null 2>&1; then echo "$sock"; return 0; fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "containerd did not start; its log ($dir/containerd.log) ends with:" >&2
  tail -n 20 "$dir/containerd.log" >&2 || true
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
