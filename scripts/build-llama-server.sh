#!/usr/bin/env bash
# Builds a CPU llama-server from the llama.cpp source that the npm package
# node-llama-cpp ships as a git bundle, into a cache folder outside the repo
# keyed by the source commit. A no-op when that build is cached.
# Also builds `llama-fit-params` (tools/fit-params: llama.cpp's own memory
# estimate, the memory estimator's reference) beside it; the cache counts only
# when both binaries are there. A cached tree missing only llama-fit-params
# (built before it was added) gets that one target built in place.
# Prints the llama-server binary's path on the last line of stdout.
#
#   LLAMA_SERVER_BIN     if set (and executable), used as is: nothing is built
#   SYNAPSE_CACHE_DIR    cache root (default: ${XDG_CACHE_HOME:-~/.cache}/synapse)
set -euo pipefail

readonly NLC_VERSION="3.21.1"
readonly NLC_INTEGRITY="sha512-E3N0Ev2Va0wzydvXYFwM9Hvyo07PoWjt8T/9GMc43Cvt8YkV/NU/tYUgEMC1grTPv2o9PRjQi0G3Wb5P/awiMg=="

log() { printf '[build-llama-server] %s\n' "$*" >&2; }

if [[ -n "${LLAMA_SERVER_BIN:-}" ]]; then
  if [[ -x "$LLAMA_SERVER_BIN" ]]; then
    log "LLAMA_SERVER_BIN is set; using $LLAMA_SERVER_BIN"
    printf '%s\n' "$LLAMA_SERVER_BIN"
    exit 0
  fi
  log "LLAMA_SERVER_BIN=$LLAMA_SERVER_BIN is not an executable file"
  exit 1
fi

cache_root="${SYNAPSE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/synapse}"
src_root="$cache_root/node-llama-cpp-$NLC_VERSION"
mkdir -p "$src_root"

bundle="$src_root/package/llama/gitRelease.bundle"
if [[ ! -f "$bundle" ]]; then
  log "fetching node-llama-cpp@$NLC_VERSION (llama.cpp source bundle) from the npm registry"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack "node-llama-cpp@$NLC_VERSION" --silent >/dev/null)
  tgz="$tmp/node-llama-cpp-$NLC_VERSION.tgz"
  got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  if [[ "$got" != "$NLC_INTEGRITY" ]]; then
    log "integrity mismatch for node-llama-cpp@$NLC_VERSION: got $got"
    exit 1
  fi
  tar -xzf "$tgz" -C "$src_root" package/llama/gitRelease.bundle
fi

commit=$(git bundle list-heads "$bundle" | head -1 | cut -c1-12)
[[ -n "$commit" ]] || { log "cannot read a commit from $bundle"; exit 1; }
out="$cache_root/llama-server-$commit"
bin="$out/build/bin/llama-server"
fit_bin="$out/build/bin/llama-fit-params"

done_marker="$out/.synapse-build-complete"
# One build at a time per cache: a second caller waits, then finds it cached.
exec 9>"$cache_root/.build-$commit.lock"
flock -w 3600 9 || { log "timed out waiting for another build of $commit"; exit 1; }
if [[ -f "$done_marker" && -x "$bin" ]] && "$bin" --version >/dev/null 2>&1; then
  if [[ ! -x "$fit_bin" ]]; then
    # The libraries are built: this links one more tool (about a minute), leaving llama-server as it is.
    log "building llama-fit-params into the cached tree $out"
    cmake --build "$out/build" --target llama-fit-params -j"$(nproc 2>/dev/null || echo 2)" >&2
  fi
  if [[ -x "$fit_bin" ]]; then
    log "cached: $bin"
    printf '%s\n' "$bin"
    exit 0
  fi
  log "llama-fit-params is missing after building it in $out; building again from scratch"
fi

log "building llama-server from llama.cpp $commit into $out (CPU; about 8 minutes on 2 cores)"
rm -rf "$out"
git clone --quiet "$bundle" "$out"
jobs=$(nproc 2>/dev/null || echo 2)
# Static libraries: the binary stands alone, so the cache folder can move.
cmake -S "$out" -B "$out/build" \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DCMAKE_BUILD_TYPE=Release >&2
cmake --build "$out/build" --target llama-server llama-fit-params -j"$jobs" >&2
"$bin" --version >&2
[[ -x "$fit_bin" ]] || { log "llama-fit-params was not built in $out/build/bin"; exit 1; }
touch "$done_marker"
printf '%s\n' "$bin"
