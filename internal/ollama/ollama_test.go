package ollama

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmo/llmo/api"
)

// fakeV1 is an OpenAI-shaped upstream for unit tests. It records the last
// request it got and answers chat, completions, embeddings and models, with
// SSE when asked to stream.
type fakeV1 struct {
	mu       sync.Mutex
	path     string
	body     map[string]any
	hdr      http.Header
	status   int    // non-zero: answer with this error status
	errBody  string // its body
	events   []string
	gate     chan struct{} // closed by the test to release events after the first
	noDone   bool
	jsonOnly bool // answer streams with a plain JSON body
}

func (f *fakeV1) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	f.mu.Lock()
	f.path, f.body, f.hdr = r.URL.Path, body, r.Header.Clone()
	status, errBody, events, gate := f.status, f.errBody, f.events, f.gate
	f.mu.Unlock()
	if status != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, errBody)
		return
	}
	switch r.URL.Path {
	case "/v1/models":
		writeJSON(w, api.ModelList{Object: "list", Data: []api.Model{
			{ID: "qwen2:0.5b", Object: "model", Created: 1700000000, ContextLength: 32768, Quantization: "Q8_0", Parameters: 494032768, Architecture: "qwen2", Digest: "sha256:abc123"},
			{ID: "tiny", Object: "model", MaxModelLen: 512, Parameters: 7_000_000_000, Quantization: "Q4_K_M", Architecture: "llama"},
		}})
	case "/v1/embeddings":
		var in []string
		switch v := body["input"].(type) {
		case string:
			in = []string{v}
		case []any:
			for _, x := range v {
				s, _ := x.(string)
				in = append(in, s)
			}
		}
		res := api.EmbeddingResponse{Object: "list", Model: "m", Usage: api.Usage{PromptTokens: 3 * len(in)}}
		for i := len(in) - 1; i >= 0; i-- { // out of order on purpose
			res.Data = append(res.Data, api.Embedding{Object: "embedding", Index: i, Embedding: []float32{float32(i), float32(len(in[i]))}})
		}
		writeJSON(w, res)
	case "/v1/chat/completions", "/v1/completions":
		chat := r.URL.Path == "/v1/chat/completions"
		if stream, _ := body["stream"].(bool); stream && !f.jsonOnly {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			if events == nil {
				events = defaultEvents(chat)
			}
			for i, e := range events {
				fmt.Fprintf(w, "data: %s\n\n", e)
				w.(http.Flusher).Flush()
				if i == 0 && gate != nil {
					<-gate
				}
			}
			if !f.noDone {
				_, _ = io.WriteString(w, "data: [DONE]\n\n")
			}
			return
		}
		fr := "length"
		if chat {
			writeJSON(w, api.ChatResponse{ID: "chatcmpl-1", Object: "chat.completion", Model: "m", Choices: []api.ChatChoice{
				{Message: api.Message{Role: "assistant", Content: "Hello there", ToolCalls: json.RawMessage(`[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]`)}, FinishReason: fr},
			}, Usage: &api.Usage{PromptTokens: 5, CompletionTokens: 2, TotalTokens: 7}})
			return
		}
		writeJSON(w, api.CompletionResponse{ID: "cmpl-1", Object: "text_completion", Model: "m", Choices: []api.CompletionChoice{{Text: "raw text", FinishReason: &fr}},
			Usage: &api.Usage{PromptTokens: 4, CompletionTokens: 2, TotalTokens: 6}})
	default:
		http.NotFound(w, r)
	}
}

