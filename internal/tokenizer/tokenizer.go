// Package tokenizer turns text into token ids and back, from the vocabulary
// stored in a GGUF file. It implements the two tokenizers llama.cpp calls
// "llama" (SentencePiece BPE with scores and byte fallback) and "gpt2"
// (byte-level BPE with merge ranks and a pre-tokenizer chosen by
// tokenizer.ggml.pre), and reproduces llama.cpp's token ids for both.
//
// Encoding is O(n log n) in the input length: symbols live in a linked list
// and candidate merges in a heap, as in llama.cpp.
package tokenizer

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/llmo/llmo/internal/gguf"
)

// Token types stored in tokenizer.ggml.token_type (llama.cpp's llama_token_type).
const (
	typeUndefined   = 0
	typeNormal      = 1
	typeUnknown     = 2
	typeControl     = 3
	typeUserDefined = 4
	typeUnused      = 5
	typeByte        = 6
)

// maxVocab caps the vocabulary size read from a file.
const maxVocab = 1 << 22

// EncodeOptions control Encode.
type EncodeOptions struct {
	// AddBOS puts the BOS token first when the model wants one
	// (tokenizer.ggml.add_bos_token), like llama.cpp's add_special.
	AddBOS bool
	// ParseSpecial lets control tokens written in the text ("<s>",
	// "<|im_end|>") map to their ids. Without it they are plain text.
	// User-defined tokens are always matched, as in llama.cpp.
	ParseSpecial bool
}

// Tokenizer encodes and decodes text for one vocabulary. It is safe for
// concurrent use.
type Tokenizer struct {
	model  string // "llama" or "gpt2"
	tokens []string
	scores []float32
	types  []int32
	index  map[string]int
	pieces []string // decoded bytes of each token; empty for control tokens

	bos, eos, unk, eot, eom int
	addBOS, addEOS          bool
	addSpacePrefix          bool
	eog                     []bool

	// specials are the tokens matched in text before tokenization, indexed
	// by first byte and sorted longest first.
	specials [256][]int

	// llama (SPM)
	byteTok [256]int

	// gpt2 (byte-level BPE)
	ranks        map[string]int
	pre          preTokenizer
	ignoreMerges bool

	pool sync.Pool // *workspace
}

// eogTexts are token texts llama.cpp treats as end of generation.
var eogTexts = []string{
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
	"<|eom_id|>", "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>", "<|end_of_text|>",
}

