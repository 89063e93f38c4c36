package tokenizer

import (
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

var (
	fuzzOnce sync.Once
	fuzzSPM  *Tokenizer
	fuzzBPE  []*Tokenizer
)

// FuzzEncode checks, for the stories260K SPM vocabulary and the test
// byte-level BPE vocabularies, that Encode never panics, returns only ids in
// range, and that decoding gives the text back (SPM adds its leading space).
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", " ", "Hello world", "  Leading spaces, trailing spaces.  ", "I'm 12345 don't\n\n\tok",
		"Café, naïve, résumé — déjà vu.", "🦙\xf0\x9f", "\xff\xfe<s></s><|eot_id|><tool>", "東京 \u2581x", "a\r\nb\u00a0c"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	fuzzOnce.Do(func() {
		fuzzSPM = load(f, "stories260K.gguf")
		for _, pre := range []string{"llama-bpe", "qwen2", "gpt-2", "smollm", "default"} {
			fuzzBPE = append(fuzzBPE, gpt2Vocab(f, pre))
		}
	})
	f.Fuzz(func(t *testing.T, s string, special bool) {
		opts := EncodeOptions{ParseSpecial: special}
		ids := fuzzSPM.Encode(s, opts)
		for _, id := range ids {
			if id < 0 || id >= fuzzSPM.VocabSize() {
				t.Fatalf("SPM id %d out of range", id)
			}
		}
		// "▁" in the input decodes as a space; "<s>"-like text may become control tokens.
		if !special && utf8.ValidString(s) && !strings.Contains(s, "\u2581") && s != "" {
			if got := fuzzSPM.Decode(ids); got != " "+s {
				t.Fatalf("SPM Decode(Encode(%q)) = %q", s, got)
			}
		}
		for _, tok := range fuzzBPE {
			ids := tok.Encode(s, opts)
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("BPE %s id %d out of range", tok.pre.name, id)
				}
			}
			if !special {
				// Byte-level BPE round-trips every byte, but Decode drops
				// those that are not valid UTF-8.
				if got := tok.Decode(ids); got != strings.ToValidUTF8(s, "") {
					t.Fatalf("BPE %s Decode(Encode(%q)) = %q", tok.pre.name, s, got)
				}
			}
			d := tok.NewDecoder()
			var b strings.Builder
			for _, id := range ids {
				p := d.Add(id)
				if utf8.ValidString(s) && !utf8.ValidString(p) {
					t.Fatalf("decoder emitted invalid UTF-8 %q for valid input", p)
				}
				b.WriteString(p)
			}
			if b.WriteString(d.Flush()); b.String() != tok.Decode(ids) {
				t.Fatalf("streaming decode %q != Decode %q", b.String(), tok.Decode(ids))
			}
		}
	})
}
