// Package gwtest is a tiny, fast OpenAI-shaped responder for the gateway's
// deterministic routing tests and its proxy-overhead benchmark. It is not a
// model: end-to-end tests also run real model services. Knobs let a test make
// a replica slow, failing, or break its streams mid-way.
package gwtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Responder is an http.Handler speaking a subset of the OpenAI API.
type Responder struct {
	Name   string   // replica name, echoed in X-Replica and the response id
	Models []string // served models (default "fake")

	Delay      atomic.Int64 // nanoseconds added before answering
	FailStatus atomic.Int32 // when non-zero, every completion answers this status
	BreakAfter atomic.Int32 // when non-zero, streams close after this many chunks
	Waiting    atomic.Int64 // exported as vllm:num_requests_waiting
	NotReady   atomic.Bool  // /ready answers 503

	Hits   atomic.Int64 // completion requests received
	mu     sync.Mutex
	last   http.Header // headers of the last completion request
	bodies [][]byte
}

// New returns a responder called name serving models.
func New(name string, models ...string) *Responder {
	if len(models) == 0 {
		models = []string{"fake"}
	}
	return &Responder{Name: name, Models: models}
}

// LastHeader is the header of the last completion request.
func (f *Responder) LastHeader() http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// LastBody is the body of the last completion request.
func (f *Responder) LastBody() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bodies) == 0 {
		return nil
	}
	return f.bodies[len(f.bodies)-1]
}

const chatJSON = `{"id":"chatcmpl-%s","object":"chat.completion","created":1700000000,"model":"%s","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there!"},"finish_reason":"stop","logprobs":null}],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}`

// ServeHTTP implements http.Handler.
func (f *Responder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/ready" || r.URL.Path == "/health":
		if f.NotReady.Load() {
			http.Error(w, `{"status":"not ready","reason":"draining"}`, http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	case r.URL.Path == "/metrics":
		fmt.Fprintf(w, "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"%s\"} %d\n# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name=\"%s\"} 0\n# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc{model_name=\"%s\"} 0.1\n",
			f.Models[0], f.Waiting.Load(), f.Models[0], f.Models[0])
	case r.URL.Path == "/v1/models":
		var b strings.Builder
		b.WriteString(`{"object":"list","data":[`)
		for i, m := range f.Models {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"id":%q,"object":"model","created":1700000000,"owned_by":"gwtest"}`, m)
		}
		b.WriteString("]}")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, b.String())
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/"):
		f.complete(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (f *Responder) complete(w http.ResponseWriter, r *http.Request) {
	f.Hits.Add(1)
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.last = r.Header.Clone()
	if len(f.bodies) < 1000 {
		f.bodies = append(f.bodies, body)
	} else {
		f.bodies[len(f.bodies)-1] = body
	}
	f.mu.Unlock()
	if d := f.Delay.Load(); d > 0 {
		select {
		case <-time.After(time.Duration(d)):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("X-Replica", f.Name)
	if s := f.FailStatus.Load(); s != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(s))
		fmt.Fprintf(w, `{"error":{"message":"fake failure %d","type":"server_error","param":null,"code":null}}`, s)
		return
	}
	var req struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	_ = json.Unmarshal(body, &req)
	if r.URL.Path == "/v1/embeddings" {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.6,0.8]}],"model":%q,"usage":{"prompt_tokens":2,"completion_tokens":0,"total_tokens":2}}`, req.Model)
		return
	}
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		s := fmt.Sprintf(chatJSON, f.Name, req.Model)
		w.Header().Set("Content-Length", strconv.Itoa(len(s)))
		_, _ = io.WriteString(w, s)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	words := []string{"Hello", " there", "!"}
	brk := int(f.BreakAfter.Load())
	for i, word := range words {
		if brk > 0 && i >= brk {
			// Simulate a crash: abort the connection without a terminator.
			panic(http.ErrAbortHandler)
		}
		fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-%s\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":%q,\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":null}]}\n\n", f.Name, req.Model, word)
		fl.Flush()
	}
	fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-%s\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":%q,\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n", f.Name, req.Model)
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-%s\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":%q,\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}\n\n", f.Name, req.Model)
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	fl.Flush()
}
