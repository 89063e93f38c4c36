package engine

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/tokenizer"
)

// prefillChunk caps the prompt tokens one sequence feeds per step, so that
// a long prompt does not stall the decode steps of the others for long.
const prefillChunk = 128

// Scheduler runs continuous batching over a model's KV slots. One goroutine
// (Run) owns the batch: at every step it admits waiting sequences into free
// slots, drops cancelled ones, feeds prompt chunks and one token of every
// decoding sequence through a single forward pass (so each weight is read
// once per step for the whole batch), and samples.
type Scheduler struct {
	m      *Model
	r      *runner
	slots  []*seq // by KV slot; nil = free
	samp   []*sampler
	active []*seq

	mu      sync.Mutex
	pending []*seq
	stopped error
	wake    chan struct{}
	stats   Stats

	tops []TokenProb
}

// seq is one request's state, owned by the Run goroutine once admitted.
type seq struct {
	ctx      context.Context
	req      Request
	events   chan Event
	slot     int
	tokens   []int // prompt then generated
	fed      int   // tokens in the KV cache
	chunk    int   // prompt tokens in the current step
	row      int   // this step's logits row
	gen      int
	last     int // the next token to feed (decode)
	dec      *tokenizer.Decoder
	held     string // text withheld because it may start a stop string
	stopMax  int
	maxToks  int
	enqueued time.Time
}

// NewScheduler makes the scheduler of m with m's MaxBatch slots; start it
// with Run.
func NewScheduler(m *Model) *Scheduler {
	n := m.opts.MaxBatch
	maxT := max(n, prefillChunk)
	s := &Scheduler{
		m:     m,
		r:     newRunner(m, n, m.opts.CtxLen, maxT, n),
		slots: make([]*seq, n),
		samp:  make([]*sampler, n),
		wake:  make(chan struct{}, 1),
		tops:  make([]TokenProb, 20),
	}
	for i := range s.samp {
		s.samp[i] = newSampler(m.hp.vocab)
	}
	s.stats.Slots = n
	return s
}

// Submit validates r and queues it. The returned channel receives one
// Event per generated token and a final Done event, then closes; it is
// buffered for the whole sequence, so a slow reader never blocks the loop.
// Cancelling ctx makes the sequence leave the batch at the next step.
func (s *Scheduler) Submit(ctx context.Context, r Request) (<-chan Event, error) {
	ctxLen := s.m.opts.CtxLen
	switch {
	case len(r.Prompt) == 0:
		return nil, errs.Param("prompt", "prompt is empty")
	case len(r.Prompt) >= ctxLen:
		return nil, errs.Param("prompt", "prompt has %d tokens; the context holds %d", len(r.Prompt), ctxLen)
	case r.MaxTokens < 0:
		return nil, errs.Param("max_tokens", "max_tokens must not be negative")
	case len(r.Prompt)+r.MaxTokens > ctxLen:
		return nil, errs.Param("max_tokens", "prompt (%d tokens) plus max_tokens (%d) is over the context length %d", len(r.Prompt), r.MaxTokens, ctxLen)
	case r.TopLogprobs < 0 || r.TopLogprobs > 20:
		return nil, errs.Param("top_logprobs", "top_logprobs must be between 0 and 20")
	}
	if err := checkSampling(r.Sampling); err != nil {
		return nil, err
	}
	for _, id := range r.Prompt {
		if id < 0 || id >= s.m.hp.vocab {
			return nil, errs.Param("prompt", "token id %d is out of range", id)
		}
	}
	q := &seq{ctx: ctx, req: r, slot: -1, enqueued: time.Now()}
	q.maxToks = r.MaxTokens
	if q.maxToks == 0 {
		q.maxToks = ctxLen - len(r.Prompt)
	}
	q.events = make(chan Event, q.maxToks+1)
	for _, st := range r.Stop {
		q.stopMax = max(q.stopMax, len(st))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped != nil {
		return nil, s.stopped
	}
	s.pending = append(s.pending, q)
	s.stats.Waiting = len(s.pending)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return q.events, nil
}

func checkSampling(p Sampling) error {
	switch {
	case p.Temperature < 0 || p.Temperature > 100:
		return errs.Param("temperature", "temperature must be between 0 and 100")
	case p.TopK < 0:
		return errs.Param("top_k", "top_k must not be negative")
	case p.TopP < 0 || p.TopP > 1:
		return errs.Param("top_p", "top_p must be between 0 and 1")
	case p.MinP < 0 || p.MinP > 1:
		return errs.Param("min_p", "min_p must be between 0 and 1")
	case p.RepetitionPenalty < 0:
		return errs.Param("repetition_penalty", "repetition_penalty must not be negative")
	case p.PresencePenalty < -2 || p.PresencePenalty > 2:
		return errs.Param("presence_penalty", "presence_penalty must be between -2 and 2")
	case p.FrequencyPenalty < -2 || p.FrequencyPenalty > 2:
		return errs.Param("frequency_penalty", "frequency_penalty must be between -2 and 2")
	}
	return nil
}

// Stats is a snapshot of the scheduler's state.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Run is the one loop that owns the batch. It returns ctx's error when ctx
// is done, after ending every sequence with an Unavailable error.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		s.admit()
		if len(s.active) == 0 {
			select {
			case <-ctx.Done():
				s.shutdown(ctx.Err())
				return ctx.Err()
			case <-s.wake:
				continue
			}
		}
		if ctx.Err() != nil {
			s.shutdown(ctx.Err())
			return ctx.Err()
		}
		s.step()
	}
}

