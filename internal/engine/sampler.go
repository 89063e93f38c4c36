package engine

import (
	"math"
	"math/rand/v2"
)

// penaltyWindow is how many recent tokens the penalties look at, as
// llama.cpp's penalty_last_n default.
const penaltyWindow = 64

// sampler picks tokens for one sequence. Its buffers are vocabulary-sized
// and allocated once per KV slot, so sampling allocates nothing per token.
type sampler struct {
	cfg    Sampling
	rng    *rand.Rand
	pcg    *rand.PCG
	counts []int32   // occurrences in the penalty window
	heap   []int32   // candidate token ids, max-heap by logit
	probs  []float32 // candidate probabilities, parallel to the popped order
	window []int     // ring of the last penaltyWindow tokens
	wn     int       // tokens in the window
	wpos   int
}

func newSampler(vocab int) *sampler {
	pcg := rand.NewPCG(0, 0)
	return &sampler{
		pcg:    pcg,
		rng:    rand.New(pcg),
		counts: make([]int32, vocab),
		heap:   make([]int32, vocab),
		probs:  make([]float32, vocab),
		window: make([]int, penaltyWindow),
	}
}

// reset prepares the sampler for a new sequence.
func (s *sampler) reset(cfg Sampling, seed uint64) {
	s.cfg = cfg
	s.pcg.Seed(seed, 0x9e3779b97f4a7c15)
	for i := range s.wn {
		s.counts[s.window[i]] = 0
	}
	s.wn, s.wpos = 0, 0
}

// accept records a token (prompt or generated) for the penalties.
func (s *sampler) accept(tok int) {
	if s.wn == penaltyWindow {
		s.counts[s.window[s.wpos]]--
	} else {
		s.wn++
	}
	s.window[s.wpos] = tok
	s.counts[tok]++
	s.wpos = (s.wpos + 1) % penaltyWindow
}

func (s *sampler) penalize(logits []float32) {
	c := &s.cfg
	rep := float32(c.RepetitionPenalty)
	if (rep == 0 || rep == 1) && c.PresencePenalty == 0 && c.FrequencyPenalty == 0 {
		return
	}
	for i := range s.wn {
		tok := s.window[i]
		n := s.counts[tok]
		if n <= 0 {
			continue // already applied (counts are set negative below)
		}
		l := logits[tok]
		if rep > 0 && rep != 1 {
			if l > 0 {
				l /= rep
			} else {
				l *= rep
			}
		}
		l -= float32(c.FrequencyPenalty)*float32(n) + float32(c.PresencePenalty)
		logits[tok] = l
		s.counts[tok] = -n // mark as applied
	}
	for i := range s.wn {
		if n := s.counts[s.window[i]]; n < 0 {
			s.counts[s.window[i]] = -n
		}
	}
}

// sample picks the next token from logits (modified in place).
func (s *sampler) sample(logits []float32) int {
	s.penalize(logits)
	c := &s.cfg
	if c.Temperature <= 0 || c.TopK == 1 {
		return argmax(logits)
	}
	n := len(logits)
	if (c.TopK <= 0 || c.TopK >= n) && (c.TopP <= 0 || c.TopP >= 1) && c.MinP <= 0 {
		return s.sampleAll(logits)
	}
	// Candidates in descending logit order, popped from a heap only as far
	// as top-k, top-p and min-p need: no full sort of the vocabulary.
	h := s.heap[:n]
	for i := range h {
		h[i] = int32(i)
	}
	for i := n/2 - 1; i >= 0; i-- {
		siftDown(h, logits, i, n)
	}
	mx := logits[h[0]]
	var z float64
	for _, l := range logits {
		z += math.Exp(float64(l - mx))
	}
	k := n
	if c.TopK > 0 && c.TopK < n {
		k = c.TopK
	}
	topP := c.TopP
	if topP <= 0 || topP > 1 {
		topP = 1
	}
	var cum float64
	size := n
	kept := 0
	for kept < k && size > 0 {
		tok := h[0]
		p := math.Exp(float64(logits[tok]-mx)) / z
		if kept > 0 && c.MinP > 0 && p < c.MinP/z {
			break // p_max is exp(0)/z: min-p keeps p >= min_p * p_max
		}
		// Move the popped max to the end of the heap array, where the
		// kept candidates collect in descending order.
		size--
		h[0], h[size] = h[size], tok
		siftDown(h, logits, 0, size)
		kept++
		cum += p
		if cum >= topP {
			break
		}
	}
	// Kept candidates are h[n-kept:] in reverse order; apply temperature.
	cand := h[n-kept:]
	inv := float32(1 / c.Temperature)
	var zt float64
	for i, tok := range cand {
		e := math.Exp(float64((logits[tok] - mx) * inv))
		s.probs[i] = float32(e)
		zt += e
	}
	u := s.rng.Float64() * zt
	for i, tok := range cand {
		u -= float64(s.probs[i])
		if u <= 0 {
			return int(tok)
		}
	}
	return int(cand[len(cand)-1])
}

// sampleAll draws from the whole vocabulary at the configured temperature.
// With no top-k, top-p or min-p there is nothing to rank, so it skips the
// heap: one pass for the maximum, one for the weights, one to draw. (Plain
// temperature sampling is the OpenAI default and was 70% of a decode step
// with a 32000-token vocabulary when it went through the heap.)
func (s *sampler) sampleAll(logits []float32) int {
	mx := logits[argmax(logits)]
	inv := float32(1 / s.cfg.Temperature)
	probs := s.probs[:len(logits)]
	var zt float64
	for i, l := range logits {
		d := (l - mx) * inv
		if d < -40 { // weight below 1e-17 of the best: cannot be drawn in float64
			probs[i] = 0
			continue
		}
		e := math.Exp(float64(d))
		probs[i] = float32(e)
		zt += e
	}
	u := s.rng.Float64() * zt
	for i, p := range probs {
		u -= float64(p)
		if u <= 0 {
			return i
		}
	}
	return len(logits) - 1
}

func argmax(x []float32) int {
	best, bv := 0, float32(math.Inf(-1))
	for i, v := range x {
		if v > bv {
			best, bv = i, v
		}
	}
	return best
}

func siftDown(h []int32, key []float32, i, n int) {
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		j := l
		if r := l + 1; r < n && key[h[r]] > key[h[l]] {
			j = r
		}
		if key[h[j]] <= key[h[i]] {
			return
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}

// logSoftmax returns log p(tok) and, when top > 0, fills dst with the top
// tokens by probability (dst's length is the count).
func (s *sampler) logprobs(logits []float32, tok int, dst []TokenProb) float32 {
	mx := logits[argmax(logits)]
	var z float64
	for _, l := range logits {
		z += math.Exp(float64(l - mx))
	}
	lz := float32(math.Log(z))
	if len(dst) > 0 {
		n := len(logits)
		h := s.heap[:n]
		for i := range h {
			h[i] = int32(i)
		}
		for i := n/2 - 1; i >= 0; i-- {
			siftDown(h, logits, i, n)
		}
		size := n
		for i := range dst {
			t := h[0]
			dst[i] = TokenProb{Token: int(t), Logprob: logits[t] - mx - lz}
			size--
			h[0] = h[size]
			siftDown(h, logits, 0, size)
		}
	}
	return logits[tok] - mx - lz
}
