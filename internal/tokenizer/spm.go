package tokenizer

import "math"

// symbol is a piece of the text being merged, in a doubly linked list.
type symbol struct {
	start, n   int32 // bytes of the workspace text
	prev, next int32
}

// bigram is a candidate merge of a symbol with the symbol after it.
// Higher score merges first: the token's score for SPM, minus the merge
// rank for BPE (ranks below 2^24 are exact in a float32). Ties go to the
// leftmost pair, as in llama.cpp. Score and position are packed into one
// key so the heap compares a single integer. The right symbol is not
// stored: the pair is still valid exactly when
// left.n + symbols[left.next].n == size, since symbols only ever grow by
// absorbing their right neighbour.
type bigram struct {
	key  uint64 // orderable score bits << 32 | ^left
	size int32
}

func newBigram(left, size int32, score float32) bigram {
	b := math.Float32bits(score)
	if b&(1<<31) != 0 {
		b = ^b
	} else {
		b |= 1 << 31
	}
	return bigram{key: uint64(b)<<32 | uint64(^uint32(left)), size: size}
}

func (b bigram) left() int32 { return int32(^uint32(b.key)) }

// bigramHeap is a 4-ary max-heap: shallower than a binary heap, and each
// node's children share a cache line.
type bigramHeap []bigram

func (h bigramHeap) before(i, j int) bool { return h[i].key > h[j].key }

func (h *bigramHeap) push(b bigram) {
	*h = append(*h, b)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !s.before(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *bigramHeap) pop() bigram {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		c := 4*i + 1
		if c >= len(s) {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < len(s); k++ {
			if s.before(k, m) {
				m = k
			}
		}
		if !s.before(m, i) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// utf8Len is llama.cpp's unicode_len_utf8: the length of a UTF-8 sequence
// from its first byte (1 for continuation bytes, so invalid input is split
// byte by byte).
func utf8Len(c byte) int {
	return [16]int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4}[c>>4]
}

// splitChars fills w.symbols with one symbol per UTF-8 character of w.text[from:to].
func (w *workspace) splitChars(from, to int) {
	w.symbols = w.symbols[:0]
	for off := from; off < to; {
		n := min(utf8Len(w.text[off]), to-off)
		idx := int32(len(w.symbols))
		next := idx + 1
		if off+n == to {
			next = -1
		}
		w.symbols = append(w.symbols, symbol{start: int32(off), n: int32(n), prev: idx - 1, next: next})
		off += n
	}
}

// encodeSPM is llama.cpp's llm_tokenizer_spm_session::tokenize: spaces
// become U+2581, then the highest-scoring adjacent pair that is a token is
// merged until none is left; leftover characters fall back to byte tokens.
func (t *Tokenizer) encodeSPM(w *workspace, frag string, spacePrefix bool, out []int) []int {
	w.text = w.text[:0]
	if spacePrefix {
		w.text = append(w.text, "\u2581"...)
	}
	for i := 0; i < len(frag); i++ {
		if frag[i] == ' ' {
			w.text = append(w.text, "\u2581"...)
		} else {
			w.text = append(w.text, frag[i])
		}
	}
	w.splitChars(0, len(w.text))
	h := bigramHeap(w.heap[:0])
	for i := 1; i < len(w.symbols); i++ {
		t.spmBigram(w, &h, int32(i-1), int32(i))
	}
	syms := w.symbols
	for len(h) > 0 {
		b := h.pop()
		left, ok := merge(syms, b)
		if !ok {
			continue // one side was merged already
		}
		t.spmBigram(w, &h, syms[left].prev, left)
		t.spmBigram(w, &h, left, syms[left].next)
	}
	w.heap = h[:0]
	for i := int32(0); i != -1 && len(syms) > 0; i = syms[i].next {
		s := syms[i]
		piece := w.text[s.start : s.start+s.n]
		if id, ok := t.index[string(piece)]; ok {
			out = append(out, id)
			continue
		}
		// Merged symbols are always tokens, so this is a single character
		// missing from the vocabulary: emit its bytes.
		for _, c := range piece {
			if id := t.byteTok[c]; id >= 0 {
				out = append(out, id)
			}
		}
	}
	return out
}

func (t *Tokenizer) spmBigram(w *workspace, h *bigramHeap, left, right int32) {
	if left < 0 || right < 0 {
		return
	}
	l, r := w.symbols[left], w.symbols[right]
	text := w.text[l.start : l.start+l.n+r.n]
	id, ok := t.index[string(text)]
	if !ok {
		return
	}
	h.push(newBigram(left, l.n+r.n, t.scores[id]))
}

// merge joins the symbol a queued bigram starts at with its right
// neighbour, unlinking the neighbour. It reports false when the bigram is
// stale: either side was merged into something else after it was queued.
// Both the SentencePiece and the byte-level BPE encoders merge this way;
// they differ only in how they rank bigrams.
func merge(syms []symbol, b bigram) (left int32, ok bool) {
	left = b.left()
	l := &syms[left]
	if l.n == 0 || l.next < 0 || l.n+syms[l.next].n != b.size {
		return left, false
	}
	r := &syms[l.next]
	l.n += r.n
	r.n = 0
	l.next = r.next
	if r.next >= 0 {
		syms[r.next].prev = left
	}
	return left, true
}
