package upstream

import (
	"context"
	"testing"
	"time"
)

func TestNormalizeURL(t *testing.T) {
	cases := []struct{ in, want, err string }{
		{"http://10.0.0.1:8001", "http://10.0.0.1:8001", ""},
		{" http://host:8001/ ", "http://host:8001", ""},
		{"https://gpu/v1x/", "https://gpu/v1x", ""},
		{"ftp://host", "", "scheme"},
		{"host:8001", "", "scheme"},
		{"http://", "", "host"},
		{"http://u:p@host", "", "credentials"},
		{"http://host/?q=1", "", "query"},
		{"http://[::1", "", "replica URL"},
	}
	for _, c := range cases {
		got, _, err := NormalizeURL(c.in)
		if c.err != "" {
			if err == nil || !contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestSourcesMergeAndLastStanding(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := NewRegistry(ctx, Options{HealthInterval: time.Hour, EjectAfter: 1})
	if err := g.Set(File, []Entry{{URL: "http://a:1", Models: []string{"m"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Register("http://a:1/", time.Minute); err != nil {
		t.Fatal(err)
	}
	r := g.Lookup("http://a:1")
	if r == nil || r.Source() != File || len(g.Pool("m")) != 1 {
		t.Fatalf("replica %+v", r)
	}
	// Dropped from the file, it stays while its lease lasts.
	_ = g.Set(File, nil)
	if g.Lookup("http://a:1") == nil || g.Lookup("http://a:1").Source() != Registered {
		t.Fatal("a registered replica vanished with the file entry")
	}
	if had, _ := g.Deregister("http://a:1"); !had || g.Lookup("http://a:1") != nil {
		t.Fatal("deregistration did not remove it")
	}
	// The only available replica of a pool is never ejected.
	_ = g.Set(Static, []Entry{{URL: "http://b:1", Models: []string{"m"}}})
	b := g.Lookup("http://b:1")
	b.mu.Lock()
	b.state = Healthy
	b.refreshAvail()
	b.mu.Unlock()
	g.Report(b, true, "boom")
	if b.State() != Healthy {
		t.Fatalf("last replica ejected: %s", b.State())
	}
}
