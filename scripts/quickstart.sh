#!/usr/bin/env bash
# The README's quick start in one command, on Linux: from a fresh clone to the
# app serving http://127.0.0.1:3000 (SQLite in ./data, the local link) with a
# model ready to be found and started. Each step is skipped when it is done:
#   1. Debian packages the llama-server build needs (cmake g++ git openssl),
#      with apt-get (through sudo when not root); elsewhere it names them
#   2. npm ci, when node_modules is missing
#   3. llama-server: LLAMA_SERVER_BIN, or `npm run llama:build` (cached in
#      ~/.cache/synapse; ~8 min on 2 cores the first time)
#   4. the tests' tiny model into ~/models, when that folder has no .gguf
#      (a model folder from SYNAPSE_MODEL_ROOTS is left as it is)
#   5. npm start (in this shell: Ctrl-C stops the app and its servers); it
#      prints the address to open once the app answers there
# Its last line before npm start says what to do next, from the registry as it
# stands (read-only, src/server/cli/quickstart-hint.ts): with no model, Discover →
# Scan for models → Enable → START ALL ENABLED (README); with models, how many are
# enabled, how many the app stopped as it last shut down, and that START ALL
# ENABLED (or npm run synapse -- start-all) starts them.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[quickstart] %s\n' "$*" >&2; }

if [[ "$(uname -s)" != Linux ]]; then
  say "this script is for Linux; on a Mac: brew install llama.cpp, npm ci, npm start (README, Quick start)"
  exit 2
fi

missing=()
for tool in cmake g++ git openssl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "install these with your package manager, then run this again: ${missing[*]}"
    exit 1
  fi
  say "installing ${missing[*]} (apt-get)"
  as_root=()
  [[ "$(id -u)" == 0 ]] || as_root=(sudo)
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

if [[ ! -d node_modules ]]; then
  say "npm ci (the app's dependencies)"
  npm ci --no-audit --no-fund
fi

LLAMA_SERVER_BIN="$(bash scripts/build-llama-server.sh | tail -1)"
export LLAMA_SERVER_BIN
say "llama-server: $LLAMA_SERVER_BIN"

if [[ -z "${SYNAPSE_MODEL_ROOTS:-}" ]]; then
  models="$HOME/models"
  if ! compgen -G "$models/*.gguf" >/dev/null; then
    say "no model in $models: writing the tests' tiny model there (random weights, 0.45 MiB)"
    # SYNAPSE_QUICKSTART=1: its "Next:" line says that this script starts the app now (not "start the app").
    SYNAPSE_QUICKSTART=1 npm run --silent model:tiny
  fi
fi

# What to do once the app answers, from the registry as it stands (the app is not running yet: read from its
# SQLite file, read-only); the hint for either case when that cannot be read within the deadline.
hint="then Discover → Scan for models → Enable → START ALL ENABLED (with models registered already: START ALL ENABLED, or npm run synapse -- start-all)"
if registry_hint="$(timeout 30 node_modules/.bin/tsx src/server/cli/quickstart-hint.ts)" && [[ -n "$registry_hint" ]]; then
  hint="$registry_hint"
fi

# No address here: npm start builds the app first (minutes), then prints the address once the app answers.
say "npm start: builds the app the first time (a minute or two), then serves it and prints the address to open once it answers; $hint"
exec npm start
