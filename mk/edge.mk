# Short fuzzing of the gateway edge's untrusted-input parsers: the API key
# file (internal/auth) and Ollama request translation (internal/ollama).
# Their seed corpora also run as plain tests in `go test`.

TEST_TARGETS += test-fuzz-edge
.PHONY: test-fuzz-edge
test-fuzz-edge:
	$(GO) test -run '^$$' -fuzz '^FuzzKeysFile$$' -fuzztime $(FUZZTIME) ./internal/auth
	$(GO) test -run '^$$' -fuzz '^FuzzTranslate$$' -fuzztime $(FUZZTIME) ./internal/ollama
