# syntax=docker/dockerfile:1
# The Ballast image for people with Docker: `ballast operator`, `ballast serve`, `ballast sidecar`, `ballast train`.
#   docker build -t ghcr.io/ballast-dev/ballast:$(node -p 'require("./package.json").version') \
#     --build-arg VERSION=$(node -p 'require("./package.json").version') --build-arg REVISION=$(git rev-parse HEAD) .
# `make image` builds the same image without Docker (hack/image/, docs/image.md): same files under /app and
# /usr/local/bin/ballast, same user, entrypoint, working directory and labels (test/unit/image/dockerfile.test.ts
# checks). With TFJS_NODE=true this image also carries @tensorflow/tfjs-node (native CPU backend; its install
# downloads libtensorflow, so it needs internet at build time). Without it Ballast runs on the wasm backend.
ARG NODE_VERSION=24

# 1. Compile TypeScript with the dev dependencies.
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json

# 2. Production dependencies only, without source maps and type declarations.
FROM node:${NODE_VERSION}-bookworm-slim AS deps
ARG TFJS_NODE=false
WORKDIR /app
COPY package.json package-lock.json ./
COPY hack/image/prune-node-modules.sh /usr/local/bin/
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && if [ "$TFJS_NODE" = "true" ]; then npm install --omit=dev --no-save --no-audit --no-fund @tensorflow/tfjs-node; fi \
 && prune-node-modules.sh node_modules \
 && rm -f node_modules/.package-lock.json \
 && npm cache clean --force

# 3. Runtime: node, production node_modules, compiled code, the CRDs; runs as a non-root uid.
FROM node:${NODE_VERSION}-bookworm-slim
ARG VERSION=dev
ARG REVISION=unknown
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY crds ./crds
# Runs the CLI with /usr/local/bin/node directly (no /usr/bin/env), the same file as in `make image`'s image.
COPY --chmod=0755 hack/image/ballast /usr/local/bin/ballast
LABEL org.opencontainers.image.source="https://github.com/ballast-dev/ballast" \
      org.opencontainers.image.title="ballast" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
# Numeric uid/gid so Kubernetes can verify runAsNonRoot (a user name cannot be checked).
USER 65532:65532
ENTRYPOINT ["ballast"]
CMD ["--help"]
