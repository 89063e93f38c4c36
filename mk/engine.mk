# Inference engine suites beyond `go test -race ./...` (which builds the
# amd64 assembly kernels): the same tests with GOEXPERIMENT=simd, with the
# plain-Go twins only (-tags purego), and with the AVX2 kernels forced.
TEST_TARGETS += test-engine-simd test-engine-purego test-engine-avx2

.PHONY: test-engine-simd test-engine-purego test-engine-avx2 bench-engine

test-engine-simd:
	GOEXPERIMENT=simd $(GO) test -count=1 -timeout 15m ./internal/tensor/... ./internal/engine/...

test-engine-purego:
	$(GO) test -count=1 -timeout 15m -tags purego ./internal/tensor/... ./internal/engine/...

# On AVX-512 VNNI machines the default run uses the VNNI kernels; this one
# covers the AVX2 kernels too.
test-engine-avx2:
	LLMO_NO_AVX512=1 $(GO) test -count=1 -timeout 15m ./internal/tensor/... ./internal/engine/...

# Kernel and decode-step benchmarks (-benchmem: a decode step allocates nothing).
bench-engine:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/tensor/ ./internal/engine/
