#!/bin/bash
# Synapse Engine's forced command for the control plane's SSH key.
#
# authorized_keys:  restrict,command="/abs/path/to/scripts/ssh-wrapper.sh" ssh-ed25519 AAAA...
#
# sshd runs this through the user's login shell (`$SHELL -c <command>`), so it
# must work when that shell is zsh or bash: the command is an absolute path
# and the interpreter is fixed by the shebang (/bin/bash exists on macOS and
# Linux; macOS's is bash 3.2, so nothing newer is used here).
#
# The client's requested command arrives in SSH_ORIGINAL_COMMAND. It is
# compared, byte for byte, against a fixed allowlist and never evaluated,
# split or expanded. Anything else is refused with a fixed message, exit 1 and
# one escaped audit line.
#
# Site settings come from `ssh-wrapper.conf` next to this file (KEY=VALUE
# lines, read as data, never sourced). The agent runs with an environment
# built here from scratch, so nothing the ssh client sends (AcceptEnv LANG,
# LC_*, ...) reaches it or changes what runs.
#
#   SYNAPSE_NODE              node binary (default: Homebrew, /usr/local, /usr/bin, PATH)
#   SYNAPSE_HOST_AGENT_BIN    host-agent entry (default: <repo>/host-agent/bin/host-agent.mjs)
#   SYNAPSE_WRAPPER_AUDIT_LOG audit log file (default: ~/.local/state/synapse/ssh-wrapper.log,
#                             beside the agent's own state)
#   SYNAPSE_* / LLAMA_SERVER_BIN  any other such key is passed to the agent's environment
set -u
umask 077
# Byte-wise comparisons and messages, whatever LANG/LC_* the client sent.
export LC_ALL=C
unset CDPATH ENV BASH_ENV
PATH=/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
export PATH

readonly ALLOWED="agent, start-metal-servers, stop-metal-servers, status, ping, channels"
# Only these keys may come from the config file; everything else is refused.
readonly AUDIT_LOG_MAX_BYTES=1048576

requested="${SSH_ORIGINAL_COMMAND-}"
request_present="${SSH_ORIGINAL_COMMAND+yes}"

script_path="${BASH_SOURCE[0]}"
script_dir="$(cd -P -- "$(dirname -- "$script_path")" && pwd -P)" || {
  printf 'synapse ssh-wrapper: cannot locate itself\n' >&2
  exit 1
}
conf_file="$script_dir/ssh-wrapper.conf"

node_bin=""
agent_bin=""
audit_log="${HOME:-/nonexistent}/.local/state/synapse/ssh-wrapper.log"
agent_env=()

fail() {
  printf 'synapse ssh-wrapper: %s\n' "$1" >&2
  exit 1
}

# One line per decision. The client's bytes are cut to 256 and printed with
# %q, so quotes, newlines and non-UTF-8 bytes come out escaped and the log
# cannot be forged or split.
audit() {
  local verdict="$1" shown
  shown="${requested:0:256}"
  local dir
  dir="$(dirname -- "$audit_log")"
  mkdir -p -- "$dir" 2>/dev/null || return 0
  if [[ -f "$audit_log" ]]; then
    local size
    size=$(wc -c <"$audit_log" 2>/dev/null | tr -d ' ') || size=0
    if [[ "$size" =~ ^[0-9]+$ ]] && ((size > AUDIT_LOG_MAX_BYTES)); then
      mv -f -- "$audit_log" "$audit_log.1" 2>/dev/null || true
    fi
  fi
  local client="${SSH_CLIENT-}"
  client="${client%% *}"
  [[ "$client" =~ ^[0-9A-Fa-f.:]+$ ]] || client="unknown"
  printf '%s verdict=%s user=%q client=%s present=%s bytes=%d command=%q\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$verdict" "${USER-${LOGNAME-unknown}}" "$client" \
    "${request_present:-no}" "${#requested}" "$shown" >>"$audit_log" 2>/dev/null || true
}

refuse() {
  audit refused
  printf 'synapse ssh-wrapper: command not allowed (allowed: %s)\n' "$ALLOWED" >&2
  exit 1
}

