package tokenizer

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// span is a byte range of the text being pre-tokenized.
type span struct{ start, end int }

// A stage splits each word produced by the previous stage, as llama.cpp's
// unicode_regex_split applies its regexes one after another. Matches and the
// text between them both become words.
type stage interface {
	split(r []rune, f []uint8, from, to int, out []span) []span // rune indexes
}

// preTokenizer is the ordered list of stages for one tokenizer.ggml.pre.
type preTokenizer struct {
	name   string
	stages []stage
}

// Regexes (from llama.cpp's llm_tokenizer_bpe), implemented as scanners
// because Go's regexp has no lookahead for \s+(?!\S).
const (
	reGPT2   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	reLlama3 = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	reQwen2  = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// preTokenizerFor maps tokenizer.ggml.pre to its stages, and reports
// whether whole words found in the vocabulary skip merging (llama 3).
func preTokenizerFor(name string) (preTokenizer, bool, error) {
	switch name {
	case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2":
		return preTokenizer{name, []stage{llama3Stage{maxDigits: 3}}}, true, nil
	case "qwen2", "deepseek-r1-qwen", "megrez", "stablelm2", "hunyuan":
		return preTokenizer{name, []stage{llama3Stage{maxDigits: 1}}}, false, nil
	case "gpt-2", "gpt2", "mpt", "phi-2", "olmo", "jina-es", "jina-de", "jina-v1-en", "jina-v2-es",
		"jina-v2-de", "jina-v2-code", "roberta-bpe", "gigachat", "trillion":
		return preTokenizer{name, []stage{gpt2Stage{}}}, false, nil
	case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b":
		return preTokenizer{name, []stage{runStage{class: fNumber, chunk: 1}, gpt2Stage{}}}, false, nil
	case "", "default":
		return preTokenizer{"default", []stage{
			runStage{class: fPunctSym},
			gpt2Stage{},
			runStage{class: fNumber},
			runStage{class: fASCIIDigit, chunk: 3},
		}}, false, nil
	}
	return preTokenizer{}, false, fmt.Errorf("tokenizer: unsupported pre-tokenizer %q (tokenizer.ggml.pre)", name)
}

// Code point classes, as llama.cpp's unicode_cpt_flags.
const (
	fLetter uint8 = 1 << iota
	fNumber
	fSpace
	fDefined    // any assigned category; unassigned code points have no flags
	fPunctSym   // \p{P} or one of $+<=>^~|
	fASCIIDigit // [0-9]
)

func classify(r rune) uint8 {
	if r < utf8.RuneSelf {
		return asciiFlags[r]
	}
	return classifySlow(r)
}

var asciiFlags [utf8.RuneSelf]uint8

func init() {
	for r := rune(0); r < utf8.RuneSelf; r++ {
		asciiFlags[r] = classifySlow(r)
	}
}

func classifySlow(r rune) uint8 {
	var f uint8
	switch {
	case unicode.IsLetter(r):
		f |= fLetter
	case unicode.IsNumber(r):
		f |= fNumber
	case unicode.IsSpace(r):
		f |= fSpace
	}
	if unicode.IsPunct(r) || r == '$' || r == '+' || r == '<' || r == '=' || r == '>' || r == '^' || r == '~' || r == '|' {
		f |= fPunctSym
	}
	if r >= '0' && r <= '9' {
		f |= fASCIIDigit
	}
	if f != 0 || unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.C) {
		f |= fDefined
	}
	return f
}

// split cuts text into words (byte spans).
func (p preTokenizer) split(w *workspace, text string, out []span) []span {
	// Decode once: runes, their flags, and rune -> byte offsets.
	w.runes = w.runes[:0]
	w.flags = w.flags[:0]
	byteOff := w.tmp[:0]
	for i, r := range text {
		w.runes = append(w.runes, r)
		w.flags = append(w.flags, classify(r))
		byteOff = append(byteOff, span{start: i})
	}
	n := len(w.runes)
	// Words as rune spans; start with the whole text.
	cur := append(out, span{0, n})
	if n == 0 {
		return out
	}
	next := w.next[:0]
	for _, st := range p.stages {
		next = next[:0]
		for _, s := range cur {
			next = st.split(w.runes, w.flags, s.start, s.end, next)
		}
		cur, next = next, cur
	}
	// Convert rune spans to byte spans in place.
	res := out[:0]
	for _, s := range cur {
		b := span{start: byteOff[s.start].start, end: len(text)}
		if s.end < n {
			b.end = byteOff[s.end].start
		}
		if b.end > b.start {
			res = append(res, b)
		}
	}
	w.tmp = byteOff[:0]
	// Keep for next time the stage buffer that res (built over out) does not use.
	if len(p.stages)%2 == 1 {
		w.next = cur[:0]
	} else {
		w.next = next[:0]
	}
	return res
}

// runStage splits out runs of one class, cut into chunks of at most chunk
// code points (0: unlimited): \p{N}, \p{N}+, [0-9]{3}, [\p{P}$+<=>^~|]+.
type runStage struct {
	class uint8
	chunk int
}

