package tokenizer

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/llmo/llmo/internal/gguf"
)

func TestSPMLlama2Vocab(t *testing.T) {
	tok := load(t, "synth-15m-q8_0.gguf")
	if tok.Model() != "llama" || tok.VocabSize() != 32000 || tok.BOS() != 1 || tok.EOS() != 2 || !tok.AddBOS() {
		t.Fatalf("model %s vocab %d bos %d eos %d addbos %v", tok.Model(), tok.VocabSize(), tok.BOS(), tok.EOS(), tok.AddBOS())
	}
	for _, tc := range []struct {
		text    string
		special bool
		want    []int
	}{
		{"Hello world", false, []int{15043, 3186}},
		{"\n", false, []int{29871, 13}},
		{"<s>", false, []int{529, 29879, 29958}},
		{"<s>", true, []int{1}},
		{"Hello<s>world", true, []int{15043, 1, 3186}}, // a space prefix follows a special token, as in llama.cpp
		{"🦙", false, []int{29871, 243, 162, 169, 156}}, // byte fallback
		{"", false, nil},
	} {
		got := tok.Encode(tc.text, EncodeOptions{ParseSpecial: tc.special})
		if !slices.Equal(got, tc.want) {
			t.Errorf("Encode(%q, special=%v) = %v, want %v", tc.text, tc.special, got, tc.want)
		}
	}
	if got := tok.Encode("", EncodeOptions{AddBOS: true}); !slices.Equal(got, []int{1}) {
		t.Errorf("empty with BOS = %v", got)
	}
	if got := tok.Decode([]int{1, 15043, 3186, 2}); got != " Hello world" {
		t.Errorf("Decode = %q (control tokens must decode to nothing)", got)
	}
	if !tok.IsEOG(2) || tok.IsEOG(1) || tok.IsEOG(15043) || tok.IsEOG(-1) || tok.IsEOG(32000) {
		t.Error("IsEOG wrong")
	}
	if !tok.IsControl(1) || !tok.IsControl(2) || tok.IsControl(0) || tok.IsControl(15043) {
		t.Error("IsControl wrong")
	}
	if tok.Piece(15043) != " Hello" || tok.Piece(13) != "\n" || tok.Piece(1) != "" || tok.Piece(-1) != "" || tok.Piece(40000) != "" {
		t.Errorf("Piece: %q %q %q", tok.Piece(15043), tok.Piece(13), tok.Piece(1))
	}
	if tok.Text(15043) != "▁Hello" || tok.Text(13) != "<0x0A>" || tok.Text(1) != "<s>" || tok.Text(-1) != "" || tok.Text(40000) != "" {
		t.Errorf("Text: %q %q", tok.Text(15043), tok.Text(13))
	}
	if id, ok := tok.Token("▁world"); !ok || id != 3186 {
		t.Errorf("Token(▁world) = %d %v", id, ok)
	}
	if _, ok := tok.Token("no such piece"); ok {
		t.Error("Token found a missing piece")
	}
}

func TestDecoderUTF8(t *testing.T) {
	tok := load(t, "synth-15m-q8_0.gguf")
	d := tok.NewDecoder()
	// "▁", then the four bytes of 🦙, then "▁world".
	steps := []struct {
		id   int
		want string
	}{{29871, " "}, {243, ""}, {162, ""}, {169, ""}, {156, "🦙"}, {3186, " world"}, {-5, ""}, {99999, ""}}
	for _, s := range steps {
		if got := d.Add(s.id); got != s.want {
			t.Errorf("Add(%d) = %q, want %q", s.id, got, s.want)
		}
	}
	// An incomplete character is held back; at the end of the stream it can
	// no longer complete, so Flush drops it.
	d.Add(243)
	d.Add(162)
	if got := d.Flush(); got != "" {
		t.Errorf("Flush = %q, want nothing", got)
	}
	// Bytes that can never form a character are dropped, and what follows
	// them comes through.
	if got := d.Add(0xFF + 3); got != "" {
		t.Errorf("invalid byte: %q", got)
	}
	if got := d.Add(243) + d.Add(29874); got != "a" {
		t.Errorf("broken sequence: %q", got)
	}
	// A lone lead byte then a whole two-byte character (as in one golden
	// line: <0xE1> then "Ö"): the lead byte goes, the character stays.
	d.Add(0xE1 + 3)
	if got := d.Add(0xC3+3) + d.Add(0x96+3); got != "Ö" {
		t.Errorf("lead byte before a character: %q, want %q", got, "Ö")
	}
}

