# Dynamic Workers gateway. `make run` and `make test` work on a fresh clone:
# they install the worker's npm packages and Go modules themselves.

GO      ?= go
NPM     ?= npm
WORKERD := worker/node_modules/.bin/workerd
GO_SRC  := $(shell find . -name '*.go' -not -path './worker/node_modules/*') go.mod go.sum
SHIM    := worker/wrangler.jsonc $(wildcard worker/src/*.js worker/src/guest/*.js)

.PHONY: build run test test-go test-worker lint bench clean

build: bin/gateway $(WORKERD)

# npm ci installs exactly what worker/package-lock.json pins (workerd).
$(WORKERD): worker/package.json worker/package-lock.json
	cd worker && $(NPM) ci --no-audit --no-fund
	@touch $@

bin/gateway: $(GO_SRC) $(SHIM) openapi.yaml
	$(GO) build -trimpath -o $@ ./cmd/gateway

run: build
	bin/gateway serve

test: lint test-worker test-go

test-worker: $(WORKERD)
	cd worker && node --test test/

test-go: $(WORKERD)
	$(GO) mod download
	$(GO) test -count=1 -timeout 8m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Benchmarks (not part of make test): latency, streaming delay, and the soak
# (20,000 executions at concurrency 8 with 1 and with N runtime processes).
bench: $(WORKERD)
	$(GO) test -run '^$$' -bench 'ExecuteHello' -benchtime 300x ./internal/api
	$(GO) test -run '^$$' -bench 'StreamLogLatency' -benchtime 20x ./internal/api
	$(GO) test -run '^$$' -bench 'Soak' -benchtime 1x -timeout 30m -v ./internal/api

clean:
	rm -rf bin worker/node_modules
