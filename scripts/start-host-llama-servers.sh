#!/usr/bin/env bash
# Starts the llama-server set the control plane last applied, in parallel,
# and prints a per-server summary. Kept under the seed's name; all the work
# is done by the host agent (no sleeps, no pkill). Exits non-zero if any
# server failed to become ready.
#
#   NODE_BIN   node to run the agent with (default: node on PATH)
set -euo pipefail
script_dir="$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
exec "${NODE_BIN:-node}" "$script_dir/../host-agent/bin/host-agent.mjs" start-metal-servers "$@"
