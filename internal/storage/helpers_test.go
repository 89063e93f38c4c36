package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/config"
	"github.com/llmo/llmo/internal/storage/storagetest"
)

func testConfig(t testing.TB) Config {
	t.Helper()
	var cfg Config
	if _, err := config.Load("test", &cfg, config.Source{}); err != nil {
		t.Fatal(err)
	}
	cfg.DrainTimeout = time.Second
	cfg.LogLevel = "warn"
	return cfg
}

// serve runs s on a loopback port until the test ends and returns its URL.
func serve(t testing.TB, s *Storage) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Server().Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startFS starts the registry on a fresh filesystem backend.
func startFS(t testing.TB, mod func(*Config)) (string, *Storage) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Root = t.TempDir()
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(context.Background(), cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, s), s
}

func startVersity(t testing.TB) S3Config {
	v := storagetest.Versity(t)
	return S3Config{Endpoint: v.Endpoint, Bucket: v.Bucket, Region: v.Region, AccessKey: v.AccessKey, SecretKey: v.SecretKey}
}

// startS3 starts the registry on a versitygw bucket.
func startS3(t testing.TB, mod func(*Config)) (string, *Storage) {
	t.Helper()
	sc := startVersity(t)
	cfg := testConfig(t)
	cfg.S3Endpoint, cfg.S3Bucket, cfg.S3Region, cfg.S3AccessKey, cfg.S3SecretKey = sc.Endpoint, sc.Bucket, sc.Region, sc.AccessKey, sc.SecretKey
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(context.Background(), cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, s), s
}

func startDockerRegistry(t testing.TB) string { return storagetest.DockerRegistry(t) }

func waitTCP(t testing.TB, addr string, out *bytes.Buffer) { storagetest.WaitTCP(t, addr, out) }

// noRedirect shows redirects to the test instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type resp struct {
	code   int
	header http.Header
	body   []byte
}

func (r resp) String() string { return fmt.Sprintf("%d %s", r.code, truncate(string(r.body))) }

func do(t testing.TB, method, url string, body []byte, hdr ...string) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// abs resolves a Location header against base.
func abs(base, loc string) string {
	if strings.HasPrefix(loc, "http://") || strings.HasPrefix(loc, "https://") {
		return loc
	}
	return base + loc
}

// withQuery appends a query parameter to a URL that may already have one.
func withQuery(u, kv string) string {
	if strings.Contains(u, "?") {
		return u + "&" + kv
	}
	return u + "?" + kv
}
