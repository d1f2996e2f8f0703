#!/bin/bash
# Sets up the SSH link from the control plane (in Docker) to this Mac's host
# agent, replacing the seed's manual "Configure SSH" steps. Run it on the Mac,
# from the repo. Safe to run again: nothing is duplicated, files it changes
# are backed up first.
#
#   1. an ed25519 key at ~/.ssh/synapse_host_api (kept if it exists)
#   2. a copy at host-api/.ssh/id_ed25519(.pub) for the container
#   3. one authorized_keys line: restrict,command="<repo>/scripts/ssh-wrapper.sh" <key>
#      (no shell, no pty, no forwarding; the wrapper runs only the agent's verbs).
#      With --model-ports A-B the key may also open connections to 127.0.0.1:A..B
#      (the model servers, for the app's gateway) and to nothing else:
#      restrict,port-forwarding,permitopen="127.0.0.1:A",...,permitopen="127.0.0.1:B",
#      permitlisten="NOWHERE:<ssh port>",command="..." <key>
#      permitlisten keeps `ssh -R` from listening anywhere: sshd lower-cases the
#      address a client asks to listen on before it compares it with the
#      permitlisten address, so an upper-case one never matches (and its port is
#      sshd's own, which nothing else can bind). One caveat sshd has: a key allowed
#      port-forwarding may also ask for Unix-socket listeners; to refuse those, set
#      `AllowStreamLocalForwarding no` in the host's sshd_config (see the README).
#   4. this host's public key in host-api/.ssh/known_hosts, so the app pins it
#   5. host-api/.ssh/config with Host mac-host / HostName host.docker.internal
#
# Usage: scripts/setup-ssh.sh [--user NAME] [--hostname NAME] [--port N] [--host-key FILE.pub]
#                             [--model-ports A-B]
#
#   --model-ports A-B   the ports the models use on this host (e.g. 8080-8099, at most
#                       256); the app's gateway reaches them through the ssh connection.
#                       Give the host the same range in the app. Without it the key
#                       gets no forwarding (the gateway can then use the host's direct mode).
#
# Paths can be moved for tests and unusual layouts (defaults in brackets):
#   HOME                   [the user's home]          ~/.ssh lives here
#   SYNAPSE_SSH_DIR        [$HOME/.ssh]
#   SYNAPSE_HOST_API_DIR   [<repo>/host-api/.ssh]
#   SYNAPSE_WRAPPER_PATH   [<repo>/scripts/ssh-wrapper.sh]
#   SYNAPSE_HOST_KEY_PUB   [/etc/ssh/ssh_host_ed25519_key.pub]
set -euo pipefail
umask 077
export LC_ALL=C

say() { printf '%s\n' "$*"; }
die() {
  printf 'setup-ssh: %s\n' "$*" >&2
  exit 1
}

script_dir="$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
repo_dir="$(cd -P -- "$script_dir/.." && pwd -P)"

ssh_user="${USER:-$(id -un)}"
ssh_hostname="host.docker.internal"
ssh_port="22"
host_key_pub="${SYNAPSE_HOST_KEY_PUB:-/etc/ssh/ssh_host_ed25519_key.pub}"
model_ports=""

while (($# > 0)); do
  case "$1" in
    --user) ssh_user="${2:?--user needs a value}"; shift 2 ;;
    --hostname) ssh_hostname="${2:?--hostname needs a value}"; shift 2 ;;
    --port) ssh_port="${2:?--port needs a value}"; shift 2 ;;
    --host-key) host_key_pub="${2:?--host-key needs a value}"; shift 2 ;;
    --model-ports) model_ports="${2:?--model-ports needs a value such as 8080-8099}"; shift 2 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done

