# ctrwatch's images. The last stage (runtime) is the default target: only dist/, proto/, package.json and the
# production node_modules on node:24-bookworm-slim, no compiler, no npm cache, no dev dependencies.
#
#   docker build -t ctrwatch:0.1.0 .                            # the daemon (and its CLI)
#   docker build --target demo -t ctrwatch-demo:0.1.0 .         # `npm run demo` in a container (docker-compose.yml)

# The build stage: every dependency, the TypeScript build. Also the base of the demo target below.
FROM node:24-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY src ./src
RUN npm run build

# Production dependencies only, installed apart so that nothing of the build leaks into the runtime image. The
# dependencies are plain JavaScript (no native addon), so the slim image needs no build tools for them.
FROM node:24-bookworm-slim AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# `npm run demo` in a (privileged) container: the build stage plus what the demo runs — Debian's containerd (with
# ctr and containerd-shim-runc-v2), runc and a static busybox for the test image. The demo starts its own private
# containerd and ctrwatch; see the `demo` profile in docker-compose.yml.
FROM build AS demo
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends containerd runc busybox-static \
  && rm -rf /var/lib/apt/lists/*
COPY demo ./demo
COPY test/harness ./test/harness
ENTRYPOINT ["node", "--import", "tsx", "demo/demo.ts"]
CMD []

# The daemon. Runs as root: it connects to containerd's root-owned socket and stats other containers' paths (see
# deploy/daemonset.yaml for the capabilities it actually needs).
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY proto ./proto
COPY package.json ./
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["run"]
