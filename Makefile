# Dynamic Workers gateway. `make run` and `make test` work on a fresh clone:
# they install the worker's npm packages and Go modules themselves.

GO      ?= go
NPM     ?= npm
STATICCHECK_VERSION := v0.8.2
STATICCHECK := bin/tools/staticcheck-$(STATICCHECK_VERSION)
WORKERD := worker/node_modules/.bin/workerd
# The official MCP TypeScript SDK, a client in cmd/gateway's tests.
MCP_SDK := cmd/gateway/testdata/mcp-sdk/node_modules/@modelcontextprotocol/sdk/package.json
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
GO_SRC  := $(shell find . -name '*.go' -not -path '*/node_modules/*') go.mod go.sum
GUEST_SRC := $(wildcard worker/src/guest/*.js)
GUEST_MIN := $(patsubst worker/src/guest/%,worker/src/guest/min/%,$(wildcard worker/src/guest/__dw_*.js))
SHIM    := worker/wrangler.jsonc $(wildcard worker/src/*.js worker/src/*.json) $(GUEST_SRC) $(GUEST_MIN)
PLAYGROUND := internal/playground

.PHONY: build run test test-go test-worker test-postgres system-deps fixtures lint bench clean playground screenshot guest

build: guest bin/gateway $(WORKERD)

# The guest modules every isolate loads (the capture wrapper and its
# formatter, with the helpers they import bundled in), built minified from
# worker/src/guest/ into worker/src/guest/min/ by esbuild's Go API. The output is committed, so a checkout builds without
# this step; a test fails if a source changed and this was not run.
guest: $(GUEST_MIN)

$(GUEST_MIN) &: $(GUEST_SRC) $(wildcard worker/guestbuild/*.go) go.mod
	$(GO) run ./worker/guestbuild
	@touch $(GUEST_MIN)

# npm ci installs exactly what worker/package-lock.json pins (workerd).
$(WORKERD): worker/package.json worker/package-lock.json
	cd worker && $(NPM) ci --no-audit --no-fund
	@touch $@

$(MCP_SDK): cmd/gateway/testdata/mcp-sdk/package.json cmd/gateway/testdata/mcp-sdk/package-lock.json
	cd cmd/gateway/testdata/mcp-sdk && $(NPM) ci --no-audit --no-fund
	@touch $@

# The Dockerfile runs these same build commands (a test checks it does).
bin/gateway: $(GO_SRC) $(SHIM) openapi.yaml $(wildcard $(PLAYGROUND)/assets/*)
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $@ ./cmd/gateway

run: build
	bin/gateway serve

test: lint test-worker test-go

test-worker: $(WORKERD)
	cd worker && node --test test/

test-go: $(WORKERD) $(MCP_SDK) system-deps fixtures
	$(GO) mod download
	$(GO) test -count=1 -timeout 8m ./...
	$(GO) test -run '^$$' -fuzz FuzzBundle -fuzztime 10s ./internal/transpile

# The playground's script ($(PLAYGROUND)/assets/app.js) is committed, so
# neither build nor run needs npm for it; this rebuilds it from src/ and the
# CodeMirror packages package-lock.json pins (esbuild's Go API, go generate).
# A test fails if src/ changed and the bundle was not rebuilt.
playground:
	cd $(PLAYGROUND) && $(NPM) ci --no-audit --no-fund
	$(GO) generate ./$(PLAYGROUND)

# docs/playground.png: the browser test's picture of the page after a run.
screenshot: $(WORKERD)
	$(GO) test -count=1 -run 'TestPlaygroundInBrowser/console' ./$(PLAYGROUND) -screenshot $(CURDIR)/docs/playground.png

# Debian packages the tests need, installed when missing (with sudo when not
# root), so that `make test` on a fresh clone needs nothing done by hand:
# postgresql's server binaries (the store's tests and the two-gateway test
# start a throwaway server of their own in a temporary directory) and chromium
# (the playground's browser test; CHROMIUM=path uses another). Where they
# cannot be installed this fails with the command that would install them.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	[ -n "$$CHROMIUM" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing="$$missing chromium"; \
	[ -z "$$missing" ] && exit 0; \
	cmd="$(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends$$missing"; \
	if ! command -v apt-get >/dev/null 2>&1 || { [ -n "$(SUDO)" ] && ! command -v sudo >/dev/null 2>&1; }; then \
		echo "make test needs these Debian packages and cannot install them here:$$missing"; \
		echo "install them (on Debian or Ubuntu, as root: apt-get install -y$$missing), then run make test again"; \
		exit 1; \
	fi; \
	echo "make test: installing what the tests need and this machine lacks:$$missing (Debian packages; a minute or two)"; \
	echo "$$cmd"; \
	sh -c "$$cmd" || { echo "installing$$missing failed; run it yourself: $$cmd"; exit 1; }

# The real npm packages the dependency tests install, from a registry of
# their own (internal/packages/packagestest): each name@version of
# fixtures.txt packed once with `npm pack` into tarballs/ (git ignores it),
# so the tests never reach the network. PACKAGES_TEST_REGISTRY=<registry
# URL> runs the same tests against a real registry instead.
FIXTURES := internal/packages/testdata
fixtures: $(FIXTURES)/tarballs/.packed

$(FIXTURES)/tarballs/.packed: $(FIXTURES)/fixtures.txt
	mkdir -p $(FIXTURES)/tarballs
	cd $(FIXTURES)/tarballs && $(NPM) pack --silent $$(grep -v '^#' ../fixtures.txt)
	@touch $@

test-postgres: system-deps
	$(GO) test -count=1 -run 'Postgres|AcrossGateways' ./internal/store/ ./internal/api/

# staticcheck comes from the Go module proxy at a pinned version.
$(STATICCHECK):
	GOBIN=$(CURDIR)/bin/tools $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv bin/tools/staticcheck $@

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# Benchmarks (not part of make test): the comparison suite (cmd/bench: the
# gateway against a bare loader Worker side by side in one table, fresh and
# warm (LOADER.get), the in-runtime floor, node per
# execution, pool scaling, reuse, streaming and a 20,000-execution soak; it
# writes bench/results/), then the Go micro-benchmarks of the hot paths.
bench: $(WORKERD) system-deps
	mkdir -p bench/results
	$(GO) run ./cmd/bench -cpuprofile bench/results/gateway.cpu.pprof
	$(GO) test -run '^$$' -bench 'Decode|Collect|Mask' -benchmem ./internal/executions
	$(GO) test -run '^$$' -bench 'Relay' -benchmem ./internal/loader/shim
	$(GO) test -run '^$$' -bench 'Bundle' ./internal/transpile
	$(GO) test -run '^$$' -bench 'FleetLimits' -benchtime 2000x ./internal/store

clean:
	rm -rf bin worker/node_modules $(PLAYGROUND)/node_modules cmd/gateway/testdata/mcp-sdk/node_modules
