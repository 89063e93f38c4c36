package tokenizer

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/llmo/llmo/internal/gguf"
)

// trainingText is what the test byte-level BPE vocabulary learns its merges from.
const trainingText = `The quick brown fox jumps over the lazy dog. I'm sure they're here, we'll see what you've done!
Don't panic: 12345 apples cost $6.78 in 2024... The the the THE there these those.
	Tabs, newlines

and   multiple   spaces. Über naïve café — déjà vu, 東京 and 北京. Emoji 🦙🙂 are fun!`

type testVocab struct {
	tokens []string
	types  []int32
	merges []string
}

// trainBPE learns n merges over the words the llama-3 pre-tokenizer makes
// of text, the way byte-level BPE vocabularies are built: start from the 256
// byte characters and repeatedly add the most frequent adjacent pair.
func trainBPE(t testing.TB, text string, n int) testVocab {
	var v testVocab
	for b := 0; b < 256; b++ {
		v.tokens = append(v.tokens, byteEnc[b])
		v.types = append(v.types, typeNormal)
	}
	pre, _, err := preTokenizerFor("llama-bpe")
	if err != nil {
		t.Fatal(err)
	}
	words := map[string]int{}
	for _, s := range pre.split(&workspace{}, text, nil) {
		var m strings.Builder
		for _, c := range []byte(text[s.start:s.end]) {
			m.WriteString(byteEnc[c])
		}
		words[m.String()]++
	}
	// Each word as a list of symbols.
	type wordSyms struct {
		syms  []string
		count int
	}
	var ws []wordSyms
	keys := make([]string, 0, len(words))
	for k := range words {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var syms []string
		for _, r := range k {
			syms = append(syms, string(r))
		}
		ws = append(ws, wordSyms{syms, words[k]})
	}
	seen := map[string]bool{}
	for _, tok := range v.tokens {
		seen[tok] = true
	}
	for len(v.merges) < n {
		pairs := map[[2]string]int{}
		for _, w := range ws {
			for i := 0; i+1 < len(w.syms); i++ {
				pairs[[2]string{w.syms[i], w.syms[i+1]}] += w.count
			}
		}
		best, bestN := [2]string{}, 0
		for p, c := range pairs {
			if c > bestN || (c == bestN && p[0]+" "+p[1] < best[0]+" "+best[1]) {
				best, bestN = p, c
			}
		}
		if bestN == 0 {
			break
		}
		v.merges = append(v.merges, best[0]+" "+best[1])
		if merged := best[0] + best[1]; !seen[merged] {
			seen[merged] = true
			v.tokens = append(v.tokens, merged)
			v.types = append(v.types, typeNormal)
		}
		for i := range ws {
			s := ws[i].syms
			var out []string
			for j := 0; j < len(s); j++ {
				if j+1 < len(s) && s[j] == best[0] && s[j+1] == best[1] {
					out = append(out, best[0]+best[1])
					j++
				} else {
					out = append(out, s[j])
				}
			}
			ws[i].syms = out
		}
	}
	return v
}

// gpt2Vocab writes a GGUF file with a trained byte-level BPE vocabulary plus
// special tokens and loads its tokenizer.
func gpt2Vocab(t testing.TB, pre string) *Tokenizer {
	t.Helper()
	v := trainBPE(t, trainingText, 300)
	specials := []struct {
		text string
		typ  int32
	}{
		{"<|begin_of_text|>", typeControl},
		{"<|end_of_text|>", typeControl},
		{"<|eot_id|>", typeControl},
		{"<|im_end|>", typeControl},
		{"<tool>", typeUserDefined},
		{"Ġzzzz", typeNormal}, // a word token no merge produces (llama 3's ignore_merges)
	}
	first := len(v.tokens)
	for _, s := range specials {
		v.tokens = append(v.tokens, s.text)
		v.types = append(v.types, s.typ)
	}
	w := gguf.NewWriter()
	w.SetKV("general.architecture", "llama")
	w.SetKV("tokenizer.ggml.model", "gpt2")
	w.SetKV("tokenizer.ggml.pre", pre)
	w.SetKV("tokenizer.ggml.tokens", v.tokens)
	w.SetKV("tokenizer.ggml.token_type", v.types)
	w.SetKV("tokenizer.ggml.merges", v.merges)
	w.SetKV("tokenizer.ggml.bos_token_id", uint32(first))
	w.SetKV("tokenizer.ggml.eos_token_id", uint32(first+1))
	w.SetKV("tokenizer.ggml.add_bos_token", true)
	path := filepath.Join(t.TempDir(), "gpt2.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
