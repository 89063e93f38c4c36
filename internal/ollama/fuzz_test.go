package ollama

import (
	"encoding/json"
	"strings"
	"testing"
)

var fuzzPaths = []string{"/api/generate", "/api/chat", "/api/embed", "/api/embeddings", "/api/show"}

// FuzzTranslate sends arbitrary bodies to every POST endpoint over an
// OpenAI-shaped upstream that accepts anything. Decoding and translation
// must never panic and never answer 5xx: a body is either translated (200)
// or refused with a 4xx in Ollama's envelope.
func FuzzTranslate(f *testing.F) {
	seeds := []string{
		`{"model":"m","prompt":"hi","system":"s","options":{"temperature":0.5,"num_predict":3,"stop":"x"}}`,
		`{"model":"m","prompt":"hi","raw":true,"stream":false,"format":{"type":"object"}}`,
		`{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":{"a":[1]}}}]}],"tools":[{}]}`,
		`{"model":"m","input":["a","b"],"dimensions":3}`,
		`{"model":"m","prompt":"x","options":{"num_predict":-3,"seed":1e99,"top_k":1.5}}`,
		`{"model":"qwen2:0.5b","keep_alive":"0s"}`,
		`{"model":"m","messages":[{"role":"user","content":"x","images":[""]}],"format":"json","options":null,"stream":null}`,
		`{"model":"m","messages":null,"tools":null,"format":null}`,
		`{"model":"\u0000","prompt":"\ud800"}`,
		`[]`, `null`, `"x"`, `{"model":`, "{\"model\":\"m\"}\n{}", `{"name":"tiny"}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		path := fuzzPaths[int(which)%len(fuzzPaths)]
		w := serve(NewHandler(&fakeV1{}), "POST", path, string(body))
		if w.Code >= 500 || (w.Code != 200 && w.Code < 400) {
			t.Fatalf("%s %q: status %d %s", path, body, w.Code, w.Body)
		}
		if w.Code >= 400 {
			var env map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env["error"] == "" || len(env) != 1 {
				t.Fatalf("%s %q: %d with body %q, want Ollama's envelope", path, body, w.Code, w.Body)
			}
			return
		}
		for _, line := range strings.Split(strings.TrimSpace(w.Body.String()), "\n") {
			if !json.Valid([]byte(line)) {
				t.Fatalf("%s %q: invalid response line %q", path, body, line)
			}
		}
	})
}
