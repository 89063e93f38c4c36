package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/llmo/llmo/api"
	"github.com/llmo/llmo/internal/gateway/upstream"
	"github.com/llmo/llmo/internal/reqinfo"
)

var (
	dataPrefix = []byte("data:")
	doneEvent  = []byte("[DONE]")
	usageKey   = []byte(`"usage":{`)
)

// streamErrorEvent ends a stream whose upstream failed mid-way: an SSE
// event in the OpenAI error shape (the openai SDKs raise it as an APIError),
// then [DONE], so no client is left waiting.
const streamErrorEvent = "data: {\"error\":{\"message\":\"the model replica failed mid-stream; the response is incomplete\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"stream_interrupted\"}}\n\ndata: [DONE]\n\n"

// stream copies an SSE response event by event, flushing each at once. It
// reads the usage chunk for accounting and drops it when the client did not
// ask for it (injected).
func (p *Proxy) stream(actx context.Context, cancel context.CancelCauseFunc, timer *attemptTimer, w http.ResponseWriter, r *http.Request,
	req *Request, rep *upstream.Replica, resp *http.Response, injected bool, start time.Time) {
	defer resp.Body.Close()
	copyHeader(w.Header(), resp.Header)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()

	bp := p.bufs.Get().(*[]byte)
	defer p.bufs.Put(bp)
	br := bufio.NewReaderSize(resp.Body, len(*bp))
	// timer now fires after StreamIdleTimeout of silence (errStreamIdle)
	// or at the total deadline.

	var event []byte // the current event's lines
	var usage *api.Usage
	sawDone, first := false, true
	var readErr error
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// An event line longer than the buffer: keep collecting it.
			event = append(event, line...)
			continue
		}
		if len(line) > 0 {
			timer.reset(p.cfg.StreamIdleTimeout)
			event = append(event, line...)
			if len(bytes.TrimRight(line, "\r\n")) == 0 {
				// Blank line: the event is complete.
				drop := false
				if data := eventData(event); data != nil {
					switch {
					case bytes.Equal(data, doneEvent):
						sawDone = true
					case bytes.Contains(data, usageKey):
						if u, only := parseUsageChunk(data); u != nil {
							usage = u
							drop = injected && only
						}
					}
					if first && !sawDone && !drop {
						first = false
						d := time.Since(start)
						p.m.ttft.WithLabelValues(req.Model).Observe(d.Seconds())
						if p.ring != nil {
							p.ring.TTFT(d)
						}
					}
				}
				if !drop {
					if _, werr := w.Write(event); werr != nil {
						cancel(werr)
						return
					}
					if werr := rc.Flush(); werr != nil {
						cancel(werr)
						return
					}
				}
				event = event[:0]
				if sawDone {
					break
				}
			}
		}
		if err != nil {
			readErr = err
			break
		}
	}
	if usage != nil {
		p.account(actx, req.Model, *usage)
	}
	if sawDone {
		p.reg.Report(rep, false, "")
		return
	}
	if r.Context().Err() != nil {
		return // the client left; its context cancelled the upstream request
	}
	if len(event) > 0 {
		_, _ = w.Write(event)
	}
	reason := "stream ended early"
	if readErr != nil && errors.Is(context.Cause(actx), errStreamIdle) {
		reason = "stream idle timeout"
	}
	p.log.WarnContext(r.Context(), "upstream stream broke", "replica", rep.URL, "reason", reason, "err", readErr)
	p.reg.Report(rep, true, reason)
	p.m.upstreamCount(req.Model, rep.URL, "stream_error")
	_, _ = w.Write([]byte(streamErrorEvent))
	_ = rc.Flush()
}

// eventData returns the payload of an event's data line(s), trimmed.
func eventData(event []byte) []byte {
	var data []byte
	for len(event) > 0 {
		i := bytes.IndexByte(event, '\n')
		var line []byte
		if i < 0 {
			line, event = event, nil
		} else {
			line, event = event[:i], event[i+1:]
		}
		line = bytes.TrimRight(line, "\r")
		if bytes.HasPrefix(line, dataPrefix) {
			d := bytes.TrimSpace(line[len(dataPrefix):])
			if data == nil {
				data = d
			} else {
				data = append(append(append([]byte{}, data...), '\n'), d...)
			}
		}
	}
	return data
}

// parseUsageChunk reads a chunk's usage and whether it is the usage-only
// chunk (no choices) that include_usage adds at the end.
func parseUsageChunk(data []byte) (*api.Usage, bool) {
	var c struct {
		Choices []json.RawMessage `json:"choices"`
		Usage   *api.Usage        `json:"usage"`
	}
	if json.Unmarshal(data, &c) != nil || c.Usage == nil {
		return nil, false
	}
	return c.Usage, len(c.Choices) == 0
}

// usageOf reads the usage of a non-streamed answer. Only the top-level
// "usage" value is decoded: unmarshalling the whole answer (choices,
// logprobs) to reach it cost more than the rest of the proxying.
func usageOf(body []byte) (api.Usage, bool) {
	raw, ok := topLevelValue(body, "usage")
	if !ok {
		return api.Usage{}, false
	}
	return parseUsage(raw)
}

// parseUsage decodes a usage object. The usual shape (plain integer
// counts) is read without reflection; anything else goes to encoding/json.
func parseUsage(raw []byte) (api.Usage, bool) {
	var u api.Usage
	fast := len(raw) > 0 && raw[0] == '{'
	for _, f := range [...]struct {
		key string
		dst *int
	}{{"prompt_tokens", &u.PromptTokens}, {"completion_tokens", &u.CompletionTokens}, {"total_tokens", &u.TotalTokens}} {
		if !fast {
			break
		}
		v, found := topLevelValue(raw, f.key)
		if !found {
			fast = false
			break
		}
		*f.dst, fast = atoi(v)
	}
	if fast {
		return u, true
	}
	var up *api.Usage
	if json.Unmarshal(raw, &up) != nil || up == nil {
		return api.Usage{}, false
	}
	return *up, true
}

// atoi parses a non-negative decimal integer of at most 18 digits.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// account reports usage to the quota layer and the metrics.
func (p *Proxy) account(ctx context.Context, model string, u api.Usage) {
	reqinfo.Report(ctx, reqinfo.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens})
	if u.PromptTokens > 0 {
		p.m.tokenCount(model, "prompt").Add(float64(u.PromptTokens))
	}
	if u.CompletionTokens > 0 {
		p.m.tokenCount(model, "completion").Add(float64(u.CompletionTokens))
		if p.ring != nil {
			p.ring.Tokens(u.CompletionTokens)
		}
	}
}
