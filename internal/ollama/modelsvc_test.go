package ollama_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/auth"
	"github.com/llmo/llmo/internal/config"
	"github.com/llmo/llmo/internal/modelsvc"
	"github.com/llmo/llmo/internal/ollama"
	"github.com/llmo/llmo/internal/service"
	"github.com/llmo/llmo/internal/testenv"
)

const testKey = "sk-ollama-test-key-1"

// gateway is the edge stack on a loopback port, composed as the gateway
// composes it: Ollama handler -> auth middleware -> v1, where v1 is a real
// model service's handler in-process (standing in for the proxy).
type gateway struct {
	URL   string
	Model string
}

func startGateway(t *testing.T) *gateway {
	t.Helper()
	return startGatewayArgs(t, "--chat-template", "chatml")
}

// startGatewayArgs is startGateway with extra model-service flags.
func startGatewayArgs(t *testing.T, extra ...string) *gateway {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var mcfg modelsvc.Config
	if _, err := config.Load("model", &mcfg, config.Source{Args: append([]string{
		"--model", testenv.Model(t, "stories260K.gguf"), "--max-batch", "4",
	}, extra...)}); err != nil {
		t.Fatal(err)
	}
	svc, err := modelsvc.New(context.Background(), mcfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	a, err := auth.New(auth.Config{Mode: "on", Keys: "tester:" + testKey, DefaultMaxTokens: 64}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	var common service.Common
	if _, err := config.Load("gateway", &common, config.Source{}); err != nil {
		t.Fatal(err)
	}
	srv := service.New("gateway", common, log, nil)
	srv.Mux.Handle("/api/", ollama.NewHandler(a.Middleware(svc.Server().Handler())))
	srv.SetReady()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	g := &gateway{URL: "http://" + ln.Addr().String(), Model: "stories260K"}
	// The model service warms up in the background; wait until it answers.
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequest("POST", g.URL+"/api/generate", strings.NewReader(`{"model":"stories260K","prompt":"a","stream":false,"options":{"num_predict":1}}`))
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return g
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not ready: %v %v", err, resp)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOllamaNodeClient is the acceptance test: the official `ollama` npm
// package drives the translated API (chat, generate, tags, embed, show, ps,
// version; streamed and not) against a real model service. The assertions
// live in test/clients/ollama_gateway.mjs.
func TestOllamaNodeClient(t *testing.T) {
	node := testenv.Binary(t, "node")
	dir := filepath.Join(testenv.RepoRoot(), "test", "clients")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ollama")); err != nil {
		testenv.Missing(t, "test/clients/node_modules/ollama (run npm ci --prefix test/clients)")
	}
	g := startGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "ollama_gateway.mjs"), g.URL, g.Model)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LLMO_KEY="+testKey)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ollama client script failed: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var seen struct {
		OK              bool     `json:"ok"`
		Tags            []string `json:"tags"`
		ChatStreamLines int      `json:"chatStreamLines"`
		EmbeddingDim    int      `json:"embeddingDim"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &seen); err != nil || !seen.OK {
		t.Fatalf("unexpected script output: %s", out)
	}
	if seen.ChatStreamLines < 2 || seen.EmbeddingDim <= 0 || len(seen.Tags) != 1 {
		t.Fatalf("script saw %+v", seen)
	}
	t.Logf("ollama npm client: %s", lines[len(lines)-1])
}
