# Short fuzzing of the model service's untrusted input: chat template
# rendering with hostile message contents. (FuzzRequests in
# internal/modelsvc runs its seed corpus in `go test`; fuzz it by hand with
# go test -run '^$' -fuzz FuzzRequests ./internal/modelsvc.)

TEST_TARGETS += test-fuzz-modelsvc
.PHONY: test-fuzz-modelsvc
test-fuzz-modelsvc:
	$(GO) test -run '^$$' -fuzz '^FuzzRender$$' -fuzztime $(FUZZTIME) ./internal/chattmpl
