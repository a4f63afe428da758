# syntax=docker/dockerfile:1
# The one Ballast image: `ballast operator`, `ballast serve`, `ballast sidecar`, `ballast train`.
#   docker build -t ghcr.io/ballast-dev/ballast:$(node -p 'require("./package.json").version') .
# With TFJS_NODE=true the image also carries @tensorflow/tfjs-node (native CPU backend; its install
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

# 2. Production dependencies only.
FROM node:${NODE_VERSION}-bookworm-slim AS deps
ARG TFJS_NODE=false
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && if [ "$TFJS_NODE" = "true" ]; then npm install --omit=dev --no-save --no-audit --no-fund @tensorflow/tfjs-node; fi \
 && npm cache clean --force

# 3. Runtime: node, production node_modules, compiled code, the CRDs; runs as a non-root uid.
FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY crds ./crds
RUN chmod 0755 dist/cli/main.js && ln -s /app/dist/cli/main.js /usr/local/bin/ballast
# Numeric uid/gid so Kubernetes can verify runAsNonRoot (a user name cannot be checked).
USER 65532:65532
ENTRYPOINT ["ballast"]
CMD ["--help"]
