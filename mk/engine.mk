# Inference engine suites beyond `go test -race ./...` (which builds the
# amd64 assembly kernels): the same tests with GOEXPERIMENT=simd, and with
# the plain-Go twins only (-tags purego).
TEST_TARGETS += test-engine-simd test-engine-purego

.PHONY: test-engine-simd test-engine-purego bench-engine

test-engine-simd:
	GOEXPERIMENT=simd $(GO) test -count=1 -timeout 15m ./internal/tensor/... ./internal/engine/...

test-engine-purego:
	$(GO) test -count=1 -timeout 15m -tags purego ./internal/tensor/... ./internal/engine/...

# Kernel and decode-step benchmarks (-benchmem: a decode step allocates nothing).
bench-engine:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/tensor/ ./internal/engine/
