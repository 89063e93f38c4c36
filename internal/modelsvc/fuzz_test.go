package modelsvc

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzRequests posts arbitrary bodies to the generation and embedding
// routes of a real service (stories260K, ChatML template). Whatever the
// body, the answer is a 2xx, or a 4xx in the OpenAI envelope: never a 5xx
// or a panic.
func FuzzRequests(f *testing.F) {
	for _, s := range []string{
		`{"prompt":"Once upon a time","max_tokens":4}`,
		`{"messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stream":true}`,
		`{"messages":[{"role":"user","content":"{{ raise_exception('x') }}"}],"max_tokens":2,"n":2}`,
		`{"prompt":[1,2,3],"max_tokens":2,"logprobs":3,"echo":true}`,
		`{"input":["a","b"],"encoding_format":"base64"}`,
		`{"prompt":"x","stop":["a","b"],"temperature":0,"top_k":3,"top_p":0.5,"min_p":0.1,"seed":5}`,
		`{"prompt":"hi","max_tokens":-1}`, `{"messages":[]}`, `[]`, `{`, "\xff",
	} {
		for route := range uint8(3) {
			f.Add(route, []byte(s))
		}
	}
	srv := startService(f, "--model", stories(f), "--chat-template", "chatml", "--max-batch", "4").svc.Server().Handler()
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		path := []string{"/v1/completions", "/v1/chat/completions", "/v1/embeddings"}[route%3]
		// Keep generations short so the fuzzer explores parsing, not decoding.
		var probe map[string]json.RawMessage
		if json.Unmarshal(body, &probe) == nil {
			probe["max_tokens"] = json.RawMessage("4")
			delete(probe, "max_completion_tokens")
			body, _ = json.Marshal(probe)
		}
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d %s", path, body, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 {
			var env struct {
				Error *struct{ Message, Type string }
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Error == nil || env.Error.Message == "" {
				t.Fatalf("%s %q: %d without an OpenAI envelope: %s", path, body, rec.Code, rec.Body.String())
			}
		}
		if rec.Code != http.StatusOK && rec.Code < 400 {
			t.Fatalf("unexpected status %d", rec.Code)
		}
	})
}
