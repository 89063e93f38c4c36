package gguf

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. It must never panic, and what it
// accepts must survive a write/parse round trip unchanged.
func FuzzParse(f *testing.F) {
	for _, seed := range seedFiles(f) {
		f.Add(seed)
	}
	// Truncated headers of the real models, when ../shared is present (the
	// files themselves are not copied into the repository).
	dir := os.Getenv("LLMO_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared")
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "models", "stories260K.gguf")); err == nil {
		for _, n := range []int{24, 200, 4096, 14176, 14176 + 256} {
			f.Add(raw[:n])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(data)
		if err != nil {
			return
		}
		once := rewrite(t, g)
		g2, err := Parse(once)
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v", err)
		}
		if twice := rewrite(t, g2); !bytes.Equal(once, twice) {
			t.Fatal("write/parse round trip is not stable")
		}
	})
}

func rewrite(t *testing.T, g *File) []byte {
	w := NewWriter()
	for _, kv := range g.KV {
		w.SetKV(kv.Key, kv.Value)
	}
	for _, tn := range g.Tensors {
		if err := w.AddTensor(tn.Name, tn.Type, tn.Dims, tn.Data); err != nil {
			t.Fatalf("parsed tensor refused by the writer: %v", err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatalf("parsed file refused by the writer: %v", err)
	}
	return buf.Bytes()
}

// seedFiles are small synthetic GGUF files covering every value type.
func seedFiles(tb testing.TB) [][]byte {
	w := NewWriter()
	w.SetKV("general.architecture", "llama")
	w.SetKV("general.alignment", uint32(16))
	w.SetKV("tokenizer.ggml.tokens", []string{"<unk>", "<s>", "</s>", "▁a"})
	w.SetKV("tokenizer.ggml.scores", []float32{0, 0, 0, -1})
	w.SetKV("tokenizer.ggml.token_type", []int32{2, 3, 3, 1})
	w.SetKV("n", []any{[]uint8{1}, []any{[]bool{true}}})
	w.SetKV("x", int16(-2))
	w.SetKV("y", 1.5)
	if err := w.AddTensor("a", TypeF32, []int{2, 2}, make([]byte, 16)); err != nil {
		tb.Fatal(err)
	}
	if err := w.AddTensor("b", TypeQ4_0, []int{32}, make([]byte, 18)); err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		tb.Fatal(err)
	}
	full := buf.Bytes()
	return [][]byte{full, full[:len(full)/2], full[:40]}
}
