//go:build race

package engine

// Under the race detector the numeric work is 10-20x slower; the suites
// that check numbers in full run without it (make test-engine-*), so the
// race run trims the 15M-model workloads and keeps every concurrency path.
const raceEnabled = true
