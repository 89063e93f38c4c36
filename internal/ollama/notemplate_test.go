package ollama_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestGenerateWithoutChatTemplate: like Ollama, /api/generate on a model
// with no chat template generates from the bare prompt (the same text as
// raw=true), while /api/chat says clearly why it cannot.
func TestGenerateWithoutChatTemplate(t *testing.T) {
	g := startGatewayArgs(t) // no --chat-template: stories260K has none
	post := func(path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("POST", g.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v: %s", path, err, b)
		}
		return resp.StatusCode, m
	}
	opts := `"stream":false,"options":{"num_predict":12,"temperature":0}`
	code, plain := post("/api/generate", `{"model":"stories260K","prompt":"Once upon a time",`+opts+`}`)
	if code != 200 || plain["response"] == "" {
		t.Fatalf("generate without a template: %d %v", code, plain)
	}
	_, raw := post("/api/generate", `{"model":"stories260K","prompt":"Once upon a time","raw":true,`+opts+`}`)
	if plain["response"] != raw["response"] {
		t.Fatalf("templateless generate %q differs from raw %q", plain["response"], raw["response"])
	}
	code, chat := post("/api/chat", `{"model":"stories260K","messages":[{"role":"user","content":"hi"}],`+opts+`}`)
	if code != 400 || !strings.Contains(chat["error"].(string), "chat template") {
		t.Fatalf("chat without a template: %d %v", code, chat)
	}
}
