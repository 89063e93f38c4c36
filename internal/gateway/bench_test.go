package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/gateway/gwtest"
)

// BenchmarkProxyChat is the gateway's per-request cost over a fast
// in-process upstream, over real loopback HTTP (client, gateway and
// upstream share the CPUs, so compare it with BenchmarkDirectChat).
func BenchmarkProxyChat(b *testing.B) {
	up := httptest.NewServer(gwtest.New("a"))
	defer up.Close()
	cfg := testConfig(up.URL)
	g, err := New(context.Background(), cfg, quiet())
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	ts := httptest.NewServer(g.Handler())
	defer ts.Close()
	for !g.reg.HasModel("fake") || !g.reg.Pool("fake")[0].Available() {
		runtimeGosched()
	}
	benchPost(b, ts.URL)
}

// BenchmarkDirectChat is the same load straight at the upstream.
func BenchmarkDirectChat(b *testing.B) {
	up := httptest.NewServer(gwtest.New("a"))
	defer up.Close()
	benchPost(b, up.URL)
}

func benchPost(b *testing.B, base string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	c := &http.Client{Transport: tr}
	body := `{"model":"fake","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in five words."}],"max_tokens":16}`
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func runtimeGosched() { time.Sleep(time.Millisecond) }