func (s *Scheduler) shutdown(cause error) {
	err := errs.Wrap(errs.Unavailable, cause, "the engine stopped")
	s.mu.Lock()
	s.stopped = err
	pending := s.pending
	s.pending = nil
	s.mu.Unlock()
	for _, q := range pending {
		s.finish(q, "", err)
	}
	for _, q := range s.active {
		s.finish(q, "", err)
	}
	s.active = s.active[:0]
}

// admit moves waiting sequences into free slots.
func (s *Scheduler) admit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.pending) > 0 {
		q := s.pending[0]
		if q.ctx.Err() != nil {
			s.pending = s.pending[1:]
			q.events <- Event{Done: true, Err: errs.As(q.ctx.Err()), PromptTokens: len(q.req.Prompt)}
			close(q.events)
			continue
		}
		slot := -1
		for i, o := range s.slots {
			if o == nil {
				slot = i
				break
			}
		}
		if slot < 0 {
			break
		}
		s.pending = s.pending[1:]
		q.slot = slot
		s.slots[slot] = q
		q.tokens = append(make([]int, 0, len(q.req.Prompt)+q.maxToks), q.req.Prompt...)
		q.dec = s.m.tok.NewDecoder()
		seed := uint64(q.req.Sampling.Seed)
		if !q.req.Sampling.HasSeed {
			seed = rand.Uint64()
		}
		sp := s.samp[slot]
		sp.reset(q.req.Sampling, seed)
		for _, t := range q.req.Prompt {
			sp.accept(t)
		}
		s.active = append(s.active, q)
	}
	s.stats.Waiting = len(s.pending)
	s.stats.Running = len(s.active)
}

// step runs one forward pass over the active sequences and samples.
func (s *Scheduler) step() {
	// Cancelled sequences leave first, freeing their slots.
	kept := s.active[:0]
	for _, q := range s.active {
		if err := q.ctx.Err(); err != nil {
			s.finish(q, "", errs.As(err))
			continue
		}
		kept = append(kept, q)
	}
	clear(s.active[len(kept):])
	s.active = kept
	if len(kept) == 0 {
		return
	}
	b := &s.r.b
	b.reset()
	// Decode tokens first, then prompt chunks in arrival order.
	// Each sequence remembers which logits row is its own: rows follow the
	// batch order, which is not the order of s.active.
	for _, q := range s.active {
		if q.fed >= len(q.req.Prompt) {
			q.row = b.nLogits
			b.add(q.last, q.slot, q.fed, true)
		}
	}
	for _, q := range s.active {
		if q.fed < len(q.req.Prompt) {
			n := min(len(q.req.Prompt)-q.fed, prefillChunk, s.r.maxT-b.n)
			q.chunk = n
			for i := range n {
				p := q.fed + i
				last := p == len(q.req.Prompt)-1
				if last {
					q.row = b.nLogits
				}
				b.add(q.req.Prompt[p], q.slot, p, last)
			}
		}
	}
	s.r.forward(false)

	vocab := s.m.hp.vocab
	kept = s.active[:0]
	for _, q := range s.active {
		done := false
		if q.fed >= len(q.req.Prompt) {
			q.fed++
			done = s.emit(q, s.r.logits[q.row*vocab:(q.row+1)*vocab])
		} else {
			q.fed += q.chunk
			if q.fed == len(q.req.Prompt) {
				done = s.emit(q, s.r.logits[q.row*vocab:(q.row+1)*vocab])
			}
		}
		if !done {
			kept = append(kept, q)
		}
	}
	clear(s.active[len(kept):])
	s.active = kept

	s.mu.Lock()
	s.stats.Steps++
	s.stats.LastStep = time.Now()
	s.stats.Running = len(s.active)
	used := 0
	for _, q := range s.active {
		used += q.fed
	}
	s.stats.KVUsage = float64(used) / float64(len(s.slots)*s.m.opts.CtxLen)
	s.mu.Unlock()
}

