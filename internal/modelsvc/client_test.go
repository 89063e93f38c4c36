package modelsvc

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/testenv"
)

// TestOpenAINodeClient drives the service with the official `openai` npm
// package (v6): chat and completions, streamed and not, models, embeddings
// and typed errors. The assertions live in test/clients/openai_modelsvc.mjs.
func TestOpenAINodeClient(t *testing.T) {
	node := testenv.Binary(t, "node")
	dir := filepath.Join(testenv.RepoRoot(), "test", "clients")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai")); err != nil {
		testenv.Missing(t, "test/clients/node_modules/openai (run npm ci --prefix test/clients)")
	}
	ts := startService(t, "--model", stories(t), "--chat-template", "chatml", "--max-batch", "4")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "openai_modelsvc.mjs"), ts.URL+"/v1", "stories260K")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openai client script failed: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var seen struct {
		OK           bool     `json:"ok"`
		Models       []string `json:"models"`
		Chat         string   `json:"chat"`
		EmbeddingDim int      `json:"embeddingDim"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &seen); err != nil || !seen.OK {
		t.Fatalf("unexpected script output: %s", out)
	}
	if seen.Chat == "" || seen.EmbeddingDim <= 0 {
		t.Fatalf("script saw an empty chat answer or embedding: %+v", seen)
	}
	t.Logf("openai v6 client: %s", lines[len(lines)-1])
}