// FromGGUF builds the tokenizer stored in a GGUF file's metadata.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	model, _ := f.String("tokenizer.ggml.model")
	switch model {
	case "llama", "gpt2":
	case "":
		return nil, fmt.Errorf("tokenizer: the file has no tokenizer.ggml.model")
	default:
		return nil, fmt.Errorf("tokenizer: unsupported tokenizer model %q (llmo supports \"llama\" and \"gpt2\")", model)
	}
	tokens, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok || len(tokens) == 0 {
		return nil, fmt.Errorf("tokenizer: tokenizer.ggml.tokens is missing or empty")
	}
	if len(tokens) > maxVocab {
		return nil, fmt.Errorf("tokenizer: vocabulary of %d tokens is over the limit %d", len(tokens), maxVocab)
	}
	t := &Tokenizer{model: model, tokens: tokens}
	n := len(tokens)
	if s, ok := f.Float32s("tokenizer.ggml.scores"); ok {
		if len(s) != n {
			return nil, fmt.Errorf("tokenizer: %d scores for %d tokens", len(s), n)
		}
		t.scores = s
	} else {
		t.scores = make([]float32, n)
	}
	if ty, ok := f.Int32s("tokenizer.ggml.token_type"); ok {
		if len(ty) != n {
			return nil, fmt.Errorf("tokenizer: %d token types for %d tokens", len(ty), n)
		}
		t.types = append([]int32(nil), ty...)
	} else {
		t.types = make([]int32, n)
		for i := range t.types {
			t.types[i] = typeNormal
		}
	}
	t.index = make(map[string]int, n)
	for i, s := range tokens {
		t.index[s] = i // the last of duplicate texts wins, as in llama.cpp
	}

	id := func(key string, def int) int {
		v, ok := f.Uint(key)
		if !ok {
			v = uint64(def)
			if def < 0 {
				return -1
			}
		}
		if v >= uint64(n) {
			return -1 // 0xFFFFFFFF means "none"
		}
		return int(v)
	}
	boolKey := func(key string, def bool) bool {
		if v, ok := f.Bool(key); ok {
			return v
		}
		return def
	}
	if model == "llama" {
		t.bos, t.eos, t.unk = id("tokenizer.ggml.bos_token_id", 1), id("tokenizer.ggml.eos_token_id", 2), id("tokenizer.ggml.unknown_token_id", 0)
		t.addBOS = boolKey("tokenizer.ggml.add_bos_token", true)
		t.addSpacePrefix = boolKey("tokenizer.ggml.add_space_prefix", true)
	} else {
		t.bos, t.eos, t.unk = id("tokenizer.ggml.bos_token_id", 11), id("tokenizer.ggml.eos_token_id", 11), id("tokenizer.ggml.unknown_token_id", -1)
		t.addBOS = boolKey("tokenizer.ggml.add_bos_token", false)
		t.addSpacePrefix = boolKey("tokenizer.ggml.add_space_prefix", false)
	}
	t.addEOS = boolKey("tokenizer.ggml.add_eos_token", false)
	t.eot = id("tokenizer.ggml.eot_token_id", -1)
	t.eom = id("tokenizer.ggml.eom_token_id", -1)
	if t.unk >= 0 && t.types[t.unk] == typeNormal {
		t.types[t.unk] = typeUnknown
	}

	t.eog = make([]bool, n)
	for _, i := range []int{t.eos, t.eot, t.eom} {
		if i >= 0 {
			t.eog[i] = true
		}
	}
	for _, s := range eogTexts {
		if i, ok := t.index[s]; ok {
			t.eog[i] = true
			if t.types[i] == typeNormal || t.types[i] == typeUndefined {
				t.types[i] = typeControl // llama.cpp forces these to control
			}
			if t.eot < 0 && s != "<|eom_id|>" {
				t.eot = i
			}
		}
	}

	if model == "llama" {
		for b := 0; b < 256; b++ {
			t.byteTok[b] = t.unk
			if i, ok := t.index[fmt.Sprintf("<0x%02X>", b)]; ok {
				t.byteTok[b] = i
			} else if i, ok := t.index[string([]byte{byte(b)})]; ok {
				t.byteTok[b] = i
			}
		}
	} else {
		merges, ok := f.Strings("tokenizer.ggml.merges")
		if !ok {
			return nil, fmt.Errorf("tokenizer: gpt2 tokenizer without tokenizer.ggml.merges")
		}
		if len(merges) >= 1<<24 { // ranks are compared as exact float32s
			return nil, fmt.Errorf("tokenizer: %d merges is over the limit", len(merges))
		}
		t.ranks = make(map[string]int, len(merges))
		for r, m := range merges {
			if sp := strings.IndexByte(m[min(1, len(m)):], ' '); sp < 0 {
				return nil, fmt.Errorf("tokenizer: merge %d %q has no space", r, m)
			}
			if _, dup := t.ranks[m]; !dup {
				t.ranks[m] = r
			}
		}
		preName, _ := f.String("tokenizer.ggml.pre")
		pre, ignore, err := preTokenizerFor(preName)
		if err != nil {
			return nil, err
		}
		t.pre, t.ignoreMerges = pre, ignore
	}

	t.pieces = make([]string, n)
	for i := range tokens {
		t.pieces[i] = t.decodePiece(i)
	}
	var specials []int
	for i, ty := range t.types {
		if (ty == typeControl || ty == typeUserDefined || ty == typeUnknown) && tokens[i] != "" {
			specials = append(specials, i)
		}
	}
	sort.SliceStable(specials, func(a, b int) bool { return len(tokens[specials[a]]) > len(tokens[specials[b]]) })
	for _, i := range specials {
		c := tokens[i][0]
		t.specials[c] = append(t.specials[c], i)
	}
	return t, nil
}

