package tokenizer

import (
	"bytes"
	"testing"

	"github.com/llmo/llmo/internal/gguf"
)

// FuzzFromGGUF feeds arbitrary GGUF bytes to FromGGUF: a hostile vocabulary
// (bad ids, odd token types, empty or invalid UTF-8 tokens, broken merges)
// must give an error or a tokenizer that encodes and decodes without
// panicking and only returns ids in range.
func FuzzFromGGUF(f *testing.F) {
	small := func(model string, tokens []string, types []int32, extra map[string]any) []byte {
		w := gguf.NewWriter()
		w.SetKV("tokenizer.ggml.model", model)
		w.SetKV("tokenizer.ggml.tokens", tokens)
		w.SetKV("tokenizer.ggml.token_type", types)
		for k, v := range extra {
			w.SetKV(k, v)
		}
		var b bytes.Buffer
		if _, err := w.WriteTo(&b); err != nil {
			f.Fatal(err)
		}
		return b.Bytes()
	}
	f.Add(small("llama", []string{"<unk>", "<s>", "</s>", "<0x41>", "▁", "a", "▁a", ""}, []int32{2, 3, 3, 6, 1, 1, 1, 1},
		map[string]any{"tokenizer.ggml.scores": []float32{0, 0, 0, 0, -1, -2, -0.5, 0}, "tokenizer.ggml.bos_token_id": uint32(7)}))
	f.Add(small("gpt2", []string{"a", "b", "ab", "Ġ", "<|im_end|>", "\xff"}, []int32{1, 1, 1, 1, 3, 9},
		map[string]any{"tokenizer.ggml.merges": []string{"a b", "Ġ a"}, "tokenizer.ggml.pre": "qwen2", "tokenizer.ggml.eos_token_id": uint32(4)}))
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := gguf.Parse(data)
		if err != nil {
			return
		}
		tok, err := FromGGUF(g)
		if err != nil {
			return
		}
		for _, s := range []string{"", "a", " ab ba<|im_end|><s>", "Héllo 12345 wörld!\n\n", "\xff\xfe"} {
			ids := tok.Encode(s, EncodeOptions{AddBOS: true, ParseSpecial: true})
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("id %d out of range [0, %d)", id, tok.VocabSize())
				}
			}
			d := tok.NewDecoder()
			for _, id := range ids {
				d.Add(id)
			}
			d.Flush()
			tok.Decode(ids)
		}
	})
}
