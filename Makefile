# llmo — see README.md. `make run` starts the local stack, `make test` runs
# every test suite that CI runs.
GO        ?= go
BIN       ?= bin/llmo
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/llmo/llmo/internal/buildinfo.Version=$(VERSION)
GOTEST    ?= $(GO) test -race -count=1 -timeout 30m
# Fuzzing budgets are execution counts, not durations: with Go 1.26 a
# duration (-fuzztime 10s) can fail at its end with a bare "context deadline
# exceeded" on a loaded machine (golang/go#75804, fixed in Go 1.27).
FUZZTIME         ?= 20000x
STORAGE_FUZZTIME ?= 50000x
# Each area adds its own suites to TEST_TARGETS in mk/*.mk.
TEST_TARGETS := test-go

.PHONY: all build run test test-go bench lint clean
all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/llmo

run: build
	$(BIN) up $(ARGS)

test-go:
	$(GOTEST) ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin test-artifacts
	$(GO) clean -testcache

-include mk/*.mk

test: lint $(TEST_TARGETS)