// decodePiece is the text a token stands for (llama.cpp's token_to_piece
// with special=false): control and unknown tokens decode to nothing.
func (t *Tokenizer) decodePiece(id int) string {
	s := t.tokens[id]
	switch t.types[id] {
	case typeControl, typeUnknown, typeUnused:
		return ""
	case typeUserDefined:
		return s
	case typeByte:
		if t.model == "llama" {
			if b, ok := parseByteToken(s); ok {
				return string([]byte{b})
			}
		}
	}
	if t.model == "llama" {
		return strings.ReplaceAll(s, "\u2581", " ")
	}
	return bpeDecodeText(s)
}

func parseByteToken(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	var b byte
	for _, c := range []byte(s[3:5]) {
		b <<= 4
		switch {
		case c >= '0' && c <= '9':
			b |= c - '0'
		case c >= 'A' && c <= 'F':
			b |= c - 'A' + 10
		case c >= 'a' && c <= 'f':
			b |= c - 'a' + 10
		default:
			return 0, false
		}
	}
	return b, true
}

// Model is "llama" (SentencePiece BPE) or "gpt2" (byte-level BPE).
func (t *Tokenizer) Model() string { return t.model }

// VocabSize is the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// BOS is the beginning-of-sequence id, or -1.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS is the end-of-sequence id, or -1.
func (t *Tokenizer) EOS() int { return t.eos }

// AddBOS reports tokenizer.ggml.add_bos_token (with llama.cpp's defaults).
func (t *Tokenizer) AddBOS() bool { return t.addBOS && t.bos >= 0 }

// IsEOG reports whether generation stops at id: EOS, EOT, EOM and tokens
// such as <|im_end|>, <|eot_id|> and <|endoftext|>.
func (t *Tokenizer) IsEOG(id int) bool { return id >= 0 && id < len(t.eog) && t.eog[id] }

// IsControl reports whether id is a control token (BOS, EOS, <|im_start|>, ...).
func (t *Tokenizer) IsControl(id int) bool {
	return id >= 0 && id < len(t.types) && t.types[id] == typeControl
}