# Sets conf_error and returns 1 on a bad config, so the refusal path can
# still audit while the allowed path stops.
conf_error=""
read_conf() {
  [[ -e "$conf_file" ]] || return 0
  if [[ ! -f "$conf_file" || ! -r "$conf_file" ]]; then
    conf_error="cannot read $conf_file"
    return 1
  fi
  # A config that someone else owns could redirect what runs.
  if [[ ! -O "$conf_file" ]]; then
    conf_error="$conf_file is not owned by this user; refusing to use it"
    return 1
  fi
  local line key value lineno=0
  while IFS= read -r line || [[ -n "$line" ]]; do
    lineno=$((lineno + 1))
    line="${line%$'\r'}"
    [[ "$line" =~ ^[[:space:]]*(#.*)?$ ]] && continue
    if [[ ! "$line" =~ ^([A-Z][A-Z0-9_]*)=(.*)$ ]]; then
      conf_error="$conf_file line $lineno: expected KEY=VALUE"
      return 1
    fi
    key="${BASH_REMATCH[1]}"
    value="${BASH_REMATCH[2]}"
    # Optional surrounding quotes are stripped; nothing inside is interpreted.
    if [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]]; then
      value="${BASH_REMATCH[1]}"
    fi
    case "$key" in
      SYNAPSE_NODE) node_bin="$value" ;;
      SYNAPSE_HOST_AGENT_BIN) agent_bin="$value" ;;
      SYNAPSE_WRAPPER_AUDIT_LOG) audit_log="$value" ;;
      SYNAPSE_* | LLAMA_SERVER_BIN) agent_env+=("$key=$value") ;;
      *)
        conf_error="$conf_file line $lineno: unknown key $key"
        return 1
        ;;
    esac
  done <"$conf_file"
}

find_node() {
  if [[ -n "$node_bin" ]]; then
    [[ -x "$node_bin" ]] || fail "SYNAPSE_NODE=$node_bin is not executable"
    return 0
  fi
  local candidate
  for candidate in /opt/homebrew/bin/node /usr/local/bin/node /usr/bin/node; do
    if [[ -x "$candidate" ]]; then
      node_bin="$candidate"
      return 0
    fi
  done
  candidate="$(command -v node 2>/dev/null)" || candidate=""
  [[ -n "$candidate" && -x "$candidate" ]] || fail "node not found (looked in /opt/homebrew/bin, /usr/local/bin, /usr/bin, PATH); set SYNAPSE_NODE in $conf_file"
  node_bin="$candidate"
}

find_agent() {
  if [[ -z "$agent_bin" ]]; then
    agent_bin="$(cd -P -- "$script_dir/.." && pwd -P)/host-agent/bin/host-agent.mjs"
  fi
  [[ -f "$agent_bin" && -r "$agent_bin" ]] || fail "host agent not found at $agent_bin; set SYNAPSE_HOST_AGENT_BIN in $conf_file"
}

# Exact matches only: no globbing, no prefixes, no trailing spaces.
agent_args=()
case "$requested" in
  'agent') agent_args=(serve --stdio) ;;
  'start-metal-servers') agent_args=(start-metal-servers) ;;
  'stop-metal-servers') agent_args=(stop-metal-servers) ;;
  'status') agent_args=(status --json) ;;
  'ping') agent_args=(ping) ;;
  'channels')
    # The gateway's own connection for channels to model servers (src/server/gateway/worker-tunnels.ts) asks for
    # this once per connection: sshd turns Nagle off on a connection only when a session's command starts. Nothing
    # runs: no node, no agent; written down and done.
    read_conf || fail "$conf_error"
    audit allowed
    exit 0
    ;;
  *)
    # The config may move the audit log; a broken config must not hide a refusal.
    read_conf || true
    refuse
    ;;
esac

read_conf || fail "$conf_error"
find_node
find_agent
audit allowed

# A fresh environment: only what the agent needs, and what the site config says.
exec /usr/bin/env -i \
  HOME="${HOME-}" USER="${USER-${LOGNAME-}}" LOGNAME="${LOGNAME-${USER-}}" PATH="$PATH" LC_ALL=C \
  ${agent_env[@]+"${agent_env[@]}"} \
  "$node_bin" "$agent_bin" "${agent_args[@]}"