// Decoding any token stream piece by piece gives exactly Decode's text, and
// both are valid UTF-8 whatever the ids.
func TestDecoderMatchesDecode(t *testing.T) {
	tok := load(t, "synth-15m-q8_0.gguf")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		ids := make([]int, 1+rng.IntN(30))
		for j := range ids {
			if rng.IntN(2) == 0 {
				ids[j] = 3 + rng.IntN(256) // byte tokens
			} else {
				ids[j] = rng.IntN(32000)
			}
		}
		d := tok.NewDecoder()
		var b strings.Builder
		for _, id := range ids {
			b.WriteString(d.Add(id))
		}
		b.WriteString(d.Flush())
		if !utf8.ValidString(b.String()) {
			t.Fatalf("streaming gave invalid UTF-8 %q", b.String())
		}
		if b.String() != tok.Decode(ids) {
			t.Fatalf("streaming %q != Decode %q", b.String(), tok.Decode(ids))
		}
	}
	s := "Grüße, 世界! 🦙🦙 naïve"
	ids := tok.Encode(s, EncodeOptions{})
	d := tok.NewDecoder()
	for _, id := range ids {
		if p := d.Add(id); !utf8.ValidString(p) {
			t.Fatalf("Add(%d) gave invalid UTF-8 %q", id, p)
		}
	}
}

// naiveSPM is an independent quadratic SPM: merge the best-scoring adjacent
// pair (leftmost on ties) until no pair is a token.
func naiveSPM(tok *Tokenizer, text string) []int {
	s := "▁" + strings.ReplaceAll(text, " ", "▁")
	var syms []string
	for i := 0; i < len(s); {
		n := min(utf8Len(s[i]), len(s)-i)
		syms = append(syms, s[i:i+n])
		i += n
	}
	for {
		best, bestScore := -1, float32(0)
		for i := 0; i+1 < len(syms); i++ {
			if id, ok := tok.index[syms[i]+syms[i+1]]; ok && (best < 0 || tok.scores[id] > bestScore) {
				best, bestScore = i, tok.scores[id]
			}
		}
		if best < 0 {
			break
		}
		syms = append(syms[:best], append([]string{syms[best] + syms[best+1]}, syms[best+2:]...)...)
	}
	var out []int
	for _, p := range syms {
		if id, ok := tok.index[p]; ok {
			out = append(out, id)
			continue
		}
		for _, c := range []byte(p) {
			out = append(out, tok.byteTok[c])
		}
	}
	return out
}

// naiveBPE merges the lowest-ranked adjacent pair (leftmost on ties) per word.
func naiveBPE(tok *Tokenizer, text string) []int {
	var out []int
	for _, w := range tok.pre.split(&workspace{}, text, nil) {
		var syms []string
		for _, c := range []byte(text[w.start:w.end]) {
			syms = append(syms, byteEnc[c])
		}
		if id, ok := tok.index[strings.Join(syms, "")]; ok && tok.ignoreMerges {
			out = append(out, id)
			continue
		}
		for {
			best, bestRank := -1, 0
			for i := 0; i+1 < len(syms); i++ {
				if r, ok := tok.ranks[syms[i]+" "+syms[i+1]]; ok && (best < 0 || r < bestRank) {
					best, bestRank = i, r
				}
			}
			if best < 0 {
				break
			}
			syms = append(syms[:best], append([]string{syms[best] + syms[best+1]}, syms[best+2:]...)...)
		}
		for _, p := range syms {
			out = append(out, tok.index[p])
		}
	}
	return out
}

func randomText(rng *rand.Rand, n int) string {
	pieces := []string{"the", " ", "  ", "e", "th", "Hello", "world", "'s", "'LL", "12345", "7", ",", ".", "!!", "\n", "\n\n", "\t", "é", "ï", "東京", "🦙", "—", "$", "ab", "zzzz", " zzzz", "\r\n", "\u00a0", "x"}
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(pieces[rng.IntN(len(pieces))])
	}
	return b.String()
}

func TestEncodersMatchNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	spm := load(t, "synth-15m-q8_0.gguf")
	bpes := []*Tokenizer{gpt2Vocab(t, "llama-bpe"), gpt2Vocab(t, "qwen2"), gpt2Vocab(t, "gpt-2"), gpt2Vocab(t, "smollm"), gpt2Vocab(t, "default")}
	for i := 0; i < 300; i++ {
		s := randomText(rng, 1+rng.IntN(40))
		if got, want := spm.Encode(s, EncodeOptions{}), naiveSPM(spm, s); !slices.Equal(got, want) {
			t.Fatalf("SPM %q:\n got %v\nwant %v", s, got, want)
		}
		for _, b := range bpes {
			if got, want := b.Encode(s, EncodeOptions{}), naiveBPE(b, s); !slices.Equal(got, want) {
				t.Fatalf("BPE %s %q:\n got %v\nwant %v", b.pre.name, s, got, want)
			}
		}
	}
}

func words(tok *Tokenizer, text string) []string {
	var out []string
	for _, s := range tok.pre.split(&workspace{}, text, nil) {
		out = append(out, text[s.start:s.end])
	}
	return out
}

func TestPreTokenizers(t *testing.T) {
	for _, tc := range []struct {
		pre, text string
		want      []string
	}{
		{"llama-bpe", "I'm don't WE'LL they've", []string{"I", "'m", " don", "'t", " WE", "'LL", " they", "'ve"}},
		{"llama-bpe", "12345 1234567", []string{"123", "45", " ", "123", "456", "7"}},
		{"llama-bpe", "Hello,  world!!\n\n  ok", []string{"Hello", ",", " ", " world", "!!\n\n", " ", " ok"}},
		{"llama-bpe", "a\n\n b", []string{"a", "\n\n", " b"}},
		{"llama-bpe", "x   ", []string{"x", "   "}},
		{"llama-bpe", "$100 (ok)", []string{"$", "100", " (", "ok", ")"}},
		{"llama-bpe", "héllo wörld 东京", []string{"héllo", " wörld", " 东京"}},
		{"llama-bpe", "\tfoo", []string{"\tfoo"}},
		{"qwen2", "in 2024!", []string{"in", " ", "2", "0", "2", "4", "!"}},
		{"gpt-2", "I'm 12345 DON'T  x", []string{"I", "'m", " 12345", " DON", "'", "T", " ", " x"}},
		{"gpt-2", "hi\n\nthere ", []string{"hi", "\n", "\n", "there", " "}}, // \s+(?!\S) backtracks
		{"smollm", "abc123 x", []string{"abc", "1", "2", "3", " x"}},
		{"default", "Hello, world 12345!", []string{"Hello", ",", " world", " ", "123", "45", "!"}},
	} {
		tok := gpt2Vocab(t, tc.pre)
		if got := words(tok, tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("%s %q:\n got %q\nwant %q", tc.pre, tc.text, got, tc.want)
		}
	}
}

func TestGPT2(t *testing.T) {
	tok := gpt2Vocab(t, "llama-bpe")
	bos, eos := tok.BOS(), tok.EOS()
	eot, _ := tok.Token("<|eot_id|>")
	imEnd, _ := tok.Token("<|im_end|>")
	tool, _ := tok.Token("<tool>")
	zzzz, _ := tok.Token("Ġzzzz")
	if tok.Model() != "gpt2" || !tok.AddBOS() || tok.Text(bos) != "<|begin_of_text|>" || tok.Piece(bos) != "" {
		t.Fatalf("model %s bos %d", tok.Model(), bos)
	}
	for _, id := range []int{eos, eot, imEnd} {
		if !tok.IsEOG(id) || !tok.IsControl(id) {
			t.Errorf("token %q should be EOG and control", tok.Text(id))
		}
	}
	if tok.IsEOG(bos) || tok.IsEOG(tool) || tok.IsControl(tool) {
		t.Error("bos/<tool> wrongly EOG or control")
	}
	the, ok := tok.Token("ĠThe")
	if !ok {
		t.Fatal("training did not learn ĠThe")
	}
	if tok.Piece(the) != " The" || tok.Text(the) != "ĠThe" {
		t.Errorf("Piece %q Text %q", tok.Piece(the), tok.Text(the))
	}
	for _, tc := range []struct {
		text    string
		opts    EncodeOptions
		want    []int
		wantLen int // when want is nil: only the length of a plain-text encoding is unknown
	}{
		{"<|eot_id|>", EncodeOptions{ParseSpecial: true}, []int{eot}, 0},
		{" The<|eot_id|> The", EncodeOptions{ParseSpecial: true, AddBOS: true}, []int{bos, the, eot, the}, 0},
		{"a<tool>b", EncodeOptions{}, []int{tok.index["a"], tool, tok.index["b"]}, 0}, // user-defined: always matched
		{" zzzz", EncodeOptions{}, []int{zzzz}, 0},                                    // ignore_merges: whole word in vocab
	} {
		if got := tok.Encode(tc.text, tc.opts); !slices.Equal(got, tc.want) {
			t.Errorf("Encode(%q, %+v) = %v, want %v", tc.text, tc.opts, got, tc.want)
		}
	}
	// Without ParseSpecial a control token's text is plain text.
	plain := tok.Encode("<|eot_id|>", EncodeOptions{})
	if slices.Contains(plain, eot) || tok.Decode(plain) != "<|eot_id|>" {
		t.Errorf("plain <|eot_id|> = %v", plain)
	}
	// Control tokens decode to nothing.
	if got := tok.Decode([]int{bos, the, eot}); got != " The" {
		t.Errorf("Decode = %q", got)
	}
	// Without ignore_merges (gpt-2) the same word is merged from bytes.
	g := gpt2Vocab(t, "gpt-2")
	if got := g.Encode(" zzzz", EncodeOptions{}); slices.Contains(got, zzzz) || g.Decode(got) != " zzzz" {
		t.Errorf("gpt-2 \" zzzz\" = %v", got)
	}
	// Learned merges are used: a frequent word is one token.
	if got := tok.Encode(" the", EncodeOptions{}); len(got) != 1 {
		t.Errorf("\" the\" = %v, want one token", got)
	}
}

