package cache_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/llmo/llmo/internal/cache"
	"github.com/llmo/llmo/internal/cache/cachetest"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/service"
	"github.com/llmo/llmo/internal/telemetry"
)

type backend interface {
	cache.Store
	cache.SemanticIndex
}

// backends runs fn against every implementation: memory and Redis directly,
// and the HTTP client talking to a real cache service over each.
func backends(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Helper()
	redisURL := cachetest.Redis(t)
	mk := map[string]func(t *testing.T) backend{
		"memory": func(t *testing.T) backend { return mem(t, 1<<20) },
		"redis": func(t *testing.T) backend {
			r, err := cache.NewRedisStore(redisURL)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Flush(context.Background(), "ns1"); _ = r.Flush(context.Background(), "ns2"); r.Close() })
			return r
		},
	}
	for _, name := range []string{"memory", "redis"} {
		t.Run(name, func(t *testing.T) { fn(t, mk[name](t)) })
		t.Run("client-"+name, func(t *testing.T) {
			inner := mk[name](t)
			srv := serve(t, inner)
			fn(t, cache.NewClient(srv.URL, 2*time.Second).(backend))
		})
	}
}

// mem is a memory store closed (its otter goroutines stopped) with the test.
func mem(t testing.TB, max int64) *cache.Memory {
	m := cache.NewMemoryStore(max)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func serve(t *testing.T, b cache.Backend) *httptest.Server {
	t.Helper()
	common := service.Common{LogFormat: "text", LogLevel: "error", MaxBodyBytes: 8 << 20, DrainTimeout: time.Second}
	srv := cache.NewServer(cache.Config{Common: common, MaxValueBytes: 64 << 10, DefaultTTL: time.Hour, MaxBytes: 1 << 20}, b, slog.New(slog.DiscardHandler), telemetry.NewRegistry())
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs
}

func TestStoreBasics(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		if _, ok, err := s.Get(ctx, "ns1", "k1"); ok || err != nil {
			t.Fatalf("Get on empty store = %v, %v; want miss", ok, err)
		}
		val := []byte("hello\x00world")
		if err := s.Set(ctx, "ns1", "k1", val, time.Minute); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Get(ctx, "ns1", "k1")
		if err != nil || !ok || !bytes.Equal(got, val) {
			t.Fatalf("Get = %q, %v, %v; want %q", got, ok, err, val)
		}
		// Namespaces are separate.
		if _, ok, _ := s.Get(ctx, "ns2", "k1"); ok {
			t.Fatal("key leaked across namespaces")
		}
		// Overwrite, empty value.
		if err := s.Set(ctx, "ns1", "k1", []byte{}, time.Minute); err != nil {
			t.Fatal(err)
		}
		if got, ok, _ := s.Get(ctx, "ns1", "k1"); !ok || len(got) != 0 {
			t.Fatalf("after overwrite with empty value: %q, %v", got, ok)
		}
		if err := s.Delete(ctx, "ns1", "k1"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.Get(ctx, "ns1", "k1"); ok {
			t.Fatal("deleted key still there")
		}
		// Flush removes one namespace only.
		for i := range 20 {
			_ = s.Set(ctx, "ns1", fmt.Sprint("a", i), []byte("x"), time.Minute)
			_ = s.Set(ctx, "ns2", fmt.Sprint("a", i), []byte("y"), time.Minute)
		}
		if err := s.Flush(ctx, "ns1"); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			if _, ok, _ := s.Get(ctx, "ns1", fmt.Sprint("a", i)); ok {
				t.Fatalf("ns1/a%d survived the flush", i)
			}
			if v, ok, _ := s.Get(ctx, "ns2", fmt.Sprint("a", i)); !ok || string(v) != "y" {
				t.Fatalf("ns2/a%d lost by flushing ns1", i)
			}
		}
		st, err := s.Stats(ctx)
		if err != nil || st.Entries < 20 {
			t.Fatalf("Stats = %+v, %v; want >= 20 entries", st, err)
		}
	})
}

func TestStoreTTL(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		if err := s.Set(ctx, "ns1", "short", []byte("v"), 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := s.Set(ctx, "ns1", "long", []byte("v"), time.Hour); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for {
			_, ok, err := s.Get(ctx, "ns1", "short")
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("entry with a 100ms TTL still there after 3s")
			}
			time.Sleep(25 * time.Millisecond)
		}
		if _, ok, _ := s.Get(ctx, "ns1", "long"); !ok {
			t.Fatal("entry with a 1h TTL expired")
		}
	})
}

func TestStoreValidation(t *testing.T) {
	long := string(bytes.Repeat([]byte("k"), cache.MaxKeyLen+1))
	cases := []struct{ ns, key string }{
		{"", "k"}, {"ns1", ""}, {"a:b", "k"}, {"a*", "k"}, {"ns1", "a b"}, {"ns1", "a/b"},
		{"ns1", long}, {string(bytes.Repeat([]byte("n"), cache.MaxNamespaceLen+1)), "k"}, {"ns1", "ключ"},
	}
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		for _, c := range cases {
			if err := s.Set(ctx, c.ns, c.key, []byte("v"), time.Minute); !errs.Is(err, errs.Invalid) {
				t.Errorf("Set(%q, %q) = %v; want Invalid", c.ns, c.key, err)
			}
			if _, _, err := s.Get(ctx, c.ns, c.key); !errs.Is(err, errs.Invalid) {
				t.Errorf("Get(%q, %q) = %v; want Invalid", c.ns, c.key, err)
			}
		}
	})
}

