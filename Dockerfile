# syntax=docker/dockerfile:1
# wecom-dify: a small, non-root image that runs `wecom-dify serve` with node as PID 1.
# Build: docker build -t wecom-dify .   Run: docker run --env-file .env -p 8080:8080 wecom-dify

# Debian slim rather than Alpine: glibc, so any native addon a dependency pulls in later
# installs from prebuilt binaries instead of compiling against musl.
ARG NODE_IMAGE=node:20-slim

# ---- build: the full dev toolchain (typescript), compiles src/ to dist/ ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Manifests first, so the dependency layer stays cached while only source changes.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
# tsc only emits .js; the build script then copies the inspector's static files beside the
# compiled routes (scripts/copy-assets.mjs), where they look for them.
RUN npm run build

# ---- deps: production dependencies only, in a clean stage so no dev package leaks in ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime ----
FROM ${NODE_IMAGE} AS runtime
# The heap is sized by intent, not by the host: without a limit V8 sizes it from the memory it sees
# and, on a large host, lets it swell to hundreds of MiB before collecting. With 512 MiB a node
# holding 1,000 answers in flight stays near 230–250 MiB RSS (docs/operations.md, "Sizing"), well
# within the Deployment's 768Mi limit. The young generation gets twice V8's default (32 MiB
# semi-spaces): a busy node keeps much alive for ~150 ms (an answer's pieces, contexts, Redis
# replies), so each young collection copies a lot; with 32 MiB there are half as many and 40% less
# time in them (at 1,000 answers in flight: event-loop lag p99 ~50 ms instead of ~100, poll p99
# ~150 ms instead of ~250, for ~20 MiB more RSS). (Both are in NODE_OPTIONS so that they can be
# changed without a new command; the heap's growth, which NODE_OPTIONS cannot carry, is on CMD below.)
ENV NODE_ENV=production \
    PORT=8080 \
    NODE_OPTIONS="--max-old-space-size=512 --max-semi-space-size=32"
WORKDIR /app
# Owned by root and read-only to the app user: the process needs to write nothing here, which is
# also what lets Kubernetes run it with readOnlyRootFilesystem.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# The `node` user (uid 1000) ships with the official image. Kubernetes sets runAsUser: 1000
# because runAsNonRoot cannot verify a user given by name.
USER node
EXPOSE 8080
# node itself, not curl: slim images have no curl. /healthz is "process alive"; readiness
# (/readyz: store and directory reachable) is for load balancers, not for restarting containers.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM starts the drain: stop accepting, finish running answers up to DRAIN_SECONDS, hand
# leases back, exit 0.
STOPSIGNAL SIGTERM
# Exec form, no shell and no npm in between: SIGTERM goes straight to node, which is PID 1 and
# handles it itself. PID 1 gets no default signal handlers and reaps orphaned children; the app
# spawns none, so no init is needed. If that changes, run with `docker run --init` (or tini as
# ENTRYPOINT) at the cost of one more process between the signal and node.
# --heap-growing-percent=100: after each full collection the heap may grow to twice what is live
# before the next. Under a 512 MiB limit V8 allows only ~1.4 times, and a busy node runs a full
# collection every second or two, which costs CPU and doubles the event loop's lag at p99, to save
# ~20 MiB of RSS (docs/operations.md, "Sizing").
CMD ["node", "--heap-growing-percent=100", "dist/cli/main.js", "serve"]