// Piece is the text one token stands for, as llama.cpp's token_to_piece
// gives it: "▁Once" is " Once", a byte token is its single byte (not
// necessarily valid UTF-8), a control token is "". Ids out of range give "".
func (t *Tokenizer) Piece(id int) string {
	if id < 0 || id >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// Text is the token's text as stored in the vocabulary ("▁Once", "<0x0A>",
// "Ġthe", "<|im_end|>"), or "" for an id out of range. Token is its inverse.
func (t *Tokenizer) Text(id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// Token looks up a vocabulary text (as Text returns it).
func (t *Tokenizer) Token(piece string) (int, bool) {
	i, ok := t.index[piece]
	return i, ok
}

// Decode turns ids into text. Control tokens and ids out of range give
// nothing; byte tokens give their byte. Bytes that do not form valid UTF-8
// (a lone byte token, a character cut off at the end) are dropped, so the
// text is always valid UTF-8, as Ollama's and llama.cpp's servers return it.
func (t *Tokenizer) Decode(ids []int) string {
	n := 0
	for _, id := range ids {
		if id >= 0 && id < len(t.pieces) {
			n += len(t.pieces[id])
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, id := range ids {
		if id >= 0 && id < len(t.pieces) {
			b.WriteString(t.pieces[id])
		}
	}
	return validUTF8(b.String())
}

// validUTF8 drops the bytes of s that are not part of a valid character.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "")
}

// Decoder decodes a stream of ids and returns only complete, valid UTF-8:
// bytes of a character split across tokens are held back until the
// character is complete, and bytes that can never form one are dropped, so
// that the pieces, joined, are exactly Decode of the whole stream. Not safe
// for concurrent use.
type Decoder struct {
	t       *Tokenizer
	pending []byte
}

// NewDecoder starts a streaming decode.
func (t *Tokenizer) NewDecoder() *Decoder { return &Decoder{t: t, pending: make([]byte, 0, 8)} }

// Add decodes one more id and returns the text that is now complete.
func (d *Decoder) Add(id int) string {
	if id < 0 || id >= len(d.t.pieces) {
		return ""
	}
	p := d.t.pieces[id]
	if len(d.pending) == 0 {
		cut := completePrefix(p)
		if cut == len(p) {
			return validUTF8(p)
		}
		d.pending = append(d.pending, p[cut:]...)
		return validUTF8(p[:cut])
	}
	d.pending = append(d.pending, p...)
	cut := completePrefix(string(d.pending))
	out := validUTF8(string(d.pending[:cut]))
	d.pending = append(d.pending[:0], d.pending[cut:]...)
	return out
}

// Flush ends the stream and resets the decoder. A character still
// incomplete can no longer be completed, so its bytes are dropped; Flush
// returns what remains valid (nothing, in practice).
func (d *Decoder) Flush() string {
	s := validUTF8(string(d.pending))
	d.pending = d.pending[:0]
	return s
}

// completePrefix is the length of the longest prefix of s that does not end
// inside a character that later bytes could still complete. Invalid bytes
// count as complete: they can never become valid.
func completePrefix(s string) int {
	n := len(s)
	for i := n - 1; i >= 0 && i >= n-utf8.UTFMax; i-- {
		c := s[i]
		if c < 0x80 {
			return n // ASCII: nothing pending
		}
		if c >= 0xC0 { // a start byte
			if utf8.FullRuneInString(s[i:]) {
				return n
			}
			return i
		}
	}
	return n
}

// workspace is per-Encode scratch memory, pooled across calls.
type workspace struct {
	text    []byte
	symbols []symbol
	heap    []bigram
	key     []byte
	words   []span
	runes   []rune
	flags   []uint8
	tmp     []span
	next    []span
}

func (t *Tokenizer) getWorkspace() *workspace {
	if w, ok := t.pool.Get().(*workspace); ok {
		return w
	}
	return &workspace{}
}

// Encode turns text into token ids.
func (t *Tokenizer) Encode(text string, opts EncodeOptions) []int {
	out := make([]int, 0, len(text)/3+2)
	if opts.AddBOS && t.AddBOS() {
		out = append(out, t.bos)
	}
	w := t.getWorkspace()
	defer t.pool.Put(w)

	prevSpecial := true // a space prefix goes before the first text fragment
	for len(text) > 0 {
		pos, id := t.findSpecial(text, opts.ParseSpecial)
		frag := text[:pos]
		if len(frag) > 0 {
			if t.model == "llama" {
				out = t.encodeSPM(w, frag, t.addSpacePrefix && prevSpecial, out)
			} else {
				out = t.encodeBPE(w, frag, out)
			}
			prevSpecial = false
		}
		if id < 0 {
			break
		}
		out = append(out, id)
		prevSpecial = true
		text = text[pos+len(t.tokens[id]):]
	}
	if opts.AddBOS && t.addEOS && t.eos >= 0 {
		out = append(out, t.eos)
	}
	return out
}

// findSpecial finds the first special token in text (the longest one at
// that position) and returns its position and id, or len(text), -1.
func (t *Tokenizer) findSpecial(text string, parseSpecial bool) (int, int) {
	for i := 0; i < len(text); i++ {
		for _, id := range t.specials[text[i]] {
			if !parseSpecial && t.types[id] != typeUserDefined {
				continue
			}
			if strings.HasPrefix(text[i:], t.tokens[id]) {
				return i, id
			}
		}
	}
	return len(text), -1
}
