# Storage: short fuzzing of the parsers of untrusted registry input (the seed
# corpora also run in every `go test`).
TEST_TARGETS += test-storage

.PHONY: test-storage
test-storage:
	$(GO) test -run '^$$' -fuzz '^FuzzManifest$$' -fuzztime $(STORAGE_FUZZTIME) ./internal/storage
	$(GO) test -run '^$$' -fuzz '^FuzzRepoName$$' -fuzztime $(STORAGE_FUZZTIME) ./internal/storage
