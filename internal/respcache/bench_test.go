package respcache_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/cache"
	"github.com/llmo/llmo/internal/cache/cachetest"
	"github.com/llmo/llmo/internal/reqinfo"
	"github.com/llmo/llmo/internal/respcache"
	"github.com/llmo/llmo/internal/testenv"
)

// synthService is the model service on synth-15m-q8_0.gguf, the model the
// issue names for the hit-versus-miss figures.
func synthService(b *testing.B) http.Handler {
	return startModel(b, "--model", testenv.Model(b, "synth-15m-q8_0.gguf"), "--chat-template", "chatml")
}

// BenchmarkHitMiss reports p50/p99 latency of a request through the
// middleware (in-process, no network between client and layer) for a hit
// and for a miss that runs synth-15m-q8_0 for 16 tokens, on both backends.
//
//	go test -run '^$' -bench HitMiss -benchtime 2000x ./internal/respcache/
func BenchmarkHitMiss(b *testing.B) {
	backends := map[string]func(b *testing.B) cache.Store{
		"memory": func(b *testing.B) cache.Store {
			m := cache.NewMemoryStore(64 << 20)
			b.Cleanup(func() { _ = m.Close() })
			return m
		},
		"redis": func(b *testing.B) cache.Store {
			s, err := cache.NewRedisStore(cachetest.Redis(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			return s
		},
	}
	for _, name := range []string{"memory", "redis"} {
		for _, mode := range []string{"hit", "hit-stream", "hit-http", "miss"} {
			b.Run(name+"/"+mode, func(b *testing.B) {
				model := synthService(b)
				l, err := respcache.New(respcache.Config{}, backends[name](b), nil, quiet)
				if err != nil {
					b.Fatal(err)
				}
				h := l.Middleware(model)
				var srv *httptest.Server
				if mode == "hit-http" { // the same over loopback HTTP with keep-alive, as a client sees it
					srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						ctx := reqinfo.WithPrincipal(r.Context(), &reqinfo.Principal{Namespace: "bench"})
						ctx, _ = reqinfo.WithMeter(ctx)
						h.ServeHTTP(w, r.WithContext(ctx))
					}))
					defer srv.Close()
				}
				body := func(i int) string {
					p := "Once upon a time"
					if mode == "miss" {
						p = fmt.Sprintf("Story number %d began", i)
					}
					s := fmt.Sprintf(`{"model":"synth-15m-q8_0","messages":[{"role":"user","content":%q}],"temperature":0,"max_tokens":16}`, p)
					if mode == "hit-stream" {
						s = strings.Replace(s, `{"model"`, `{"stream":true,"model"`, 1)
					}
					return s
				}
				do := func(i int) string {
					if srv != nil {
						resp, err := srv.Client().Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body(i)))
						if err != nil {
							b.Fatal(err)
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						return resp.Header.Get("X-Cache")
					}
					ctx := reqinfo.WithPrincipal(context.Background(), &reqinfo.Principal{Namespace: "bench"})
					ctx, _ = reqinfo.WithMeter(ctx)
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body(i))).WithContext(ctx))
					if rec.Code != 200 {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
					return rec.Header().Get("X-Cache")
				}
				if mode != "miss" {
					do(0)
					_ = l.Close()
					if got := do(0); got != "HIT" {
						b.Fatalf("warm-up: X-Cache %s", got)
					}
				}
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					start := time.Now()
					got := do(i + int(time.Now().UnixNano()%1e9)*1000)
					lat = append(lat, time.Since(start))
					if want := map[bool]string{true: "MISS", false: "HIT"}[mode == "miss"]; got != want {
						b.Fatalf("X-Cache %s; want %s", got, want)
					}
				}
				b.StopTimer()
				_ = l.Close()
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")
			})
		}
	}
}
