package gguf

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/llmo/llmo/internal/testenv"
)

func TestOpenStories260K(t *testing.T) {
	f, err := Open(testenv.Model(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Version != 3 || f.Alignment != 32 || f.DataOffset != 14176 {
		t.Fatalf("version %d alignment %d data offset %d, want 3 32 14176", f.Version, f.Alignment, f.DataOffset)
	}
	if len(f.KV) != 19 || len(f.Tensors) != 48 {
		t.Fatalf("%d KV, %d tensors, want 19 and 48", len(f.KV), len(f.Tensors))
	}
	if f.Arch() != "llama" {
		t.Errorf("arch %q", f.Arch())
	}
	if v, ok := f.Uint("llama.context_length"); !ok || v != 2048 {
		t.Errorf("context_length %d %v", v, ok)
	}
	if v, ok := f.Uint("tokenizer.ggml.padding_token_id"); !ok || v != 4294967295 {
		t.Errorf("padding_token_id %d %v", v, ok)
	}
	if v, ok := f.Float("llama.attention.layer_norm_rms_epsilon"); !ok || float32(v) != 1e-5 {
		t.Errorf("rms eps %v %v", v, ok)
	}
	toks, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok || len(toks) != 512 || toks[1] != "<s>" || toks[3] != "<0x00>" {
		t.Errorf("tokens: %d %v", len(toks), ok)
	}
	if sc, ok := f.Float32s("tokenizer.ggml.scores"); !ok || len(sc) != 512 {
		t.Errorf("scores %d %v", len(sc), ok)
	}
	if tt, ok := f.Int32s("tokenizer.ggml.token_type"); !ok || len(tt) != 512 || tt[0] != 2 || tt[1] != 3 || tt[3] != 6 {
		t.Errorf("token types %v", ok)
	}
	if _, ok := f.Uint("no.such.key"); ok {
		t.Error("missing key found")
	}
	if _, ok := f.String("llama.context_length"); ok {
		t.Error("uint read as string")
	}
	want := map[string][]int{
		"token_embd.weight":        {64, 512},
		"output_norm.weight":       {64},
		"output.weight":            {64, 512},
		"blk.0.attn_q.weight":      {64, 64},
		"blk.0.attn_k.weight":      {64, 32},
		"blk.3.attn_v.weight":      {64, 32},
		"blk.4.attn_output.weight": {64, 64},
		"blk.2.ffn_gate.weight":    {64, 172},
		"blk.2.ffn_down.weight":    {172, 64},
		"blk.1.ffn_up.weight":      {64, 172},
		"blk.4.ffn_norm.weight":    {64},
		"blk.0.attn_norm.weight":   {64},
	}
	for name, dims := range want {
		tn, ok := f.Tensor(name)
		if !ok {
			t.Errorf("tensor %s missing", name)
			continue
		}
		if !equalInts(tn.Dims, dims) || tn.Type != TypeF32 || int64(len(tn.Data)) != tn.NumElements()*4 {
			t.Errorf("%s: dims %v type %v len %d", name, tn.Dims, tn.Type, len(tn.Data))
		}
	}
	// The data section ends exactly at the end of the file.
	st, _ := os.Stat(testenv.Model(t, "stories260K.gguf"))
	var end int64
	var params int64
	for _, tn := range f.Tensors {
		end = max(end, f.DataOffset+tn.Offset+int64(len(tn.Data)))
		params += tn.NumElements()
	}
	if end != st.Size() || params != 292800 {
		t.Errorf("data ends at %d (file %d), %d params", end, st.Size(), params)
	}
	// Zero copy: the tensor bytes are the file's bytes.
	raw, _ := os.ReadFile(testenv.Model(t, "stories260K.gguf"))
	te, _ := f.Tensor("blk.1.ffn_up.weight")
	if string(raw[f.DataOffset+te.Offset:][:len(te.Data)]) != string(te.Data) {
		t.Error("tensor view differs from file bytes")
	}
}

func TestOpenSynth(t *testing.T) {
	for _, tc := range []struct {
		file     string
		fileType uint64
		typ      Type
	}{
		{"synth-15m-q8_0.gguf", 7, TypeQ8_0},
		{"synth-15m-f16.gguf", 1, TypeF16},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := Open(testenv.Model(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if a, ok := f.Uint(KeyAlignment); !ok || a != 32 || f.Alignment != 32 {
				t.Errorf("alignment %d %v %d", a, ok, f.Alignment)
			}
			if ft, _ := f.Uint("general.file_type"); ft != tc.fileType {
				t.Errorf("file_type %d want %d", ft, tc.fileType)
			}
			if b, ok := f.Bool("tokenizer.ggml.add_bos_token"); !ok || !b {
				t.Errorf("add_bos_token %v %v", b, ok)
			}
			emb, ok := f.Tensor("token_embd.weight")
			if !ok || emb.Type != tc.typ || !equalInts(emb.Dims, []int{288, 32000}) {
				t.Fatalf("token_embd %+v", emb)
			}
			row, _ := tc.typ.RowBytes(288)
			if len(emb.Data) != row*32000 {
				t.Errorf("token_embd %d bytes, want %d", len(emb.Data), row*32000)
			}
			if _, ok := f.Tensor("output.weight"); !ok {
				t.Error("no output.weight")
			}
			for _, tn := range f.Tensors {
				if tn.Offset%32 != 0 {
					t.Errorf("%s offset %d not aligned", tn.Name, tn.Offset)
				}
			}
		})
	}
}

func TestVersion1Refused(t *testing.T) {
	_, err := Open(testenv.Model(t, "tinyllamas-stories-260k-f32.gguf"))
	if err == nil || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "version 1 files are not supported") {
		t.Fatalf("err = %v", err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
