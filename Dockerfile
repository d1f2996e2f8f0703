# syntax=docker/dockerfile:1
#
# Synapse Engine control plane. `docker compose up -d` builds and runs this
# (docker-compose.yml); README "Docker + Metal" has the setup.
#
# Stages:
#   deps        npm dependencies from the lock; better-sqlite3 compiled for this Node
#   build       `npm run build` (Prisma client + `next build`, standalone output)
#   llama-cpu   a CPU llama-server for USE_EXTERNAL_SERVERS=false (the seed's "Disable Metal")
#   llama-none  nothing: `--build-arg LLAMA_SERVER=none` skips that build when every
#               server runs on the Mac (saves minutes and ~10 MB)
#   runtime     slim Node, the standalone server, non-root, data in /app/data
#
# The runtime image's files are the ones IMAGE_LAYOUT in
# test/harness/app-build.ts lists, and its CMD is the command the
# production-mode tests run (test/docker-contract.test.ts checks both).

ARG NODE_VERSION=22
ARG LLAMA_SERVER=cpu

# ---------------------------------------------------------------- deps
FROM node:${NODE_VERSION}-bookworm AS deps
WORKDIR /src
# The full bookworm image has python3, make and g++ for node-gyp.
COPY package.json package-lock.json ./
COPY host-agent/package.json host-agent/package.json
# Install scripts off (postinstall needs the Prisma schema, which comes in the build
# stage); then only better-sqlite3's native build, the one install script that matters.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3

# ---------------------------------------------------------------- build
FROM deps AS build
ENV NEXT_TELEMETRY_DISABLED=1
COPY . .
RUN npm run build

# ---------------------------------------------------------------- llama-server (CPU)
FROM node:${NODE_VERSION}-bookworm AS llama-cpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
COPY scripts/build-llama-server.sh /tmp/build-llama-server.sh
# The same script and pinned llama.cpp source (from the npm package node-llama-cpp,
# integrity-checked) the tests use; static libraries, portable CPU flags.
RUN SYNAPSE_CACHE_DIR=/tmp/llama-cache bash /tmp/build-llama-server.sh > /tmp/llama-server-path \
 && mkdir -p /opt/llama.cpp \
 && cp "$(tail -n 1 /tmp/llama-server-path)" /opt/llama.cpp/llama-server \
 && /opt/llama.cpp/llama-server --version \
 && rm -rf /tmp/llama-cache

FROM node:${NODE_VERSION}-bookworm-slim AS llama-none
RUN mkdir -p /opt/llama.cpp

FROM llama-${LLAMA_SERVER} AS llama

# ---------------------------------------------------------------- runtime
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# libgomp1: llama-server's OpenMP threads. Nothing else: no curl, no shell tools needed.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production \
    NEXT_TELEMETRY_DISABLED=1 \
    HOSTNAME=0.0.0.0 \
    PORT=3000 \
    DATABASE_URL=file:/app/data/synapse.db \
    SYNAPSE_STATE_DIR=/app/data/agent \
    SYNAPSE_MODEL_ROOTS=/models \
    SYNAPSE_REGISTRY_MODELS_ROOT=/models \
    SYNAPSE_LOCAL_MODELS_ROOT=/models \
    SYNAPSE_SSH_DIR=/app/host-api/.ssh \
    LLAMA_SERVER_BIN=/opt/llama.cpp/llama-server

COPY --from=llama /opt/llama.cpp /opt/llama.cpp
COPY --from=build --chown=node:node /src/.next/standalone ./
COPY --from=build --chown=node:node /src/.next/static ./.next/static
COPY --from=build --chown=node:node /src/prisma/migrations ./prisma/migrations
COPY --from=build --chown=node:node /src/scripts/start.mjs ./scripts/start.mjs
COPY --from=build --chown=node:node /src/dist/gateway ./gateway

# A new named volume takes this folder's owner, so the non-root user can write the database.
RUN mkdir -p /app/data /app/host-api/.ssh /models \
 && chown node:node /app/data
USER node
VOLUME ["/app/data"]
EXPOSE 3000
# The app stops every server it manages on SIGTERM, then exits (at most 60 s).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/api/health').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"]
CMD ["node", "--max-semi-space-size=2", "scripts/start.mjs", "--no-build"]
