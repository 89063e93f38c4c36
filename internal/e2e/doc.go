// Package e2e is llmo's reliability and security suite. Its tests build the
// llmo binary, start the real multi-process stack (gateway, cache, storage
// and model replicas as separate `llmo serve` processes, or `llmo up`) on
// free loopback ports with the models in ../shared/models, and then break it
// on purpose: kill -9, SIGSTOP, SIGTERM drains, restarts, overload, hostile
// input and hostile GGUF files. Each scenario states the promise it checks
// in a comment, and logs its figures (requests sent, failed, retried,
// recovery time). docs/reliability.md lists the promises and the results.
//
// TestRunningStack runs a smoke suite against a stack that is already
// running when LLMO_E2E_URL is set (./run_microservices.sh test does this).
//
// The package has no non-test code besides this comment: everything lives in
// *_test.go files so that `go test ./...` (and so `make test`) runs it.
package e2e
