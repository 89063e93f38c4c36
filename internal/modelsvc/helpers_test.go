package modelsvc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/config"
	"github.com/llmo/llmo/internal/testenv"
)

// testServer is a real model service on a loopback port.
type testServer struct {
	URL    string
	svc    *Service
	cancel context.CancelFunc
	served chan error
}

// startService runs the service with the given flags (defaults otherwise)
// and waits until /ready says ok.
func startService(t testing.TB, args ...string) *testServer {
	t.Helper()
	var cfg Config
	if _, err := config.Load("test", &cfg, config.Source{Args: args}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	svc, err := New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{URL: "http://" + ln.Addr().String(), svc: svc, cancel: cancel, served: make(chan error, 1)}
	go func() { ts.served <- svc.Server().Serve(ctx, ln) }()
	t.Cleanup(ts.stop)
	waitReady(t, ts.URL)
	return ts
}

func (ts *testServer) stop() {
	ts.cancel()
	<-ts.served
	ts.svc.Close()
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func waitReady(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	cl := &http.Client{Timeout: 5 * time.Second}
	for time.Now().Before(deadline) {
		resp, err := cl.Get(url + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", url)
}

func stories(t testing.TB) string { return testenv.Model(t, "stories260K.gguf") }

// postJSON posts body (a string or a value to marshal) and decodes the
// answer into out when out is not nil.
func postJSON(t testing.TB, url string, body any, out any) *http.Response {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("decoding %s answer (%d): %v\n%s", url, resp.StatusCode, err, raw)
		}
	}
	return resp
}

// metricValue reads one sample from /metrics, e.g.
// `vllm:num_requests_running{model_name="stories260K"}`.
func metricValue(t testing.TB, base, series string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, series+" ") {
			var v float64
			if err := json.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(line, series))), &v); err != nil {
				t.Fatalf("parsing %q: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("series %s not in /metrics", series)
	return 0
}

// metricValueOr is metricValue with a default for an absent series.
func metricValueOr(t testing.TB, base, series string, def float64) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(raw), series+" ") {
		return def
	}
	return metricValue(t, base, series)
}
