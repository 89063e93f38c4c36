package modelsvc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/llmo/llmo/internal/service"
)

// TestBadRequests sends malformed, mistyped and out-of-range requests. Each
// must get the right 4xx in the OpenAI envelope naming the parameter, none
// may get a 5xx, and the service must keep serving.
func TestBadRequests(t *testing.T) {
	ts := startService(t, "--model", stories(t), "--max-batch", "2", "--max-body-bytes", "65536")
	const chat, comp, emb = "/v1/chat/completions", "/v1/completions", "/v1/embeddings"
	msg := `"messages":[{"role":"user","content":"hi"}]`
	long := strings.Repeat("Once upon a time there was a dog. ", 400) // well over 2048 tokens
	cases := []struct {
		name, path, ctype, body string
		status                  int
		param                   string
	}{
		{"malformed json", comp, "", `{"prompt": "hi",`, 400, ""},
		{"not an object", comp, "", `[1,2,3]`, 400, ""},
		{"empty body", comp, "", ``, 400, ""},
		{"trailing garbage", comp, "", `{"prompt":"hi"} x`, 400, ""},
		{"invalid utf-8", comp, "", "{\"prompt\":\"\xff\xfe\"}", 400, ""},
		{"wrong content type", comp, "text/plain", `{"prompt":"hi"}`, 415, ""},
		{"oversized body", comp, "", `{"prompt":"` + strings.Repeat("a", 70000) + `"}`, 413, ""},
		{"prompt wrong type", comp, "", `{"prompt":{"a":1}}`, 400, ""},
		{"prompt missing", comp, "", `{"max_tokens":5}`, 400, "prompt"},
		{"prompt empty", comp, "", `{"prompt":""}`, 400, "prompt"},
		{"prompt token out of vocab", comp, "", `{"prompt":[1,2,99999999]}`, 400, "prompt"},
		{"prompt negative token", comp, "", `{"prompt":[-1]}`, 400, "prompt"},
		{"prompt longer than context", comp, "", `{"prompt":"` + long + `"}`, 400, "prompt"},
		{"max_tokens string", comp, "", `{"prompt":"hi","max_tokens":"ten"}`, 400, "max_tokens"},
		{"max_tokens negative", comp, "", `{"prompt":"hi","max_tokens":-5}`, 400, "max_tokens"},
		{"max_tokens zero", comp, "", `{"prompt":"hi","max_tokens":0}`, 400, "max_tokens"},
		{"max_tokens huge", comp, "", `{"prompt":"hi","max_tokens":100000000}`, 400, "max_tokens"},
		{"max_tokens float", comp, "", `{"prompt":"hi","max_tokens":1.5}`, 400, "max_tokens"},
		{"max_completion_tokens negative", chat, "", `{` + msg + `,"max_completion_tokens":-1}`, 400, "max_completion_tokens"},
		{"temperature negative", comp, "", `{"prompt":"hi","temperature":-0.1}`, 400, "temperature"},
		{"temperature above 2", comp, "", `{"prompt":"hi","temperature":2.5}`, 400, "temperature"},
		{"temperature string", comp, "", `{"prompt":"hi","temperature":"hot"}`, 400, "temperature"},
		{"top_p zero", comp, "", `{"prompt":"hi","top_p":0}`, 400, "top_p"},
		{"top_p above 1", comp, "", `{"prompt":"hi","top_p":1.5}`, 400, "top_p"},
		{"top_k below -1", comp, "", `{"prompt":"hi","top_k":-2}`, 400, "top_k"},
		{"min_p above 1", comp, "", `{"prompt":"hi","min_p":2}`, 400, "min_p"},
		{"presence_penalty out of range", comp, "", `{"prompt":"hi","presence_penalty":3}`, 400, "presence_penalty"},
		{"frequency_penalty out of range", comp, "", `{"prompt":"hi","frequency_penalty":-3}`, 400, "frequency_penalty"},
		{"repetition_penalty zero", comp, "", `{"prompt":"hi","repetition_penalty":0}`, 400, "repetition_penalty"},
		{"seed string", comp, "", `{"prompt":"hi","seed":"x"}`, 400, "seed"},
		{"n zero", comp, "", `{"prompt":"hi","n":0}`, 400, "n"},
		{"n over slots", comp, "", `{"prompt":"hi","n":3}`, 400, "n"},
		{"stop wrong type", comp, "", `{"prompt":"hi","stop":5}`, 400, "stop"},
		{"stop too many", comp, "", `{"prompt":"hi","stop":[` + strings.Repeat(`"a",`, 20) + `"b"]}`, 400, "stop"},
		{"stop empty string", comp, "", `{"prompt":"hi","stop":[""]}`, 400, "stop"},
		{"completion logprobs too many", comp, "", `{"prompt":"hi","logprobs":9}`, 400, "logprobs"},
		{"stream wrong type", comp, "", `{"prompt":"hi","stream":"yes"}`, 400, "stream"},
		{"stream_options without stream", comp, "", `{"prompt":"hi","stream_options":{"include_usage":true}}`, 400, "stream_options"},
		{"unknown model", comp, "", `{"model":"gpt-4","prompt":"hi"}`, 404, "model"},
		{"model wrong type", comp, "", `{"model":42,"prompt":"hi"}`, 400, "model"},
		{"chat without template", chat, "", `{` + msg + `}`, 400, "messages"},
		{"chat empty messages", chat, "", `{"messages":[]}`, 400, "messages"},
		{"chat messages missing", chat, "", `{}`, 400, "messages"},
		{"chat messages not a list", chat, "", `{"messages":"hi"}`, 400, "messages"},
		{"chat content wrong type", chat, "", `{"messages":[{"role":"user","content":5}]}`, 400, "messages"},
		{"chat image part", chat, "", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "messages"},
		{"chat top_logprobs without logprobs", chat, "", `{` + msg + `,"top_logprobs":3}`, 400, "top_logprobs"},
		{"chat top_logprobs too many", chat, "", `{` + msg + `,"logprobs":true,"top_logprobs":50}`, 400, "top_logprobs"},
		{"chat logprobs wrong type", chat, "", `{` + msg + `,"logprobs":"yes"}`, 400, "logprobs"},
		{"chat unknown model", chat, "", `{"model":"nope",` + msg + `}`, 404, "model"},
		{"embeddings missing input", emb, "", `{}`, 400, "input"},
		{"embeddings input wrong type", emb, "", `{"input":{"x":1}}`, 400, ""},
		{"embeddings empty string", emb, "", `{"input":""}`, 400, "input"},
		{"embeddings bad format", emb, "", `{"input":"hi","encoding_format":"hex"}`, 400, "encoding_format"},
		{"embeddings bad dimensions", emb, "", `{"input":"hi","dimensions":3}`, 400, "dimensions"},
		{"embeddings unknown model", emb, "", `{"model":"x","input":"hi"}`, 404, "model"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", ts.URL+c.path, bytes.NewReader([]byte(c.body)))
			ct := c.ctype
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, raw)
			}
			var env service.OpenAIError
			if err := json.Unmarshal(raw, &env); err != nil || env.Error.Message == "" || env.Error.Type == "" {
				t.Fatalf("not an OpenAI error envelope: %s", raw)
			}
			if c.param != "" && (env.Error.Param == nil || *env.Error.Param != c.param) {
				t.Fatalf("param = %v, want %q: %s", env.Error.Param, c.param, raw)
			}
		})
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
	// The service still serves, and nothing got a 5xx.
	var out struct {
		Choices []struct{ Text string } `json:"choices"`
	}
	if resp := postJSON(t, ts.URL+comp, `{"prompt":"Once upon a time","max_tokens":5}`, &out); resp.StatusCode != 200 || len(out.Choices) != 1 {
		t.Fatalf("service no longer serves: %d %+v", resp.StatusCode, out)
	}
	for _, code := range []string{"500", "502", "503", "504"} {
		for _, route := range []string{chat, comp, emb} {
			series := fmt.Sprintf(`llmo_http_requests_total{code="%s",method="POST",route="POST %s"}`, code, route)
			if v := metricValueOr(t, ts.URL, series, 0); v != 0 {
				t.Errorf("%s = %v", series, v)
			}
		}
	}
}