[[ "$ssh_user" =~ ^[A-Za-z0-9._-]+$ ]] || die "--user must be a plain user name (got: $ssh_user)"
[[ "$ssh_hostname" =~ ^[A-Za-z0-9._:-]+$ ]] || die "--hostname must be a host name or address (got: $ssh_hostname)"
[[ "$ssh_port" =~ ^[0-9]+$ ]] && ((ssh_port >= 1 && ssh_port <= 65535)) || die "--port must be 1-65535 (got: $ssh_port)"
forward_options=""
if [[ -n "$model_ports" ]]; then
  [[ "$model_ports" =~ ^([0-9]{1,5})(-([0-9]{1,5}))?$ ]] || die "--model-ports must be a port or a range such as 8080-8099 (got: $model_ports)"
  ports_from=$((10#${BASH_REMATCH[1]}))
  ports_to=$((10#${BASH_REMATCH[3]:-${BASH_REMATCH[1]}}))
  ((ports_from >= 1 && ports_to <= 65535)) || die "--model-ports: ports must be 1-65535 (got: $model_ports)"
  ((ports_from <= ports_to)) || die "--model-ports: the range starts above its end (got: $model_ports); write it low-high"
  ((ports_to - ports_from + 1 <= 256)) || die "--model-ports: $((ports_to - ports_from + 1)) ports is more than 256 (each is one permitopen); choose a smaller range"
  forward_options="port-forwarding"
  for ((p = ports_from; p <= ports_to; p++)); do forward_options+=",permitopen=\"127.0.0.1:$p\""; done
  forward_options+=",permitlisten=\"NOWHERE:$ssh_port\","
fi

[[ -n "${HOME:-}" ]] || die "HOME is not set"
ssh_dir="${SYNAPSE_SSH_DIR:-$HOME/.ssh}"
api_dir="${SYNAPSE_HOST_API_DIR:-$repo_dir/host-api/.ssh}"
wrapper="${SYNAPSE_WRAPPER_PATH:-$repo_dir/scripts/ssh-wrapper.sh}"
key="$ssh_dir/synapse_host_api"
auth_keys="$ssh_dir/authorized_keys"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"

[[ -f "$wrapper" ]] || die "wrapper not found at $wrapper"
[[ -x "$wrapper" ]] || chmod 755 "$wrapper"
wrapper="$(cd -P -- "$(dirname -- "$wrapper")" && pwd -P)/$(basename -- "$wrapper")"
# The path goes inside command="..." and is run by the login shell: refuse
# characters that would need escaping at both levels rather than get it wrong.
case "$wrapper" in
  *[\"\'\\\$\`]* | *$'\n'*) die "the repo path contains a quote, backslash, \$ or backquote; move the repo: $wrapper" ;;
esac
command_path="$wrapper"
[[ "$wrapper" =~ ^[A-Za-z0-9/._+-]+$ ]] || command_path="'$wrapper'"

# Copies a file that existed before this run with content; an absent or empty
# one (e.g. the authorized_keys this run just created) has nothing to keep.
backup() {
  local file="$1"
  [[ -s "$file" ]] || return 0
  cp -p -- "$file" "$file.synapse-backup-$stamp"
  say "  backup: $file.synapse-backup-$stamp"
}

say "Synapse SSH setup"

# 1. The key.
mkdir -p -- "$ssh_dir"
chmod 700 "$ssh_dir"
if [[ -f "$key" ]]; then
  ssh-keygen -l -f "$key" 2>/dev/null | grep -q '(ED25519)$' || die "$key exists but is not an ed25519 key; move it away and run again"
  [[ -f "$key.pub" ]] || ssh-keygen -y -f "$key" >"$key.pub"
  say "- key: kept existing $key"
else
  ssh-keygen -q -t ed25519 -N "" -C "synapse-host-api@$(hostname -s 2>/dev/null || echo host)" -f "$key"
  say "- key: created $key"
fi
pub="$(cat -- "$key.pub")"
read -r pub_type pub_blob _ <<<"$pub"
[[ "$pub_type" == "ssh-ed25519" && -n "$pub_blob" ]] || die "$key.pub is not an ed25519 public key"

# 2. The container's copy.
mkdir -p -- "$api_dir"
chmod 700 "$api_dir"
install -m 600 -- "$key" "$api_dir/id_ed25519"
install -m 644 -- "$key.pub" "$api_dir/id_ed25519.pub"
say "- copied the key to $api_dir/id_ed25519(.pub)"

# 3. authorized_keys: exactly one line for this key, restricted to the wrapper.
line="restrict,${forward_options}command=\"$command_path\" $pub_type $pub_blob synapse-host-api"
touch -- "$auth_keys"
chmod 600 "$auth_keys"
if grep -qxF -- "$line" "$auth_keys" && [[ "$(grep -cF -- " $pub_blob" "$auth_keys")" == 1 ]]; then
  say "- authorized_keys: already has the restricted line for this key${model_ports:+ (model ports $model_ports)}"
else
  backup "$auth_keys"
  tmp="$(mktemp "$ssh_dir/.authorized_keys.XXXXXX")"
  # Keep every other key; drop older lines for this key (e.g. the seed's
  # unrestricted command="..." line) so only the restricted one remains.
  grep -vF -- " $pub_blob" "$auth_keys" >"$tmp" || true
  printf '%s\n' "$line" >>"$tmp"
  chmod 600 "$tmp"
  mv -f -- "$tmp" "$auth_keys"
  say "- authorized_keys: wrote $auth_keys: $line"
  if [[ -n "$model_ports" ]]; then say "  the key may open connections to 127.0.0.1:$model_ports only; give the host the model ports $model_ports in the app"; fi
fi

# 4. Pin this host's key for the app.
[[ -r "$host_key_pub" ]] || die "cannot read this host's public key at $host_key_pub (is Remote Login / sshd set up? use --host-key)"
read -r host_type host_blob _ <"$host_key_pub" || true
[[ -n "${host_type:-}" && -n "${host_blob:-}" ]] || die "$host_key_pub is not a public key file"
if [[ "$ssh_port" == 22 ]]; then
  names="$ssh_hostname,mac-host"
  pinned_as="mac-host"
else
  names="[$ssh_hostname]:$ssh_port,[mac-host]:$ssh_port"
  pinned_as="[mac-host]:$ssh_port"
fi
known="$api_dir/known_hosts"
known_line="$names $host_type $host_blob"
if [[ -f "$known" ]] && grep -qxF -- "$known_line" "$known"; then
  say "- known_hosts: already pins this host's key"
else
  backup "$known"
  printf '%s\n' "$known_line" >"$known"
  chmod 644 "$known"
  say "- known_hosts: pinned $host_type key for $names in $known"
fi
fingerprint="$(ssh-keygen -l -E sha256 -f "$host_key_pub" | awk '{print $2}')"
say "  host key fingerprint: $fingerprint"

# 5. The client config the container reads (mounted at ~/.ssh there).
config="$api_dir/config"
config_text="# Written by scripts/setup-ssh.sh. The app pins the host key from known_hosts.
Host mac-host
    HostName $ssh_hostname
    Port $ssh_port
    User $ssh_user
    IdentityFile ~/.ssh/id_ed25519
    UserKnownHostsFile ~/.ssh/known_hosts
    StrictHostKeyChecking yes
    IdentitiesOnly yes
"
if [[ -f "$config" ]] && [[ "$(cat -- "$config")" == "${config_text%$'\n'}" ]]; then
  say "- config: $config is up to date"
else
  backup "$config"
  printf '%s' "$config_text" >"$config"
  chmod 644 "$config"
  say "- config: wrote $config (Host mac-host -> $ssh_user@$ssh_hostname:$ssh_port)"
fi

say ""
say "Done. Check from this machine (needs Remote Login enabled on macOS): it checks this host's key"
say "against the pin just written (under the name it was pinned for, $pinned_as: $ssh_hostname"
say "may not resolve here) and prints pong with the agent's and llama-server's versions:"
say "  ssh -i $(printf %q "$key") -o IdentitiesOnly=yes -o UserKnownHostsFile=$(printf %q "$known") -o StrictHostKeyChecking=yes -o 'HostKeyAlias=$pinned_as' -p $ssh_port $ssh_user@localhost ping"
