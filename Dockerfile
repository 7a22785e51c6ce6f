# syntax=docker/dockerfile:1
# The seedcast image: the controller and the agent (`seedcast controller`, `seedcast agent`).
# The build steps live in scripts/build-image-steps.sh so CI can run them without Docker.
ARG NODE_VERSION=24.21.0

# Build: dev dependencies, the native addon (cmake-js; CUDA and NCCL are dlopen()ed at run time,
# so nothing CUDA is needed here), tsc -> dist/, then the runtime tree with production deps only.
FROM node:${NODE_VERSION}-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first so source edits reuse the npm ci layer.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN bash scripts/build-image-steps.sh assemble /out

# Runtime: Node 24 slim, no compiler, no npm cache, non-root.
FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=0:0 /out /app
# `seedcast` on PATH: the chart runs `seedcast controller`, injected pods `seedcast agent`.
RUN ln -s /app/bin/seedcast.js /usr/local/bin/seedcast
# A numeric user so `runAsNonRoot: true` can be verified by the kubelet.
USER 65532:65532
ENTRYPOINT ["seedcast"]
CMD ["--help"]
