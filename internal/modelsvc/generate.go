package modelsvc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/llmo/llmo/internal/engine"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/service"
)

// generation is one admitted request's sequences on the engine.
type generation struct {
	s       *Service
	m       *model
	reqs    []engine.Request
	arrived time.Time
	ctx     context.Context // ends when the request ends or close is called
	chans   []<-chan engine.Event
	timers  []*seqTimer
	ended   []bool // the sequence's end was recorded in the metrics
	cancel  context.CancelFunc
	release func()
}

// start admits the request and submits its sequences. On success the
// caller must call g.close.
func (s *Service) start(ctx context.Context, m *model, reqs []engine.Request, arrived time.Time) (*generation, error) {
	release, err := s.admit(ctx, m, len(reqs))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	g := &generation{s: s, m: m, reqs: reqs, arrived: arrived, ctx: ctx, cancel: cancel, release: release}
	for _, r := range reqs {
		ch, err := m.b.Submit(ctx, r)
		if err != nil {
			g.close()
			return nil, err
		}
		g.chans = append(g.chans, ch)
		g.timers = append(g.timers, s.met.timer(m.id, arrived))
		g.ended = append(g.ended, false)
	}
	return g, nil
}

// close cancels whatever still runs (freeing KV slots at once) and
// releases the admission slots.
func (g *generation) close() {
	g.cancel()
	g.release()
	for i, t := range g.timers {
		if !g.ended[i] { // the client left or the request failed mid-way
			g.ended[i] = true
			t.finish("abort", len(g.reqs[i].Prompt), t.tokens)
		}
	}
}

// end records sequence i's end once.
func (g *generation) end(i int, reason string, prompt, completion int) {
	if !g.ended[i] {
		g.ended[i] = true
		g.timers[i].finish(reason, prompt, completion)
	}
}

// seqResult is one finished sequence.
type seqResult struct {
	text       strings.Builder
	tokens     []engine.Event // kept only when logprobs were asked for
	finish     string
	prompt     int
	completion int
	err        error
}

// event is one engine event tagged with its sequence.
type event struct {
	seq    int
	ev     engine.Event
	closed bool // the sequence's channel closed
}

// events merges the sequences' events into one channel, in arrival order.
// It closes when every sequence has ended or the generation is over.
func (g *generation) events() <-chan event {
	ctx := g.ctx
	out := make(chan event)
	done := make(chan struct{}, len(g.chans))
	for i, ch := range g.chans {
		go func() {
			defer func() { done <- struct{}{} }()
			for ev := range ch {
				select {
				case out <- event{seq: i, ev: ev}:
				case <-ctx.Done():
					return
				}
			}
			select {
			case out <- event{seq: i, closed: true}:
			case <-ctx.Done():
			}
		}()
	}
	go func() {
		for range g.chans {
			<-done
		}
		close(out)
	}()
	return out
}

// observe updates metrics and the sequence's result for one event. It
// returns true when the sequence has ended.
func (g *generation) observe(e event, res *seqResult, keepTokens bool) bool {
	t := g.timers[e.seq]
	if e.closed {
		if res.finish == "" && res.err == nil {
			res.err = errors.New("generation ended without finishing")
			g.end(e.seq, "abort", len(g.reqs[e.seq].Prompt), t.tokens)
		}
		return true
	}
	ev := e.ev
	if ev.Err != nil {
		res.err = ev.Err
		g.end(e.seq, "abort", len(g.reqs[e.seq].Prompt), t.tokens)
		return true
	}
	if !ev.Done {
		t.token(time.Now())
		if keepTokens {
			res.tokens = append(res.tokens, ev)
		}
	}
	res.text.WriteString(ev.Text)
	if ev.Done {
		res.finish = ev.FinishReason
		if res.finish == "" {
			res.finish = "stop"
		}
		res.prompt = ev.PromptTokens
		if res.prompt == 0 {
			res.prompt = len(g.reqs[e.seq].Prompt)
		}
		res.completion = max(ev.CompletionTokens, t.tokens)
		g.end(e.seq, res.finish, res.prompt, res.completion)
		return true
	}
	return false
}

// collect waits for every sequence to finish.
func (g *generation) collect(keepTokens bool) ([]*seqResult, error) {
	results := make([]*seqResult, len(g.chans))
	for i := range results {
		results[i] = &seqResult{}
	}
	for e := range g.events() {
		if e.closed && results[e.seq].finish != "" {
			continue
		}
		g.observe(e, results[e.seq], keepTokens)
	}
	if err := g.ctx.Err(); err != nil {
		return nil, ctxError(g.ctx, err)
	}
	for _, r := range results {
		if r.err != nil {
			return nil, r.err
		}
	}
	return results, nil
}

// ctxError explains why a request's context ended.
func ctxError(ctx context.Context, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return errs.Wrap(errs.Timeout, err, "request exceeded the server's time limit")
	}
	return errs.Wrap(errs.Canceled, context.Cause(ctx), "request canceled")
}

// sse writes a Server-Sent Events stream in OpenAI's framing.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // tell proxies not to buffer
	w.WriteHeader(http.StatusOK)
	s := &sse{w: w, rc: http.NewResponseController(w)}
	_ = s.rc.Flush()
	return s
}

func (s *sse) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, len(b)+8)
	buf = append(buf, "data: "...)
	buf = append(buf, b...)
	buf = append(buf, '\n', '\n')
	if _, err := s.w.Write(buf); err != nil {
		return err
	}
	return s.rc.Flush()
}

// fail sends an error event in OpenAI's envelope; streams cannot change
// their status once started.
func (s *sse) fail(err error) {
	_, body := service.Envelope(err, service.OpenAI)
	_ = s.send(body)
}

func (s *sse) done() error {
	if _, err := s.w.Write([]byte("data: [DONE]\n\n")); err != nil {
		return err
	}
	return s.rc.Flush()
}