func TestRoundTrip(t *testing.T) {
	spm := load(t, "stories260K.gguf")
	bpe := gpt2Vocab(t, "llama-bpe")
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 200; i++ {
		s := randomText(rng, rng.IntN(50))
		if s == "" {
			continue
		}
		if got := spm.Decode(spm.Encode(s, EncodeOptions{})); got != " "+s {
			t.Fatalf("SPM round trip %q -> %q", s, got)
		}
		if got := bpe.Decode(bpe.Encode(s, EncodeOptions{})); got != s {
			t.Fatalf("BPE round trip %q -> %q", s, got)
		}
	}
}

func TestFromGGUFErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		kv   map[string]any
		want string
	}{
		{"no model", map[string]any{}, "no tokenizer.ggml.model"},
		{"bert", map[string]any{"tokenizer.ggml.model": "bert"}, `unsupported tokenizer model "bert"`},
		{"no tokens", map[string]any{"tokenizer.ggml.model": "llama"}, "tokens is missing"},
		{"scores", map[string]any{"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": []string{"a"}, "tokenizer.ggml.scores": []float32{1, 2}}, "2 scores for 1 tokens"},
		{"types", map[string]any{"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": []string{"a"}, "tokenizer.ggml.token_type": []int32{1, 1}}, "2 token types"},
		{"no merges", map[string]any{"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": []string{"a"}}, "without tokenizer.ggml.merges"},
		{"bad merge", map[string]any{"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": []string{"a"}, "tokenizer.ggml.merges": []string{"ab"}}, "has no space"},
		{"bad pre", map[string]any{"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": []string{"a"}, "tokenizer.ggml.merges": []string{"a b"}, "tokenizer.ggml.pre": "klingon"}, `unsupported pre-tokenizer "klingon"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := gguf.NewWriter()
			for k, v := range tc.kv {
				w.SetKV(k, v)
			}
			var buf strings.Builder
			if _, err := w.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			f, err := gguf.Parse([]byte(buf.String()))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := FromGGUF(f); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("FromGGUF = %v, want %q", err, tc.want)
			}
		})
	}
}

// One Tokenizer serves many requests at once (run with -race).
func TestConcurrentEncode(t *testing.T) {
	spm := load(t, "stories260K.gguf")
	bpe := gpt2Vocab(t, "llama-bpe")
	want := map[*Tokenizer][]int{spm: spm.Encode(paragraph, EncodeOptions{}), bpe: bpe.Encode(paragraph, EncodeOptions{})}
	done := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 20; i++ {
				for tok, w := range want {
					if got := tok.Encode(paragraph, EncodeOptions{}); !slices.Equal(got, w) {
						done <- errMismatch
						return
					}
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

var errMismatch = errors.New("concurrent Encode gave different ids")
