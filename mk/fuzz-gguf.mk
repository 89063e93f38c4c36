# Short fuzzing of the untrusted-input parsers in internal/gguf and
# internal/tokenizer (the seed corpora under testdata/fuzz also run as plain
# tests in `go test`). FUZZTIME=1000000x make test-fuzz-gguf for a longer run.

TEST_TARGETS += test-fuzz-gguf
.PHONY: test-fuzz-gguf
test-fuzz-gguf:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/gguf
	$(GO) test -run '^$$' -fuzz '^FuzzEncode$$' -fuzztime $(FUZZTIME) ./internal/tokenizer
	$(GO) test -run '^$$' -fuzz '^FuzzFromGGUF$$' -fuzztime $(FUZZTIME) ./internal/tokenizer
