package artifact_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/artifact"
	"github.com/llmo/llmo/internal/artifact/modelfmt"
	"github.com/llmo/llmo/internal/config"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/storage"
	"github.com/llmo/llmo/internal/testenv"
)

const modelName = "synth-15m-q8_0.gguf"

// startStorage runs the storage service on a filesystem root and returns
// its URL and a stop function.
func startStorage(t *testing.T, root string, mod func(*storage.Config)) (string, func()) {
	t.Helper()
	var cfg storage.Config
	if _, err := config.Load("test", &cfg, config.Source{}); err != nil {
		t.Fatal(err)
	}
	cfg.Root, cfg.DrainTimeout = root, time.Second
	if mod != nil {
		mod(&cfg)
	}
	s, err := storage.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Server().Serve(ctx, ln); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return "http://" + ln.Addr().String(), stop
}

func fileDigest(t *testing.T, path string) string {
	t.Helper()
	p, d, err := artifact.Resolve(context.Background(), path, artifact.ResolveOptions{CacheDir: t.TempDir()})
	if err != nil || p != path {
		t.Fatalf("resolve file: %v %q", err, p)
	}
	return d
}

func TestPushResolveRoundTrip(t *testing.T) {
	model := testenv.Model(t, modelName)
	want := fileDigest(t, model)
	root := t.TempDir()
	base, stop := startStorage(t, root, nil)
	ctx := context.Background()

	md, err := artifact.Push(ctx, model, "synth:q8", artifact.ResolveOptions{StorageURL: base})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(md, "sha256:") {
		t.Fatalf("manifest digest %q", md)
	}

	// The service lists it with the metadata read from the GGUF header.
	cl := &artifact.Client{Base: base}
	list, err := cl.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Models) != 1 {
		t.Fatalf("models = %+v", list.Models)
	}
	m := list.Models[0]
	if m.Name != "synth:q8" || m.BlobDigest != want || m.Digest != md || m.Config == nil {
		t.Fatalf("model entry %+v", m)
	}
	c := m.Config
	if c.Architecture == "" || c.Parameters < 1_000_000 || c.Quantization != "Q8_0" || c.ContextLength <= 0 || c.Tokenizer == "" {
		t.Fatalf("config %+v", c)
	}

	cache := t.TempDir()
	p, d, err := artifact.Resolve(ctx, "synth:q8", artifact.ResolveOptions{StorageURL: base, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if d != want || fileDigest(t, p) != want || !strings.HasPrefix(p, cache) {
		t.Fatalf("resolved %s %s, want digest %s", p, d, want)
	}
	// The same model by oci:// and by manifest digest.
	host := strings.TrimPrefix(base, "http://")
	for _, ref := range []string{"oci://" + host + "/synth:q8", "oci://" + host + "/synth@" + md} {
		if _, d2, err := artifact.Resolve(ctx, ref, artifact.ResolveOptions{CacheDir: t.TempDir()}); err != nil || d2 != want {
			t.Fatalf("%s: %v %s", ref, err, d2)
		}
	}

	// Storage goes away: a restart reuses the cache without contacting it.
	stop()
	p2, d2, err := artifact.Resolve(ctx, "synth:q8", artifact.ResolveOptions{StorageURL: base, CacheDir: cache})
	if err != nil || p2 != p || d2 != want {
		t.Fatalf("offline resolve: %v %s %s", err, p2, d2)
	}
	// Even with Refresh, an unreachable registry falls back to the cache.
	if _, _, err := artifact.Resolve(ctx, "synth:q8", artifact.ResolveOptions{StorageURL: base, CacheDir: cache, Refresh: true}); err != nil {
		t.Fatalf("offline refresh: %v", err)
	}
	// A cached file that was tampered with is not reused.
	flipByte(t, p, 1000)
	if _, _, err := artifact.Resolve(ctx, "synth:q8", artifact.ResolveOptions{StorageURL: base, CacheDir: cache}); err == nil {
		t.Fatal("a corrupted cache file was reused")
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	// A later mtime, as any real write would leave.
	later := time.Now().Add(2 * time.Second)
	_ = os.Chtimes(path, later, later)
}

func TestCorruptStoredBlobIsRefused(t *testing.T) {
	model := testenv.Model(t, modelName)
	want := fileDigest(t, model)
	root := t.TempDir()
	base, _ := startStorage(t, root, nil)
	ctx := context.Background()
	if _, err := artifact.Push(ctx, model, "synth:q8", artifact.ResolveOptions{StorageURL: base}); err != nil {
		t.Fatal(err)
	}
	hx := strings.TrimPrefix(want, "sha256:")
	flipByte(t, filepath.Join(root, "blobs", "sha256", hx[:2], hx), 4096)

	cache := t.TempDir()
	_, _, err := artifact.Resolve(ctx, "synth:q8", artifact.ResolveOptions{StorageURL: base, CacheDir: cache, Retries: 2})
	if err == nil {
		t.Fatal("a corrupted blob was accepted")
	}
	if k := errs.KindOf(err); k != errs.BadGateway && k != errs.Unavailable {
		t.Fatalf("error kind %v: %v", k, err)
	}
	blobs, _ := os.ReadDir(filepath.Join(cache, "blobs", "sha256"))
	if len(blobs) != 0 {
		t.Fatalf("cache holds %d files after a refused download", len(blobs))
	}
	// The service noticed too.
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), "llmo_storage_verify_failures_total 1") && !strings.Contains(string(b), "llmo_storage_verify_failures_total 2") {
		t.Errorf("verify failures not counted:\n%s", grep(string(b), "llmo_storage_verify"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestPushTokenGuardsPushes(t *testing.T) {
	model := testenv.Model(t, modelName)
	base, _ := startStorage(t, t.TempDir(), func(c *storage.Config) { c.PushToken = "s3cret" })
	ctx := context.Background()
	_, err := artifact.Push(ctx, model, "synth:q8", artifact.ResolveOptions{StorageURL: base})
	if !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("push without token: %v", err)
	}
	_, err = artifact.Push(ctx, model, "synth:q8", artifact.ResolveOptions{StorageURL: base, Token: "wrong"})
	if !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("push with a wrong token: %v", err)
	}
	if _, err := artifact.Push(ctx, model, "synth:q8", artifact.ResolveOptions{StorageURL: base, Token: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	// Pulls stay anonymous.
	if _, _, err := artifact.Resolve(ctx, "synth:q8", artifact.ResolveOptions{StorageURL: base, CacheDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
}

func TestUploadCap(t *testing.T) {
	model := testenv.Model(t, modelName)
	base, _ := startStorage(t, t.TempDir(), func(c *storage.Config) { c.MaxUploadBytes = 1 << 20 })
	_, err := artifact.Push(context.Background(), model, "synth:q8", artifact.ResolveOptions{StorageURL: base})
	if !errs.Is(err, errs.TooLarge) {
		t.Fatalf("push over the cap: %v", err)
	}
}

func TestModelsJSON(t *testing.T) {
	// The wire shape other tools read.
	b, _ := json.Marshal(modelfmt.ModelInfo{Name: "a:b", Config: &modelfmt.Config{Architecture: "llama"}})
	for _, k := range []string{`"name"`, `"digest"`, `"config"`, `"architecture"`, `"parameters"`, `"quantization"`, `"context_length"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("%s missing in %s", k, b)
		}
	}
}

// TestConcurrentResolveSharesCache: replicas on one host resolving the same
// model at once into one cache both get the verified file.
func TestConcurrentResolveSharesCache(t *testing.T) {
	model := testenv.Model(t, modelName)
	want := fileDigest(t, model)
	base, _ := startStorage(t, t.TempDir(), nil)
	ctx := context.Background()
	if _, err := artifact.Push(ctx, model, "synth:q8", artifact.ResolveOptions{StorageURL: base}); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	errc := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			_, d, err := artifact.Resolve(ctx, "synth:q8", artifact.ResolveOptions{StorageURL: base, CacheDir: cache})
			if err == nil && d != want {
				err = fmt.Errorf("digest %s", d)
			}
			errc <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}
