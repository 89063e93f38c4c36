package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testEnv(vars map[string]string) (*Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &Env{Stdout: &out, Stderr: &errb, Lookup: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}, &out, &errb
}

func TestFindModelOrder(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	env, _, _ := testEnv(nil)
	if got, _ := findModel(context.Background(), env, "/explicit.gguf"); got != "/explicit.gguf" {
		t.Fatalf("flag not used: %s", got)
	}
	if err := os.MkdirAll("models", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"b.gguf", "a.gguf", "notes.txt"} {
		if err := os.WriteFile(filepath.Join("models", n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := findModel(context.Background(), env, "")
	if err != nil || filepath.Base(got) != "a.gguf" || !filepath.IsAbs(got) {
		t.Fatalf("findModel = %q, %v; want absolute path of models/a.gguf", got, err)
	}
}

// TestDefaultModelDigestPinned serves a file that is not the pinned model
// from a local "Hugging Face" and checks that llmo up refuses it.
func TestDefaultModelDigestPinned(t *testing.T) {
	var paths []string
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		w.Write([]byte("GGUF this is not SmolLM2"))
	}))
	defer hub.Close()
	t.Chdir(t.TempDir())
	env, _, _ := testEnv(map[string]string{"LLMO_HF_BASE_URL": hub.URL, "LLMO_MODEL_CACHE": t.TempDir()})
	_, err := findModel(context.Background(), env, "")
	if err == nil {
		t.Fatal("a model with the wrong digest was accepted")
	}
	if !strings.Contains(err.Error(), "refus") && !strings.Contains(err.Error(), "digest") && !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("error does not explain the digest refusal: %v", err)
	}
	if len(paths) == 0 || !strings.Contains(paths[0], "SmolLM2-135M-Instruct-q8_0.gguf") {
		t.Fatalf("hub requests = %v", paths)
	}
}

func TestUpRejectsBadFlags(t *testing.T) {
	env, _, errb := testEnv(map[string]string{"MODEL_REPLICAS": "zero"})
	code := Main(context.Background(), []string{"up"}, env)
	if code != 2 || !strings.Contains(errb.String(), "MODEL_REPLICAS") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	env, _, errb = testEnv(nil)
	code = Main(context.Background(), []string{"up", "--replicas", "0"}, env)
	if code != 2 || !strings.Contains(errb.String(), "--replicas") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
