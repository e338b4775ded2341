# Dynamic Workers gateway: the gateway binary plus the pinned workerd runtime.
# The build stages run the same commands as `make build`.

# Go build, with the Go of go.mod.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The guest modules, minified from worker/src/guest/ (committed too, so this
# rebuilds them byte for byte).
RUN go run ./worker/guestbuild \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=${VERSION}" -o /out/gateway ./cmd/gateway

# workerd, exactly as worker/package-lock.json pins it.
FROM node:20-bookworm-slim AS workerd
WORKDIR /worker
COPY worker/package.json worker/package-lock.json ./
RUN npm ci --no-audit --no-fund \
 && cp "$(node -p 'require("workerd").default')" /workerd

# Runtime: small glibc image (workerd needs glibc), non-root.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/gateway /app/bin/gateway
COPY --from=workerd /workerd /app/bin/workerd
# Node.js and npm, which resolve executions' npm dependencies (packages.npm;
# npm runs no package's scripts). Without them such requests get 503.
COPY --from=workerd /usr/local/bin/node /usr/local/bin/node
COPY --from=workerd /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && mkdir -p /data && chown 65532:65532 /data
# Execution records and the async queue (SQLite; or set GATEWAY_STORAGE_URL),
# and resolved packages (/data/packages).
VOLUME /data
USER 65532:65532
# Listening beyond loopback needs API keys: run with GATEWAY_AUTH_KEYS
# (see `gateway keys new`), or GATEWAY_AUTH_DISABLED=true behind a proxy
# that authenticates.
ENV GATEWAY_LISTEN=0.0.0.0:8080 \
    GATEWAY_RUNTIME_WORKERD=/app/bin/workerd \
    GATEWAY_STORAGE_PATH=/data/executions.db
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD ["/app/bin/gateway", "healthcheck", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/app/bin/gateway"]
CMD ["serve"]
