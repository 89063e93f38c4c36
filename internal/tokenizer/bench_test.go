package tokenizer

import (
	"strings"
	"testing"
)

// paragraph is about 1 KB of ordinary English.
const paragraph = `Once upon a time, in a small village at the edge of a great forest, there lived a girl named Lily who loved to explore. Every morning she packed a little bag with bread, cheese and an apple, and walked along the river until the path disappeared between the tall pine trees. Her mother always told her to be back before the sun went down, and Lily always promised she would. One day, while she was following a bright blue butterfly, she found a hidden garden full of flowers she had never seen before: red ones shaped like stars, yellow ones that smelled of honey, and tiny white ones that seemed to glow in the shade. In the middle of the garden stood an old stone well. Lily leaned over the edge and heard a soft voice calling her name. "Don't be afraid," the voice said. "I have been waiting for someone kind enough to help me." Lily took a deep breath, smiled, and asked the voice what it needed. That was the beginning of the most wonderful summer of her life, and of a friendship that would last for 1,000 years.`

func BenchmarkEncode(b *testing.B) {
	for _, bc := range []struct {
		name  string
		tok   func(testing.TB) *Tokenizer
		input string
	}{
		{"spm-32000/1KB", func(t testing.TB) *Tokenizer { return load(t, "synth-15m-q8_0.gguf") }, paragraph},
		{"spm-32000/64KB", func(t testing.TB) *Tokenizer { return load(t, "synth-15m-q8_0.gguf") }, strings.Repeat(paragraph+"\n", 64)},
		{"gpt2-llama3/1KB", func(t testing.TB) *Tokenizer { return gpt2Vocab(t, "llama-bpe") }, paragraph},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tok := bc.tok(b)
			b.SetBytes(int64(len(bc.input)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				tok.Encode(bc.input, EncodeOptions{AddBOS: true})
			}
		})
	}
}

func BenchmarkDecoder(b *testing.B) {
	tok := load(b, "synth-15m-q8_0.gguf")
	ids := tok.Encode(paragraph, EncodeOptions{})
	b.ReportAllocs()
	for b.Loop() {
		d := tok.NewDecoder()
		for _, id := range ids {
			d.Add(id)
		}
	}
}
