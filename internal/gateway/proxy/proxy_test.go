package proxy

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseAndUpstreamBody(t *testing.T) {
	cases := []struct {
		name     string
		kind     Kind
		body     string
		wantErr  string // substring of the message, "" for success
		stream   bool
		injected bool
	}{
		{"chat", Chat, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, "", false, false},
		{"chat stream", Chat, `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`, "", true, true},
		{"chat stream usage asked", Chat, `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`, "", true, false},
		{"stream options null", Chat, `{"model":"m","stream":true,"stream_options":null,"messages":[{"role":"user","content":"hi"}]}`, "", true, true},
		{"completion ids", Completion, `{"model":"m","prompt":[1,2,3]}`, "", false, false},
		{"embedding list", Embedding, `{"model":"m","input":["a","b"]}`, "", false, false},
		{"no model", Chat, `{"messages":[]}`, "model", false, false},
		{"empty model", Chat, `{"model":"","messages":[{"role":"user","content":"x"}]}`, "model", false, false},
		{"number prompt", Completion, `{"model":"m","prompt":5}`, "prompt", false, false},
		{"null input", Embedding, `{"model":"m","input":null}`, "input", false, false},
		{"not an object", Chat, `"x"`, "JSON object", false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := Parse(c.kind, []byte(c.body), 64)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Stream != c.stream {
				t.Fatalf("stream = %v", r.Stream)
			}
			body, injected, err := r.UpstreamBody()
			if err != nil || injected != c.injected {
				t.Fatalf("UpstreamBody: injected=%v err=%v", injected, err)
			}
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("upstream body is not JSON: %s", body)
			}
			if c.stream {
				so, _ := m["stream_options"].(map[string]any)
				if so["include_usage"] != true {
					t.Fatalf("include_usage missing upstream: %s", body)
				}
			}
		})
	}
}

func TestPrefixKeyCoversFirstMessages(t *testing.T) {
	a, _ := Parse(Chat, []byte(`{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello"}]}`), 256)
	b, _ := Parse(Chat, []byte(`{"model":"m","temperature":0.3,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello"}]}`), 256)
	c, _ := Parse(Chat, []byte(`{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"goodbye"}]}`), 256)
	short, _ := Parse(Chat, []byte(`{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"goodbye"}]}`), 8)
	if string(a.Prefix) != string(b.Prefix) || string(a.Prefix) == string(c.Prefix) || len(short.Prefix) != 8 {
		t.Fatalf("prefixes: %q %q %q %q", a.Prefix, b.Prefix, c.Prefix, short.Prefix)
	}
}

func TestTraceparent(t *testing.T) {
	in := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	h := http.Header{}
	h.Set("Traceparent", in)
	out := traceparent(h)
	if out[:36] != in[:36] || out[52:] != in[52:] || out == in || !validTraceparent(out) {
		t.Fatalf("child of %s = %s", in, out)
	}
	for _, bad := range []string{"", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"} {
		h.Set("Traceparent", bad)
		if out := traceparent(h); !validTraceparent(out) || strings.Contains(out, "4BF9") || out[3:35] == "00000000000000000000000000000000" {
			t.Fatalf("from %q made %q", bad, out)
		}
	}
}

func TestBudget(t *testing.T) {
	b := NewBudget(0.5, 2)
	b.floor = 0 // start empty to count deposits only
	b.last = time.Now()
	for i := 0; i < 4; i++ {
		b.Deposit()
	}
	n := 0
	for b.Withdraw() {
		n++
		if n > 10 {
			break
		}
	}
	if n != 2 {
		t.Fatalf("4 requests at ratio 0.5 allowed %d retries", n)
	}
}

func TestSSEHelpers(t *testing.T) {
	if d := eventData([]byte("event: x\ndata: {\"a\":1}\r\n\r\n")); string(d) != `{"a":1}` {
		t.Fatalf("eventData = %q", d)
	}
	u, only := parseUsageChunk([]byte(`{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`))
	if u == nil || !only || u.CompletionTokens != 4 {
		t.Fatalf("usage chunk: %+v %v", u, only)
	}
	if _, only := parseUsageChunk([]byte(`{"choices":[{"index":0}],"usage":{"prompt_tokens":1}}`)); only {
		t.Fatal("a chunk with choices is not usage-only")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"model":"m","messages":[{"role":"user","content":"hi"}]}`, `{"model":"m","stream":true,"stream_options":{"x":1},"prompt":"a"}`,
		`{"model":"m","input":[[1,2]]}`, `[]`, `{"model":1}`, `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, k := range []Kind{Chat, Completion, Embedding} {
			r, err := Parse(k, []byte(body), 32)
			if err != nil {
				continue
			}
			if r.Model == "" || len(r.Prefix) > 32 {
				t.Fatalf("accepted %q with model %q prefix %q", body, r.Model, r.Prefix)
			}
			out, _, err := r.UpstreamBody()
			if err == nil && !json.Valid(out) {
				t.Fatalf("invalid upstream body %q", out)
			}
		}
	})
}
