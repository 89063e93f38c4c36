# Short fuzzing of the response cache's parsers of untrusted input: the
# request canonicaliser (cache keys) and the upstream SSE capture. Their seed
# corpora also run as plain tests in `go test`.

TEST_TARGETS += test-fuzz-cache
.PHONY: test-fuzz-cache
test-fuzz-cache:
	$(GO) test -run '^$$' -fuzz '^FuzzCanonical$$' -fuzztime $(FUZZTIME) ./internal/respcache
	$(GO) test -run '^$$' -fuzz '^FuzzEntryFromSSE$$' -fuzztime $(FUZZTIME) ./internal/respcache
