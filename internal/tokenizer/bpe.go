package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// byteEnc is GPT-2's bytes_to_unicode: printable bytes stand for
// themselves, the others for code points from U+0100 up, so that every
// byte string is a string of visible characters.
var byteEnc [256]string
var byteDec = map[rune]byte{}

func init() {
	n := 0
	for b := 0; b < 256; b++ {
		var r rune
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			r = rune(b)
		} else {
			r = rune(256 + n)
			n++
		}
		byteEnc[b] = string(r)
		byteDec[r] = byte(b)
	}
}

// bpeDecodeText maps a byte-level token text back to bytes.
func bpeDecodeText(s string) string {
	var b strings.Builder
	for _, r := range s {
		if c, ok := byteDec[r]; ok {
			b.WriteByte(c)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// encodeBPE is llama.cpp's llm_tokenizer_bpe_session::tokenize: split the
// text into words with the pre-tokenizer, map each word's bytes to GPT-2's
// visible characters, then merge adjacent pairs lowest merge rank first.
func (t *Tokenizer) encodeBPE(w *workspace, frag string, out []int) []int {
	w.words = t.pre.split(w, frag, w.words[:0])
	for _, word := range w.words {
		w.text = w.text[:0]
		for i := word.start; i < word.end; i++ {
			w.text = append(w.text, byteEnc[frag[i]]...)
		}
		if t.ignoreMerges {
			if id, ok := t.index[string(w.text)]; ok {
				out = append(out, id)
				continue
			}
		}
		w.splitChars(0, len(w.text))
		h := bigramHeap(w.heap[:0])
		for i := 1; i < len(w.symbols); i++ {
			t.bpeBigram(w, &h, int32(i-1), int32(i))
		}
		syms := w.symbols
		for len(h) > 0 {
			b := h.pop()
			left, ok := merge(syms, b)
			if !ok {
				continue // outdated
			}
			t.bpeBigram(w, &h, syms[left].prev, left)
			t.bpeBigram(w, &h, left, syms[left].next)
		}
		w.heap = h[:0]
		for i := int32(0); i != -1 && len(syms) > 0; i = syms[i].next {
			s := syms[i]
			piece := w.text[s.start : s.start+s.n]
			if id, ok := t.index[string(piece)]; ok {
				out = append(out, id)
				continue
			}
			// Not a token: fall back to one token per byte (every
			// byte-level vocabulary has all 256 byte characters).
			for len(piece) > 0 {
				_, n := utf8.DecodeRune(piece)
				if id, ok := t.index[string(piece[:n])]; ok {
					out = append(out, id)
				} else if t.unk >= 0 {
					out = append(out, t.unk)
				}
				piece = piece[n:]
			}
		}
	}
	return out
}

func (t *Tokenizer) bpeBigram(w *workspace, h *bigramHeap, left, right int32) {
	if left < 0 || right < 0 {
		return
	}
	l, r := w.symbols[left], w.symbols[right]
	w.key = append(w.key[:0], w.text[l.start:l.start+l.n]...)
	w.key = append(w.key, ' ')
	w.key = append(w.key, w.text[r.start:r.start+r.n]...)
	rank, ok := t.ranks[string(w.key)]
	if !ok {
		return
	}
	h.push(newBigram(left, l.n+r.n, -float32(rank)))
}
