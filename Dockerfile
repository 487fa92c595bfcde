# syntax=docker/dockerfile:1
#
# orbit container image.
#
#   docker build -t orbit .
#   docker run --init --env-file config/orbit.env.example -e ORBIT_AMQP_URL=amqp://... -p 9464:9464 orbit
#
# The image runs config/default.json (lanes "fast" and "slow" with the example handler).
# For real work, mount a directory with your config and handlers and point ORBIT_CONFIG at
# it:  -v /srv/orbit:/etc/orbit:ro -e ORBIT_CONFIG=/etc/orbit/config.json
# Mounted handlers can `import { UnrecoverableError } from '@orbit-worker/orbit'` (or
# require it) with nothing installed: the image links the package at /node_modules.
# Handlers that need npm packages of their own: build FROM this image, COPY them in and
# `npm install` them beside the handler.

ARG NODE_IMAGE=node:20-bookworm-slim

# ── build: compile TypeScript, then keep only production dependencies ────────────
FROM ${NODE_IMAGE} AS build
WORKDIR /app

# Dependencies first, so that editing sources does not invalidate the npm ci layer.
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

# ── runtime ─────────────────────────────────────────────────────────────────────
# The same slim Debian + Node image, without the compiler, dev dependencies or npm cache.
# (A distroless Node 20 image would be smaller still, but has no shell for debugging and
# no useradd; this one keeps `docker exec ... sh` available.)
FROM ${NODE_IMAGE} AS runtime

ENV NODE_ENV=production
WORKDIR /app

# An unprivileged user with a fixed uid/gid, so volume permissions can be set on the host.
RUN groupadd --system --gid 10001 orbit \
 && useradd --system --uid 10001 --gid orbit --home-dir /app --no-create-home --shell /usr/sbin/nologin orbit

# Owned by root and not writable by orbit: the process writes nothing to disk.
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
COPY examples ./examples

# Handlers mounted anywhere (/etc/orbit, /srv/...) resolve `@orbit-worker/orbit` to this
# install. ES modules and CommonJS both look a bare specifier up in node_modules directories
# walking up from the importing file, and ES modules ignore NODE_PATH, so the one place
# above every path is /node_modules. A symlink rather than a copy: Node follows it to
# /app/dist (its own dependencies then resolve from /app/node_modules) and the handler gets
# the very modules the daemon runs. A node_modules beside the handler still wins, being
# nearer; a second copy found there works too (orbit matches its errors by a registered
# symbol, not by class identity).
RUN mkdir -p /node_modules/@orbit-worker \
 && ln -s /app /node_modules/@orbit-worker/orbit

# Config sources (see config/orbit.env.example for every variable). ORBIT_CONFIG rather
# than a --config flag in CMD, so that an env file or `-e ORBIT_CONFIG=...` can change it.
ENV ORBIT_CONFIG=/app/config/default.json \
    ORBIT_HTTP_HOST=0.0.0.0 \
    ORBIT_HTTP_PORT=9464

USER orbit
EXPOSE 9464

# Liveness: GET /healthz answers 200 while the process is alive. Node does the request (the
# slim image has no curl or wget). Readiness is /readyz (503 with a reason while the broker
# is unreachable); it is not the health check, so that a broker outage does not make every
# worker container "unhealthy" at once.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "require('http').get({host:'127.0.0.1',port:process.env.ORBIT_HTTP_PORT||9464,path:'/healthz',timeout:4000},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))"]

# Exec form: node is the container's main process and receives SIGTERM from `docker stop`
# itself (no shell in between to swallow it). orbit handles SIGTERM/SIGINT: it stops
# consuming, lets in-flight handlers finish (shutdown.timeout, 30s by default) and exits 0.
# Give `docker stop -t` / compose stop_grace_period more than shutdown.timeout.
# As PID 1, node gets no default signal handling and does not reap orphaned children: if
# handlers spawn subprocesses, run with `docker run --init` (compose: `init: true`), which
# puts tini in front of node to forward signals and reap zombies.
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["start"]
