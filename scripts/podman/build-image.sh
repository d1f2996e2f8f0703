#!/usr/bin/env bash
# Builds the project's image from the Dockerfile as it is, with podman, and
# tags it as docker-compose.yml's `image:` (synapse-engine:local), so
# `docker-compose up -d --no-build` runs it.
#
# The RUN steps fetch from the npm registry (npm ci, the llama-server source).
# They reach it the way this machine's npm does: its CA bundle (npm's `cafile`,
# else NODE_EXTRA_CA_CERTS) and its registry/proxy settings go into an npmrc,
# npm's global config for a Node under /usr/local. Both sit in one folder
# mounted over /usr/local/etc for the build only (`podman build -v`): that
# folder exists (empty) in the Node images, so no mount point is left behind
# and nothing of either is in the image. `nodedir=/usr/local` lets node-gyp use the
# headers the Node image carries instead of downloading them. On a machine
# that reaches the registry directly, nothing of this changes the result.
#
# Usage: scripts/podman/build-image.sh [extra podman build args, e.g. --build-arg LLAMA_SERVER=none]
#   PODMAN        podman binary (default: podman)
#   SYNAPSE_IMAGE tag (default: synapse-engine:local, the compose file's image)
set -euo pipefail
export LC_ALL=C

repo="$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"
podman="${PODMAN:-podman}"
image="${SYNAPSE_IMAGE:-synapse-engine:local}"
log() { printf '[build-image] %s\n' "$*" >&2; }

work=$(mktemp -d /var/tmp/synapse-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
etc="$work/usr-local-etc"
mkdir -p "$etc"
npmrc="$etc/npmrc"

npm_get() { # an npm setting as this machine's npm sees it, empty when unset
  local v
  v=$(cd / && npm config get "$1" 2>/dev/null || true)
  [[ "$v" == "null" || "$v" == "undefined" ]] && v=""
  printf '%s' "$v"
}

ca=$(npm_get cafile)
[[ -n "$ca" ]] || ca="${NODE_EXTRA_CA_CERTS:-}"
{
  printf 'registry=%s\n' "$(npm_get registry)"
  for key in proxy https-proxy noproxy strict-ssl; do
    v=$(npm_get "$key")
    if [[ -n "$v" ]]; then printf '%s=%s\n' "$key" "$v"; fi
  done
  if [[ -n "$ca" ]]; then
    [[ -r "$ca" ]] || { log "npm's CA file $ca is not readable"; exit 1; }
    cp -- "$ca" "$etc/build-ca.crt"
    printf 'cafile=/usr/local/etc/build-ca.crt\n'
  fi
  printf 'nodedir=/usr/local\nfund=false\naudit=false\nupdate-notifier=false\n'
} >"$npmrc"
chmod -R a+rX "$etc"
mounts=(-v "$etc:/usr/local/etc:ro")
log "build-time npm settings (not in the image): $(grep -v '^cafile' "$npmrc" | paste -sd' ')${ca:+ cafile=$ca}"

# podman 4.3's builder decides which stages are used before it expands the
# build args in `FROM llama-${LLAMA_SERVER}`, so it skips the stage that line
# names and then fails to find it ("short-name llama-cpu did not resolve"):
# build every stage instead (llama-none is one mkdir).
# --format docker: podman's default OCI format drops the Dockerfile's
# HEALTHCHECK; docker build keeps it, so this does too.
log "$podman build --format docker --skip-unused-stages=false -t $image -f Dockerfile $* (context: $repo)"
"$podman" build --format docker --skip-unused-stages=false "${mounts[@]}" -t "$image" -f "$repo/Dockerfile" "$@" "$repo"