func (s runStage) split(_ []rune, f []uint8, from, to int, out []span) []span {
	start := from
	for pos := from; pos < to; {
		if f[pos]&s.class == 0 {
			pos++
			continue
		}
		if pos > start {
			out = append(out, span{start, pos})
		}
		end := pos
		for end < to && f[end]&s.class != 0 && (s.chunk == 0 || end-pos < s.chunk) {
			end++
		}
		out = append(out, span{pos, end})
		pos, start = end, end
	}
	if to > start {
		out = append(out, span{start, to})
	}
	return out
}

// gpt2Stage is reGPT2, following llama.cpp's unicode_regex_split_custom_gpt2.
type gpt2Stage struct{}

func (gpt2Stage) split(r []rune, f []uint8, from, to int, out []span) []span {
	flags := func(i int) uint8 {
		if i >= from && i < to {
			return f[i]
		}
		return 0
	}
	prev := from
	add := func(end int) {
		if end > prev {
			out = append(out, span{prev, end})
		}
		prev = end
	}
	for pos := from; pos < to; {
		c := r[pos]
		if c == '\'' && pos+1 < to {
			n := r[pos+1]
			if n == 's' || n == 't' || n == 'm' || n == 'd' {
				pos += 2
				add(pos)
				continue
			}
			if pos+2 < to {
				nn := r[pos+2]
				if (n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l') {
					pos += 3
					add(pos)
					continue
				}
			}
		}
		f2 := flags(pos)
		if c == ' ' {
			f2 = flags(pos + 1)
		}
		if f2&fLetter != 0 || f2&fNumber != 0 {
			class := f2 & (fLetter | fNumber)
			if c == ' ' {
				pos++
			}
			for flags(pos)&class != 0 {
				pos++
			}
			add(pos)
			continue
		}
		if isOther(f2) {
			if c == ' ' {
				pos++
			}
			for isOther(flags(pos)) {
				pos++
			}
			add(pos)
			continue
		}
		ws := 0
		for flags(pos+ws)&fSpace != 0 {
			ws++
		}
		if ws > 1 && pos+ws < to { // \s+(?!\S): leave the last space to the next word
			pos += ws - 1
			add(pos)
			continue
		}
		if ws > 0 {
			pos += ws
			add(pos)
			continue
		}
		pos++
		add(pos)
	}
	return out
}

// isOther is [^\s\p{L}\p{N}] for an assigned code point.
func isOther(f uint8) bool { return f&(fSpace|fLetter|fNumber) == 0 && f&fDefined != 0 }

// llama3Stage is reLlama3 (maxDigits 3) or reQwen2 (maxDigits 1),
// following llama.cpp's unicode_regex_split_custom_llama3.
type llama3Stage struct{ maxDigits int }

func (s llama3Stage) split(r []rune, f []uint8, from, to int, out []span) []span {
	flags := func(i int) uint8 {
		if i >= from && i < to {
			return f[i]
		}
		return 0
	}
	prev := from
	add := func(end int) {
		if end > prev {
			out = append(out, span{prev, end})
		}
		prev = end
	}
	for pos := from; pos < to; {
		c := r[pos]
		fl := f[pos]
		if c == '\'' && pos+1 < to { // (?i:'s|'t|'re|'ve|'m|'ll|'d)
			n := unicode.ToLower(r[pos+1])
			if n == 's' || n == 't' || n == 'm' || n == 'd' {
				pos += 2
				add(pos)
				continue
			}
			if pos+2 < to {
				nn := unicode.ToLower(r[pos+2])
				if (n == 'r' && nn == 'e') || (n == 'v' && nn == 'e') || (n == 'l' && nn == 'l') {
					pos += 3
					add(pos)
					continue
				}
			}
		}
		// [^\r\n\p{L}\p{N}]?\p{L}+
		if !(c == '\r' || c == '\n' || fl&fNumber != 0) {
			if fl&fLetter != 0 || flags(pos+1)&fLetter != 0 {
				pos++
				for flags(pos)&fLetter != 0 {
					pos++
				}
				add(pos)
				continue
			}
		}
		// \p{N}{1,maxDigits}
		if fl&fNumber != 0 {
			ini := pos
			for flags(pos)&fNumber != 0 {
				pos++
				if pos-ini >= s.maxDigits {
					add(pos)
					ini = pos
				}
			}
			add(pos)
			continue
		}
		// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
		f2 := fl
		if c == ' ' {
			f2 = flags(pos + 1)
		}
		if isOther(f2) {
			if c == ' ' {
				pos++
			}
			for isOther(flags(pos)) {
				pos++
			}
			for pos < to && (r[pos] == '\r' || r[pos] == '\n') {
				pos++
			}
			add(pos)
			continue
		}
		ws, lastNL := 0, 0
		for flags(pos+ws)&fSpace != 0 {
			if c2 := r[pos+ws]; c2 == '\r' || c2 == '\n' {
				lastNL = pos + ws + 1
			}
			ws++
		}
		if lastNL > 0 { // \s*[\r\n]+
			pos = lastNL
			add(pos)
			continue
		}
		if ws > 1 && pos+ws < to { // \s+(?!\S)
			pos += ws - 1
			add(pos)
			continue
		}
		if ws > 0 { // \s+
			pos += ws
			add(pos)
			continue
		}
		pos++
		add(pos)
	}
	return out
}
