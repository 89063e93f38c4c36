package gguf

import (
	"testing"

	"github.com/llmo/llmo/internal/testenv"
)

// BenchmarkOpen maps and parses a 26 MB model with a 32000-token
// vocabulary; tensor data is not touched (zero copy).
func BenchmarkOpen(b *testing.B) {
	path := testenv.Model(b, "synth-15m-q8_0.gguf")
	b.ReportAllocs()
	for b.Loop() {
		f, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
