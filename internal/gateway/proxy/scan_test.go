package proxy

import (
	"encoding/json"
	"testing"

	"github.com/llmo/llmo/api"
)

func TestUsageOf(t *testing.T) {
	for _, tc := range []struct {
		body string
		want *api.Usage
	}{
		{`{"id":"x","usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}`, &api.Usage{PromptTokens: 7, CompletionTokens: 3, TotalTokens: 10}},
		{` { "usage" : {"prompt_tokens":1} , "x":1}`, &api.Usage{PromptTokens: 1}},
		// Only the top-level key counts: nested and in-string "usage" do not.
		{`{"choices":[{"message":{"content":"\"usage\":{\"prompt_tokens\":99}","usage":{"prompt_tokens":5}}}]}`, nil},
		{`{"a":"\\","usage":{"prompt_tokens":2}}`, &api.Usage{PromptTokens: 2}},
		{`{"a":[1,{"b":"]}"}],"usage":{"completion_tokens":4}}`, &api.Usage{CompletionTokens: 4}},
		{`{"a":true,"b":null,"c":-1.5e3,"usage":null}`, nil},
		{`{"usage":"nope"}`, nil},
		{`{"usage":{"prompt_tokens":1.5e1,"completion_tokens":2,"total_tokens":17}}`, nil}, // not an int: encoding/json refuses too
		{`{"usage":{"Prompt_Tokens":3}}`, &api.Usage{PromptTokens: 3}},                     // encoding/json's case folding
		{`{"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":1}}}`, &api.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7}},
		{`{"usage":{"prompt_tokens":-1,"completion_tokens":0,"total_tokens":0}}`, &api.Usage{PromptTokens: -1}},
		{`{"usage":{}}`, &api.Usage{}},
		{`{"usage":{"prompt_tokens":1}`, &api.Usage{PromptTokens: 1}}, // truncated after usage: still read
		{`[{"usage":{"prompt_tokens":1}}]`, nil},
		{`not json`, nil},
		{``, nil},
		{`{"a":"unterminated`, nil},
	} {
		u, ok := usageOf([]byte(tc.body))
		if ok != (tc.want != nil) || ok && u != *tc.want {
			t.Errorf("usageOf(%s) = %+v, %v; want %+v", tc.body, u, ok, tc.want)
		}
	}
}

// FuzzUsageOf checks the scanner against encoding/json on valid objects.
func FuzzUsageOf(f *testing.F) {
	f.Add(`{"id":"x","choices":[{"message":{"content":"hi \"usage\""}}],"usage":{"prompt_tokens":7,"completion_tokens":3}}`)
	f.Add(`{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}`)
	f.Fuzz(func(t *testing.T, body string) {
		var ref struct {
			Usage *api.Usage `json:"usage"`
		}
		if json.Unmarshal([]byte(body), &ref) != nil {
			usageOf([]byte(body)) // must not panic
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(body), &m) != nil {
			return
		}
		raw, ok := topLevelValue([]byte(body), "usage")
		_, has := m["usage"]
		if ok != has {
			t.Fatalf("topLevelValue found=%v, encoding/json found=%v", ok, has)
		}
		if ok && string(raw) != string(m["usage"]) {
			t.Fatalf("value %q, encoding/json %q", raw, m["usage"])
		}
		// The key is matched exactly (encoding/json's struct decoding would
		// also take "Usage"; no server sends that).
		var want *api.Usage
		if has {
			_ = json.Unmarshal(m["usage"], &want)
		}
		if u, ok := usageOf([]byte(body)); ok != (want != nil) || ok && u != *want {
			t.Fatalf("usageOf = %+v, %v; encoding/json %+v", u, ok, want)
		}
	})
}

func BenchmarkUsageOf(b *testing.B) {
	body := []byte(`{"id":"chatcmpl-a","object":"chat.completion","created":1700000000,"model":"fake","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there!"},"finish_reason":"stop","logprobs":null}],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := usageOf(body); !ok {
			b.Fatal("no usage")
		}
	}
}
