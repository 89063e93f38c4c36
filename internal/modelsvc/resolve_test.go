package modelsvc

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/llmo/llmo/api"
	"github.com/llmo/llmo/internal/artifact"
	"github.com/llmo/llmo/internal/config"
	"github.com/llmo/llmo/internal/storage"
)

// TestModelFromStorage serves a model by NAME:TAG from a real storage
// service: pushed, pulled into the cache, verified, digest reported.
func TestModelFromStorage(t *testing.T) {
	var scfg storage.Config
	if _, err := config.Load("test", &scfg, config.Source{}); err != nil {
		t.Fatal(err)
	}
	scfg.Root, scfg.DrainTimeout = t.TempDir(), time.Second
	st, err := storage.New(t.Context(), scfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = st.Server().Serve(ctx, ln); close(done) }()
	defer func() { cancel(); <-done }()
	base := "http://" + ln.Addr().String()
	if _, err := artifact.Push(context.Background(), stories(t), "stories:260k", artifact.ResolveOptions{StorageURL: base}); err != nil {
		t.Fatal(err)
	}
	_, want, err := artifact.Resolve(context.Background(), stories(t), artifact.ResolveOptions{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}

	ts := startService(t, "--model", "stories:260k", "--storage", base, "--model-cache", t.TempDir())
	var list api.ModelList
	postOrGet(t, ts.URL+"/v1/models", &list)
	if len(list.Data) != 1 || list.Data[0].ID != "stories:260k" || list.Data[0].Digest != want {
		t.Fatalf("models = %+v, want stories:260k with digest %s", list.Data, want)
	}
	var out api.CompletionResponse
	if resp := postJSON(t, ts.URL+"/v1/completions", `{"model":"stories:260k","prompt":"Once","max_tokens":3}`, &out); resp.StatusCode != 200 {
		t.Fatalf("completion: %d", resp.StatusCode)
	}
	// An unknown tag is a start-up error, not a crash.
	var cfg Config
	if _, err := config.Load("test", &cfg, config.Source{Args: []string{"--model", "nope:1", "--storage", base, "--model-cache", t.TempDir()}}); err != nil {
		t.Fatal(err)
	}
	if svc, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		svc.Close()
		t.Fatal("unknown tag accepted")
	}
}