// emit samples q's next token from logits and sends its event; it reports
// whether the sequence finished (and left its slot).
func (s *Scheduler) emit(q *seq, logits []float32) bool {
	sp := s.samp[q.slot]
	tok := sp.sample(logits)
	ev := Event{Token: tok}
	if q.req.Logprobs || q.req.TopLogprobs > 0 {
		tops := s.tops[:q.req.TopLogprobs]
		ev.Logprob = sp.logprobs(logits, tok, tops)
		if len(tops) > 0 {
			ev.Top = make([]TokenProb, len(tops))
			for i, t := range tops {
				t.Text = s.m.tok.Piece(t.Token)
				ev.Top[i] = t
			}
		}
	}
	q.gen++
	sp.accept(tok)
	q.tokens = append(q.tokens, tok)
	q.last = tok
	if !q.req.IgnoreEOS && s.m.tok.IsEOG(tok) {
		ev.Text = q.held + q.dec.Flush()
		q.held = ""
		s.send(q, ev)
		s.finish(q, "stop", nil)
		return true
	}
	text := q.held + q.dec.Add(tok)
	q.held = ""
	if q.stopMax > 0 {
		if i, n := findStop(text, q.req.Stop); n > 0 {
			ev.Text = text[:i]
			s.send(q, ev)
			s.finish(q, "stop", nil)
			return true
		}
		// Withhold the longest tail that could begin a stop string.
		keep := partialStop(text, q.req.Stop)
		text, q.held = text[:len(text)-keep], text[len(text)-keep:]
	}
	ev.Text = text
	if q.gen >= q.maxToks {
		ev.Text += q.held + q.dec.Flush()
		q.held = ""
		s.send(q, ev)
		s.finish(q, "length", nil)
		return true
	}
	s.send(q, ev)
	return false
}

func (s *Scheduler) send(q *seq, ev Event) {
	ev.PromptTokens = len(q.req.Prompt)
	ev.CompletionTokens = q.gen
	q.events <- ev // never blocks: the buffer holds the whole sequence
}

// finish ends q with a Done event and frees its slot.
func (s *Scheduler) finish(q *seq, reason string, err error) {
	ev := Event{Done: true, FinishReason: reason, Err: err, PromptTokens: len(q.req.Prompt), CompletionTokens: q.gen}
	if err != nil {
		ev.FinishReason = ""
	}
	q.events <- ev
	close(q.events)
	if q.slot >= 0 && s.slots[q.slot] == q {
		s.slots[q.slot] = nil
	}
}

// findStop returns the index and length of the earliest stop string in text.
func findStop(text string, stops []string) (int, int) {
	best, n := -1, 0
	for _, st := range stops {
		if st == "" {
			continue
		}
		if i := strings.Index(text, st); i >= 0 && (best < 0 || i < best) {
			best, n = i, len(st)
		}
	}
	return best, n
}

// partialStop is the length of the longest suffix of text that is a proper
// prefix of a stop string.
func partialStop(text string, stops []string) int {
	keep := 0
	for _, st := range stops {
		for k := min(len(st)-1, len(text)); k > keep; k-- {
			if strings.HasSuffix(text, st[:k]) {
				keep = k
				break
			}
		}
	}
	return keep
}
