# Reliability: short fuzzing of the untrusted-input parsers no other area's
# target fuzzes yet (request decoding in the gateway, chat-template
# rendering, the cache service API). Seed corpora under testdata/fuzz also
# run as plain tests in `go test`. The e2e suites (chaos, load, bad input,
# security) are plain Go tests in internal/e2e and run in test-go.
# FUZZTIME=1000000x make test-reliability for a longer run.
TEST_TARGETS += test-reliability
.PHONY: test-reliability
test-reliability:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/gateway/proxy
	$(GO) test -run '^$$' -fuzz '^FuzzRender$$' -fuzztime $(FUZZTIME) ./internal/chattmpl
	$(GO) test -run '^$$' -fuzz '^FuzzAPI$$' -fuzztime $(FUZZTIME) ./internal/cache
