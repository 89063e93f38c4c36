package discovery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/gateway/gwtest"
	"github.com/llmo/llmo/internal/gateway/upstream"
)

func TestParseFile(t *testing.T) {
	cases := []struct {
		name, yaml, err string
		n               int
	}{
		{"empty", "", "", 0},
		{"two", "replicas:\n  - url: http://a:8001\n  - url: https://b/v\n    models: [m1, m2]\n", "", 2},
		{"unknown key", "replicas:\n  - url: http://a:8001\n    weight: 2\n", "weight", 0},
		{"unknown top key", "replica:\n  - url: http://a\n", "replica", 0},
		{"bad scheme", "replicas:\n  - url: ftp://a\n", "scheme", 0},
		{"no host", "replicas:\n  - url: http://\n", "host", 0},
		{"duplicate", "replicas:\n  - url: http://a:1\n  - url: http://a:1/\n", "duplicate", 0},
		{"empty model", "replicas:\n  - url: http://a:1\n    models: ['']\n", "models[0]", 0},
		{"not yaml", "replicas: [", "config file", 0},
		{"wrong type", "replicas: 3\n", "config file", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := ParseFile([]byte(c.yaml))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || len(f.Entries()) != c.n {
				t.Fatalf("got %v, %v", f, err)
			}
		})
	}
}

type resolver map[string][]string

func (r resolver) LookupHost(_ context.Context, h string) ([]string, error) {
	if a, ok := r[h]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

func TestResolveAll(t *testing.T) {
	r := resolver{"model.llmo.svc": {"10.0.0.2", "10.0.0.1", "fd00::1"}}
	es, err := ResolveAll(context.Background(), r, []string{"model.llmo.svc:8001"})
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, e := range es {
		urls = append(urls, e.URL)
	}
	if strings.Join(urls, " ") != "http://10.0.0.1:8001 http://10.0.0.2:8001 http://[fd00::1]:8001" {
		t.Fatalf("urls = %v", urls)
	}
	if _, err := ResolveAll(context.Background(), r, []string{"model.llmo.svc:8001", "gone:1"}); err == nil {
		t.Fatal("a failing name must fail the whole resolution (keep the previous set)")
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add("replicas:\n  - url: http://a:8001\n    models: [m]\n")
	f.Add("replicas: [{url: 'https://x'}]")
	f.Add("&a [*a, *a]")
	f.Fuzz(func(t *testing.T, s string) {
		fl, err := ParseFile([]byte(s))
		if err == nil {
			for _, e := range fl.Entries() {
				if !strings.HasPrefix(e.URL, "http") {
					t.Fatalf("accepted %q", e.URL)
				}
			}
		}
	})
}

func TestWatchDNSFeedsRegistry(t *testing.T) {
	up := httptest.NewServer(gwtest.New("dns"))
	defer up.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(up.URL, "http://"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := upstream.NewRegistry(ctx, upstream.Options{HealthInterval: 20 * time.Millisecond})
	res := &mutableResolver{addrs: []string{"127.0.0.1"}}
	WatchDNS(ctx, res, []string{"model.svc:" + port}, 50*time.Millisecond, reg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	waitFor(t, func() bool {
		p := reg.Pool("fake")
		return len(p) == 1 && p[0].Available() && p[0].Source() == upstream.DNS
	})
	res.set(nil, errors.New("SERVFAIL")) // a failing lookup keeps the replica
	time.Sleep(200 * time.Millisecond)
	if len(reg.Pool("fake")) != 1 {
		t.Fatal("a DNS failure dropped the replica")
	}
	res.set([]string{}, nil) // the Service scaled to zero
	waitFor(t, func() bool { return len(reg.Replicas()) == 0 })
}

type mutableResolver struct {
	mu    sync.Mutex
	addrs []string
	err   error
}

func (m *mutableResolver) set(a []string, err error) {
	m.mu.Lock()
	m.addrs, m.err = a, err
	m.mu.Unlock()
}
func (m *mutableResolver) LookupHost(context.Context, string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addrs, m.err
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
