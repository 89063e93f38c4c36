package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func newTestH1() *h1Client {
	d := &net.Dialer{Timeout: time.Second}
	return newH1Client(d, &http.Transport{DialContext: d.DialContext}, 16)
}

func post(t *testing.T, h *h1Client, ctx context.Context, url, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	return h.RoundTrip(req)
}

func TestH1ReusesConnectionsAndReadsChunked(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/chunked" {
			w.Write(b)
			w.(http.Flusher).Flush()
			w.Write([]byte("!"))
			return
		}
		w.Header().Set("Content-Length", "2")
		w.Write([]byte("ok"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	h := newTestH1()
	defer h.CloseIdleConnections()
	for i := 0; i < 20; i++ {
		path := "/fixed"
		if i%2 == 1 {
			path = "/chunked"
		}
		resp, err := post(t, h, context.Background(), srv.URL+path, "hello")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := map[string]string{"/fixed": "ok", "/chunked": "hello!"}[path]; string(b) != want {
			t.Fatalf("%s body %q", path, b)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("20 sequential requests used %d connections", n)
	}
}

func TestH1RetriesStaleKeepAlive(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	h := newTestH1()
	resp, err := post(t, h, context.Background(), srv.URL, "x")
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	resp.Body.Close()
	srv.CloseClientConnections() // the pooled connection is now dead
	time.Sleep(50 * time.Millisecond)
	resp, err = post(t, h, context.Background(), srv.URL, "y")
	if err != nil {
		t.Fatalf("a stale pooled connection surfaced as an error: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
}

func TestH1CancelUnblocks(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("data: 1\n\n"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	h := newTestH1()
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := post(t, h, ctx, srv.URL, "x")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := resp.Body.Read(buf)
	if !strings.Contains(string(buf[:n]), "data: 1") {
		t.Fatalf("first event %q", buf[:n])
	}
	done := make(chan error, 1)
	go func() { _, err := resp.Body.Read(buf); done <- err }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read after cancel returned no error")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("cancel did not unblock the read")
	}
	resp.Body.Close()
	h.mu.Lock()
	pooled := len(h.idle[strings.TrimPrefix(srv.URL, "http://")])
	h.mu.Unlock()
	if pooled != 0 {
		t.Fatal("a cancelled connection went back to the pool")
	}
}

// Post writes the request itself: the path under the replica's base path,
// the headers (a value can never inject a header line), Content-Length and
// the body, on a reused connection.
func TestH1PostWritesRequest(t *testing.T) {
	type seen struct {
		path, ua, ct, evil, injected, body string
		length                             int64
	}
	got := make(chan seen, 4)
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.URL.Path, r.UserAgent(), r.Header.Get("Content-Type"), r.Header.Get("X-Evil"), r.Header.Get("Injected"), string(b), r.ContentLength}
		w.Write([]byte("ok"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	h := newTestH1()
	defer h.CloseIdleConnections()
	host := strings.TrimPrefix(srv.URL, "http://")
	hdr := http.Header{"Content-Type": {"application/json"}, "X-Evil": {"a\r\nInjected: yes"}}
	for i := 0; i < 2; i++ {
		resp, err := h.Post(context.Background(), host, "/base", "/v1/chat/completions", hdr, []byte(`{"a":1}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" {
			t.Fatalf("body %q", b)
		}
		s := <-got
		want := seen{"/base/v1/chat/completions", "Go-http-client/1.1", "application/json", "a  Injected: yes", "", `{"a":1}`, 7}
		if s != want {
			t.Errorf("upstream saw %+v, want %+v", s, want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 2 requests; want 1 (keep-alive)", n)
	}
}

func BenchmarkH1Post(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	h := newTestH1()
	defer h.CloseIdleConnections()
	host := strings.TrimPrefix(srv.URL, "http://")
	hdr := http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"abc"}}
	body := []byte(`{"model":"fake","messages":[{"role":"user","content":"hi"}]}`)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := h.Post(context.Background(), host, "", "/v1/chat/completions", hdr, body)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
