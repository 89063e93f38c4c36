package synth

import (
	"path/filepath"
	"testing"

	"github.com/llmo/llmo/internal/gguf"
	"github.com/llmo/llmo/internal/tensor"
)

func TestBuildWritesLoadableShapes(t *testing.T) {
	s := Shape{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 96, Vocab: 300, Ctx: 32}
	for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeQ8_0} {
		w, err := Build(s, Options{Type: typ, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "m.gguf")
		if err := w.WriteFile(p); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, tn := range f.Tensors {
			n += tn.NumElements()
		}
		if n != s.Params() {
			t.Errorf("%s: %d parameters, Params() says %d", typ, n, s.Params())
		}
		q, _ := f.Tensor("blk.1.attn_k.weight")
		if q.Type != typ || q.Dims[0] != 64 || q.Dims[1] != 32 {
			t.Errorf("%s: attn_k %v %v", typ, q.Type, q.Dims)
		}
		if nt, _ := f.Tensor("blk.0.ffn_norm.weight"); nt.Type != gguf.TypeF32 {
			t.Errorf("norm type %v", nt.Type)
		}
		if v, _ := f.Uint("llama.attention.head_count_kv"); v != 2 {
			t.Errorf("head_count_kv %d", v)
		}
		f.Close()
	}
}

func TestBuildRejects(t *testing.T) {
	for _, tt := range []struct {
		s   Shape
		typ gguf.Type
	}{
		{Shape{Dim: 64, Layers: 1, Heads: 3, KVHeads: 3, FFN: 96, Vocab: 300, Ctx: 8}, gguf.TypeF32},  // heads do not divide dim
		{Shape{Dim: 48, Layers: 1, Heads: 4, KVHeads: 4, FFN: 96, Vocab: 300, Ctx: 8}, gguf.TypeQ8_0}, // not a multiple of 32
		{Shape{Dim: 64, Layers: 1, Heads: 4, KVHeads: 4, FFN: 96, Vocab: 100, Ctx: 8}, gguf.TypeF32},  // vocab under 259
		{Shape{Dim: 64, Layers: 1, Heads: 4, KVHeads: 4, FFN: 96, Vocab: 300, Ctx: 8}, gguf.TypeQ4_0},
	} {
		if _, err := Build(tt.s, Options{Type: tt.typ}); err == nil {
			t.Errorf("Build(%+v, %s) succeeded", tt.s, tt.typ)
		}
	}
}

// Encode's Q8_0 blocks parse back to the quantization of the input.
func TestEncodeQ8(t *testing.T) {
	v := make([]float32, 64)
	for i := range v {
		v[i] = float32(i%7) - 3
	}
	b := Encode(gguf.TypeQ8_0, v)
	if len(b) != 68 {
		t.Fatalf("%d bytes", len(b))
	}
	q := tensor.Q8Blocks{D: make([]float32, 2), Qs: make([]int8, 64)}
	tensor.ParseQ8_0(q, b)
	back := make([]float32, 64)
	tensor.DequantizeQ8(back, q.D, q.Qs)
	for i := range v {
		if d := back[i] - v[i]; d > 0.02 || d < -0.02 {
			t.Fatalf("value %d: %g -> %g", i, v[i], back[i])
		}
	}
}
