#!/usr/bin/env bash
# Stops every llama-server the host agent manages: SIGTERM to each process
# group, a grace period, SIGKILL, then a check that the groups are empty and
# the ports free. Kept under the seed's name; the host agent does the work.
#
#   NODE_BIN   node to run the agent with (default: node on PATH)
set -euo pipefail
script_dir="$(cd -P -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
exec "${NODE_BIN:-node}" "$script_dir/../host-agent/bin/host-agent.mjs" stop-metal-servers "$@"