func defaultEvents(chat bool) []string {
	if chat {
		return []string{
			`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}`,
			`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}`,
			`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}`,
			`{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
			`{"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}`,
		}
	}
	return []string{
		`{"object":"text_completion","choices":[{"index":0,"text":"ra","finish_reason":null}]}`,
		`{"object":"text_completion","choices":[{"index":0,"text":"w","finish_reason":"length"}]}`,
		`{"object":"text_completion","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}`,
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func serve(h http.Handler, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// get digs a value out of decoded JSON by a dotted path ("a.0.b").
func get(v any, path string) any {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func TestRequestTranslation(t *testing.T) {
	cases := []struct {
		name, path, body string
		wantPath         string
		want             map[string]any // dotted path in the upstream body -> value (nil = absent)
	}{
		{"generate with system and options", "/api/generate",
			`{"model":"m","prompt":"hi","system":"be brief","stream":false,"options":{"temperature":0.5,"top_p":0.9,"top_k":40,"min_p":0.05,"seed":7,"num_predict":12,"stop":["\n"],"repeat_penalty":1.1,"presence_penalty":0.2,"frequency_penalty":0.3,"num_ctx":4096,"num_gpu":1}}`,
			"/v1/chat/completions", map[string]any{
				"model": "m", "messages.0.role": "system", "messages.0.content": "be brief", "messages.1.role": "user", "messages.1.content": "hi",
				"temperature": 0.5, "top_p": 0.9, "top_k": 40.0, "min_p": 0.05, "seed": 7.0, "max_tokens": 12.0, "stop.0": "\n",
				"repetition_penalty": 1.1, "presence_penalty": 0.2, "frequency_penalty": 0.3, "num_ctx": nil, "stream": nil, "stream_options": nil,
			}},
		{"generate streams by default and asks for usage", "/api/generate", `{"model":"m","prompt":"hi"}`,
			"/v1/chat/completions", map[string]any{"stream": true, "stream_options.include_usage": true, "max_tokens": nil}},
		{"raw generate is a completion", "/api/generate", `{"model":"m","prompt":"<s>[INST] hi [/INST]","raw":true,"system":"ignored","stream":false}`,
			"/v1/completions", map[string]any{"prompt": "<s>[INST] hi [/INST]", "messages": nil}},
		{"num_predict -1 means no limit", "/api/generate", `{"model":"m","prompt":"hi","stream":false,"options":{"num_predict":-1}}`,
			"/v1/chat/completions", map[string]any{"max_tokens": nil}},
		{"format json", "/api/chat", `{"model":"m","messages":[{"role":"user","content":"x"}],"format":"json","stream":false}`,
			"/v1/chat/completions", map[string]any{"response_format.type": "json_object"}},
		{"format schema", "/api/chat", `{"model":"m","messages":[{"role":"user","content":"x"}],"format":{"type":"object"},"stream":false}`,
			"/v1/chat/completions", map[string]any{"response_format.type": "json_schema", "response_format.json_schema.schema.type": "object"}},
		{"chat tool calls and tools", "/api/chat", `{"model":"m","stream":false,"tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":{"a":1}}}]},{"role":"tool","content":"42","tool_name":"f"}]}`,
			"/v1/chat/completions", map[string]any{"tools.0.function.name": "f", "messages.1.tool_calls.0.function.name": "f",
				"messages.1.tool_calls.0.function.arguments": `{"a":1}`, "messages.1.tool_calls.0.type": "function", "messages.2.role": "tool", "messages.2.name": "f"}},
		{"embed many", "/api/embed", `{"model":"m","input":["a","bb"],"dimensions":2}`, "/v1/embeddings", map[string]any{"input.1": "bb", "dimensions": 2.0}},
		{"legacy embeddings", "/api/embeddings", `{"model":"m","prompt":"abc"}`, "/v1/embeddings", map[string]any{"input": "abc"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeV1{}
			w := serve(NewHandler(f), "POST", c.path, c.body)
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if f.path != c.wantPath {
				t.Fatalf("upstream path %s, want %s", f.path, c.wantPath)
			}
			for k, want := range c.want {
				if got := get(f.body, k); !reflect.DeepEqual(got, want) {
					t.Errorf("upstream %s = %#v, want %#v (body %v)", k, got, want, f.body)
				}
			}
		})
	}
}

func TestHeadersForwarded(t *testing.T) {
	f := &fakeV1{}
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	serve(NewHandler(f), "GET", "/api/tags", "", "Authorization", "Bearer sk-1", "X-Api-Key", "sk-2", "Traceparent", tp, "X-Request-Id", "req-123", "Cookie", "secret=1")
	for k, want := range map[string]string{"Authorization": "Bearer sk-1", "X-Api-Key": "sk-2", "Traceparent": tp, "X-Request-Id": "req-123", "Cookie": ""} {
		if got := f.hdr.Get(k); got != want {
			t.Errorf("upstream %s = %q, want %q", k, got, want)
		}
	}
}

func TestResponses(t *testing.T) {
	f := &fakeV1{}
	h := NewHandler(f)
	cases := []struct {
		name, method, path, body string
		want                     map[string]any
	}{
		{"chat", "POST", "/api/chat", `{"model":"m","messages":[{"role":"user","content":"x"}],"stream":false}`, map[string]any{
			"model": "m", "message.role": "assistant", "message.content": "Hello there", "done": true, "done_reason": "length",
			"prompt_eval_count": 5.0, "eval_count": 2.0, "load_duration": 0.0, "message.tool_calls.0.function.name": "get_weather",
			"message.tool_calls.0.function.arguments.city": "Paris"}},
		{"generate", "POST", "/api/generate", `{"model":"m","prompt":"x","raw":true,"stream":false}`, map[string]any{
			"response": "raw text", "done": true, "done_reason": "length", "prompt_eval_count": 4.0, "eval_count": 2.0}},
		{"load", "POST", "/api/generate", `{"model":"qwen2:0.5b"}`, map[string]any{"done": true, "done_reason": "load", "response": ""}},
		{"unload", "POST", "/api/chat", `{"model":"tiny:latest","messages":[],"keep_alive":0}`, map[string]any{"done": true, "done_reason": "unload"}},
		{"embed keeps input order", "POST", "/api/embed", `{"model":"m","input":["a","bbb"]}`, map[string]any{
			"model": "m", "embeddings.0.0": 0.0, "embeddings.1.0": 1.0, "embeddings.1.1": 3.0, "prompt_eval_count": 6.0}},
		{"embed empty", "POST", "/api/embed", `{"model":"tiny","input":[]}`, map[string]any{"embeddings": []any{}}},
		{"legacy embeddings", "POST", "/api/embeddings", `{"model":"m","prompt":"ab"}`, map[string]any{"embedding.1": 2.0}},
		{"tags", "GET", "/api/tags", "", map[string]any{
			"models.0.name": "qwen2:0.5b", "models.0.model": "qwen2:0.5b", "models.0.digest": "abc123", "models.0.size": 524909816.0,
			"models.0.modified_at": "2023-11-14T22:13:20Z", "models.0.details.format": "gguf", "models.0.details.family": "qwen2",
			"models.0.details.families.0": "qwen2", "models.0.details.parameter_size": "494.03M", "models.0.details.quantization_level": "Q8_0",
			"models.1.details.parameter_size": "7B", "models.1.size": 3937500000.0}},
		{"ps", "GET", "/api/ps", "", map[string]any{"models.0.name": "qwen2:0.5b", "models.0.context_length": 32768.0, "models.1.context_length": 512.0, "models.0.size_vram": 0.0}},
		{"show", "POST", "/api/show", `{"model":"qwen2:0.5b"}`, map[string]any{
			"details.quantization_level": "Q8_0", "capabilities.0": "completion"}},
		{"show by old name field", "POST", "/api/show", `{"name":"tiny:latest"}`, map[string]any{"details.family": "llama"}},
		{"version", "GET", "/api/version", "", map[string]any{"version": APIVersion}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := serve(h, c.method, c.path, c.body)
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			var got map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			for k, want := range c.want {
				if v := get(got, k); !reflect.DeepEqual(v, want) {
					t.Errorf("%s = %#v, want %#v\n%s", k, v, want, w.Body)
				}
			}
		})
	}
	// show's model_info keys contain dots, which get() cannot address.
	var show api.OllamaShowResponse
	_ = json.Unmarshal(serve(h, "POST", "/api/show", `{"model":"qwen2:0.5b"}`).Body.Bytes(), &show)
	if show.ModelInfo["general.architecture"] != "qwen2" || show.ModelInfo["qwen2.context_length"] != 32768.0 || show.ModelInfo["general.parameter_count"] != 494032768.0 {
		t.Fatalf("model_info %v", show.ModelInfo)
	}
}

func TestBadRequests(t *testing.T) {
	cases := []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"not json", "POST", "/api/chat", `{"model":`, 400, "malformed JSON"},
		{"not an object", "POST", "/api/chat", `[1]`, 400, "JSON object"},
		{"empty body", "POST", "/api/generate", ``, 400, "empty"},
		{"missing model", "POST", "/api/chat", `{"messages":[{"role":"user","content":"x"}]}`, 400, "model is required"},
		{"wrong option type", "POST", "/api/generate", `{"model":"m","prompt":"x","options":{"temperature":"hot"}}`, 400, "options.temperature"},
		{"options not object", "POST", "/api/generate", `{"model":"m","prompt":"x","options":[1]}`, 400, "options must be a JSON object"},
		{"num_predict 0", "POST", "/api/generate", `{"model":"m","prompt":"x","options":{"num_predict":0}}`, 400, "num_predict"},
		{"template", "POST", "/api/generate", `{"model":"m","prompt":"x","template":"{{ .Prompt }}"}`, 400, "templates are not supported"},
		{"images", "POST", "/api/generate", `{"model":"m","prompt":"x","images":["aGk="]}`, 400, "images"},
		{"chat images", "POST", "/api/chat", `{"model":"m","messages":[{"role":"user","content":"x","images":["aGk="]}]}`, 400, "images"},
		{"suffix", "POST", "/api/generate", `{"model":"m","prompt":"x","suffix":"y"}`, 400, "suffix"},
		{"bad format", "POST", "/api/chat", `{"model":"m","messages":[{"role":"user","content":"x"}],"format":"xml"}`, 400, "format"},
		{"bad role", "POST", "/api/chat", `{"model":"m","messages":[{"role":"wizard","content":"x"}]}`, 400, "role"},
		{"tools not array", "POST", "/api/chat", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":{}}`, 400, "tools"},
		{"embed bad input", "POST", "/api/embed", `{"model":"m","input":[1,2]}`, 400, "string"},
		{"embed bad dims", "POST", "/api/embed", `{"model":"m","input":"a","dimensions":0}`, 400, "dimensions"},
		{"stream wrong type", "POST", "/api/chat", `{"model":"m","messages":[],"stream":"yes"}`, 400, "stream"},
		{"unknown model on show", "POST", "/api/show", `{"model":"nope"}`, 404, "not found"},
		{"unknown model on load", "POST", "/api/generate", `{"model":"nope"}`, 404, "not found"},
		{"wrong method", "GET", "/api/chat", ``, 405, "method not allowed"},
		{"pull", "POST", "/api/pull", `{"model":"m"}`, 501, "not supported"},
		{"unknown route", "GET", "/api/nope", ``, 404, "no such endpoint"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := serve(NewHandler(&fakeV1{}), c.method, c.path, c.body)
			var env map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
				t.Fatalf("body %q is not JSON", w.Body)
			}
			msg, _ := env["error"].(string)
			if w.Code != c.status || !strings.Contains(msg, c.msg) || len(env) != 1 {
				t.Fatalf("got %d %s, want %d with %q in Ollama's envelope", w.Code, w.Body, c.status, c.msg)
			}
		})
	}
}

// TestUpstreamErrors checks that OpenAI envelopes from /v1 come back as
// {"error": "..."} with the same status and Retry-After, streamed or not.
func TestUpstreamErrors(t *testing.T) {
	cases := []struct {
		status  int
		body    string
		wantMsg string
	}{
		{401, `{"error":{"message":"invalid API key","type":"authentication_error","param":null,"code":"invalid_api_key"}}`, "invalid API key"},
		{403, `{"error":{"message":"this API key may not use model \"m\"","type":"permission_error"}}`, `this API key may not use model "m"`},
		{429, `{"error":{"message":"token rate limit reached","type":"rate_limit_error"}}`, "token rate limit reached"},
		{404, `{"error":"already ollama-shaped"}`, "already ollama-shaped"},
		{502, `upstream exploded`, "upstream exploded"},
		{503, ``, "service unavailable"},
	}
	for _, c := range cases {
		for _, path := range []string{"/api/chat", "/api/generate", "/api/embed", "/api/tags"} {
			for _, stream := range []bool{false, true} {
				name := fmt.Sprintf("%d%s/stream=%v", c.status, path, stream)
				t.Run(name, func(t *testing.T) {
					f := &fakeV1{status: c.status, errBody: c.body}
					body := fmt.Sprintf(`{"model":"m","prompt":"x","input":"x","messages":[{"role":"user","content":"x"}],"stream":%v}`, stream)
					method := "POST"
					if path == "/api/tags" {
						method, body = "GET", ""
					}
					w := serve(NewHandler(f), method, path, body)
					if w.Code != c.status || w.Header().Get("Retry-After") != "7" {
						t.Fatalf("status %d Retry-After %q, want %d and 7", w.Code, w.Header().Get("Retry-After"), c.status)
					}
					var env map[string]string
					if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env["error"] != c.wantMsg {
						t.Fatalf("body %s, want error %q", w.Body, c.wantMsg)
					}
				})
			}
		}
	}
}

func readLines(t *testing.T, body io.Reader) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

func TestStreamTranslation(t *testing.T) {
	cases := []struct {
		name, path, body string
		events           []string
		noDone, jsonOnly bool
		want             []string // per line: the text, or "done:<reason>", or "error:<msg>"
	}{
		{"chat", "/api/chat", `{"model":"m","messages":[{"role":"user","content":"x"}]}`, nil, false, false, []string{"Hel", "lo", "done:stop"}},
		{"raw generate", "/api/generate", `{"model":"m","prompt":"x","raw":true}`, nil, false, false, []string{"ra", "w", "done:length"}},
		{"mid-stream error", "/api/chat", `{"model":"m","messages":[{"role":"user","content":"x"}]}`,
			[]string{`{"choices":[{"delta":{"content":"a"}}]}`, `{"error":{"message":"replica went away","type":"upstream_error"}}`, `{"choices":[{"delta":{"content":"never"}}]}`},
			false, false, []string{"a", "error:replica went away"}},
		{"broken stream", "/api/generate", `{"model":"m","prompt":"x"}`, []string{`{"choices":[{"delta":{"content":"a"}}]}`}, true, false,
			[]string{"a", "error:the upstream stream ended before the generation finished"}},
		{"finished stream without DONE", "/api/generate", `{"model":"m","prompt":"x"}`,
			[]string{`{"choices":[{"delta":{"content":"a"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`}, true, false, []string{"a", "done:stop"}},
		{"garbage event", "/api/chat", `{"model":"m","messages":[{"role":"user","content":"x"}]}`, []string{`{not json`}, false, false,
			[]string{"error:upstream sent a malformed stream event"}},
		{"upstream ignores stream", "/api/chat", `{"model":"m","messages":[{"role":"user","content":"x"}]}`, nil, false, true, []string{"done:length"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeV1{events: c.events, noDone: c.noDone, jsonOnly: c.jsonOnly}
			w := serve(NewHandler(f), "POST", c.path, c.body)
			if w.Code != 200 || w.Header().Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("status %d type %q: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
			}
			lines := readLines(t, w.Body)
			if len(lines) != len(c.want) {
				t.Fatalf("%d lines, want %d:\n%v", len(lines), len(c.want), lines)
			}
			for i, want := range c.want {
				l := lines[i]
				text, _ := l["response"].(string)
				if msg, ok := get(l, "message.content").(string); ok {
					text = msg
				}
				switch {
				case strings.HasPrefix(want, "error:"):
					if l["error"] != strings.TrimPrefix(want, "error:") || len(l) != 1 {
						t.Errorf("line %d = %v, want %s", i, l, want)
					}
				case strings.HasPrefix(want, "done:"):
					if l["done"] != true || l["done_reason"] != strings.TrimPrefix(want, "done:") {
						t.Errorf("line %d = %v, want %s", i, l, want)
					}
					for _, k := range []string{"total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration"} {
						if _, ok := l[k]; !ok {
							t.Errorf("final line lacks %s: %v", k, l)
						}
					}
					if l["eval_count"].(float64) <= 0 || l["prompt_eval_count"].(float64) <= 0 {
						t.Errorf("final line has no counts: %v", l)
					}
				default:
					if text != want || l["done"] != false || l["model"] != "m" || l["created_at"] == nil {
						t.Errorf("line %d = %v, want text %q", i, l, want)
					}
					if _, ok := l["eval_count"]; ok {
						t.Errorf("non-final line carries metrics: %v", l)
					}
				}
			}
		})
	}
}

// TestStreamFlushesEachLine reads the first NDJSON line over real HTTP while
// the upstream is still holding the rest back: nothing is buffered.
func TestStreamFlushesEachLine(t *testing.T) {
	gate := make(chan struct{})
	f := &fakeV1{gate: gate, events: []string{
		`{"choices":[{"delta":{"content":"first"}}]}`,
		`{"choices":[{"delta":{"content":"second"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}`,
	}}
	srv := httptest.NewServer(NewHandler(f))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/api/chat", "application/json", strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	got := make(chan string, 1)
	go func() { line, _ := br.ReadString('\n'); got <- line }()
	select {
	case line := <-got:
		if !strings.Contains(line, `"content":"first"`) {
			t.Fatalf("first line %q", line)
		}
	case <-time.After(10 * time.Second):
		close(gate)
		t.Fatal("the first line did not arrive while the upstream held the stream open")
	}
	close(gate)
	rest := readLines(t, br)
	if len(rest) != 2 || rest[1]["done"] != true || rest[1]["eval_count"] != 2.0 {
		t.Fatalf("rest %v", rest)
	}
}

func TestHumanNumber(t *testing.T) {
	for n, want := range map[int64]string{494032768: "494.03M", 7_000_000_000: "7B", 7_615_616_512: "7.6B", 260_000: "260K", 15_000_000: "15M", 999: "999"} {
		if got := humanNumber(n); got != want {
			t.Errorf("humanNumber(%d) = %s, want %s", n, got, want)
		}
	}
}