func TestSemanticIndex(t *testing.T) {
	backends(t, func(t *testing.T, s backend) {
		ctx := context.Background()
		add := func(bucket, id string, v ...float32) {
			t.Helper()
			if err := s.Add(ctx, "ns1", bucket, cache.SemanticEntry{ID: id, Text: "text " + id, Vector: v}, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		add("b1", "x", 1, 0, 0)
		add("b1", "y", 0.9, 0.1, 0) // close to x
		add("b1", "z", 0, 1, 0)
		add("b2", "w", 1, 0, 0)
		m, err := s.Search(ctx, "ns1", "b1", []float32{2, 0, 0}, 5, 0.9)
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != 2 || m[0].ID != "x" || m[1].ID != "y" || m[0].Text != "text x" {
			t.Fatalf("Search = %+v; want x then y", m)
		}
		if m[0].Score < 0.9999 || m[1].Score > m[0].Score {
			t.Fatalf("scores %+v", m)
		}
		// Other namespace and other dimension find nothing.
		if m, _ := s.Search(ctx, "ns2", "b1", []float32{1, 0, 0}, 5, 0.5); len(m) != 0 {
			t.Fatalf("namespace leak: %+v", m)
		}
		if m, _ := s.Search(ctx, "ns1", "b1", []float32{1, 0}, 5, 0.5); len(m) != 0 {
			t.Fatalf("dimension mismatch matched: %+v", m)
		}
		if _, err := s.Search(ctx, "ns1", "b1", nil, 5, 0.5); !errs.Is(err, errs.Invalid) {
			t.Fatalf("empty vector: %v; want Invalid", err)
		}
		if err := s.Flush(ctx, "ns1"); err != nil {
			t.Fatal(err)
		}
		if m, _ := s.Search(ctx, "ns1", "b2", []float32{1, 0, 0}, 5, 0.5); len(m) != 0 {
			t.Fatalf("semantic entries survived Flush: %+v", m)
		}
	})
}

func TestMemoryBoundedInBytes(t *testing.T) {
	const max = 64 << 10
	m := mem(t, max)
	ctx := context.Background()
	val := bytes.Repeat([]byte("v"), 1000)
	for i := range 1000 {
		if err := m.Set(ctx, "ns", fmt.Sprintf("key-%04d", i), val, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := m.Stats(ctx)
	if st.Bytes > max || st.Bytes < max/2 {
		t.Fatalf("bytes = %d; want <= %d and not far below", st.Bytes, max)
	}
	if st.Evictions < 900 || st.Entries > 70 {
		t.Fatalf("stats %+v; want ~935 evictions and ~64 entries", st)
	}
}

func TestRedisFlushLeavesForeignKeys(t *testing.T) {
	url := cachetest.Redis(t)
	r, err := cache.NewRedisStore(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	opt, _ := redis.ParseURL(url)
	raw := redis.NewClient(opt)
	defer raw.Close()
	ctx := context.Background()
	raw.Set(ctx, "someone:else", "keep", 0)
	raw.Set(ctx, "llmo:c:ns10:k", "keep", 0) // prefix of another namespace ("ns1" must not match "ns10")
	for i := range 1500 {
		_ = r.Set(ctx, "ns1", fmt.Sprint(i), []byte("x"), time.Hour)
	}
	if err := r.Flush(ctx, "ns1"); err != nil {
		t.Fatal(err)
	}
	n, _ := raw.DBSize(ctx).Result()
	if n != 2 {
		keys, _ := raw.Keys(ctx, "*").Result()
		t.Fatalf("after flush %d keys remain (%v); want the 2 foreign ones", n, keys)
	}
}

func TestClientFailsFastWhenDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	c := cache.NewClient("http://"+addr, 100*time.Millisecond)
	ctx := context.Background()
	for range 5 {
		if _, _, err := c.Get(ctx, "ns", "k"); err == nil {
			t.Fatal("Get against a dead service succeeded")
		}
	}
	start := time.Now()
	for range 100 {
		_, _, err := c.Get(ctx, "ns", "k")
		if !errs.Is(err, errs.Unavailable) {
			t.Fatalf("err = %v; want Unavailable", err)
		}
	}
	if el := time.Since(start); el > 50*time.Millisecond {
		t.Fatalf("100 calls with an open breaker took %v", el)
	}
	if g := c.(*cache.Guard); g.State() != "open" {
		t.Fatalf("breaker state %s; want open", g.State())
	}
}

func TestGuardTimeout(t *testing.T) {
	slow := &slowStore{Store: mem(t, 1<<20), delay: time.Second}
	g := cache.NewGuard("t", slow, 30*time.Millisecond)
	start := time.Now()
	_, _, err := g.Get(context.Background(), "ns", "k")
	if !errs.Is(err, errs.Timeout) || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("Get on a slow store: %v after %v; want Timeout after ~30ms", err, time.Since(start))
	}
	// A caller that gives up does not count against the store.
	for range 10 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, _, _ = g.Get(ctx, "ns", "k")
	}
	if g.State() != "closed" {
		t.Fatalf("caller cancellations opened the breaker (%s)", g.State())
	}
}

type slowStore struct {
	cache.Store
	delay time.Duration
}

func (s *slowStore) Get(ctx context.Context, ns, key string) ([]byte, bool, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	return s.Store.Get(ctx, ns, key)
}
