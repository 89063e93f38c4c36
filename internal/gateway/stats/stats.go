// Package stats keeps the gateway's recent traffic in a ring of 5-second
// buckets for /admin/stats and the dashboard: request rate, error rate,
// latency and time-to-first-token quantiles, and token throughput over the
// last ten minutes. Each bucket holds log-scaled histograms, so quantiles
// cost no per-request allocation.
package stats

import (
	"math"
	"sync"
	"time"
)

// Interval is the bucket width and Buckets how many are kept.
const (
	Interval = 5 * time.Second
	Buckets  = 120
)

// histogram bins: bin i holds values up to base * growth^i milliseconds.
const (
	bins   = 64
	base   = 0.05 // ms
	growth = 1.25
)

type hist [bins]uint32

func binOf(ms float64) int {
	if ms <= base {
		return 0
	}
	i := int(math.Ceil(math.Log(ms/base) / math.Log(growth)))
	return min(i, bins-1)
}

func (h *hist) quantile(q float64, n uint32) float64 {
	if n == 0 {
		return 0
	}
	rank := uint32(math.Ceil(q * float64(n)))
	var seen uint32
	for i, c := range h {
		seen += c
		if seen >= rank {
			return math.Round(base*math.Pow(growth, float64(i))*100) / 100
		}
	}
	return base * math.Pow(growth, bins-1)
}

type bucket struct {
	start     int64 // unix seconds, multiple of Interval
	n, errors uint32
	lat       hist
	ttftN     uint32
	ttft      hist
	tokens    uint64
}

// Ring is the bucket ring. The zero value is not usable; call New.
type Ring struct {
	mu  sync.Mutex
	b   [Buckets]bucket
	now func() time.Time
}

// New returns an empty ring.
func New() *Ring { return &Ring{now: time.Now} }

func (r *Ring) at(t time.Time) *bucket {
	start := t.Unix() - t.Unix()%int64(Interval/time.Second)
	b := &r.b[(start/int64(Interval/time.Second))%Buckets]
	if b.start != start {
		*b = bucket{start: start}
	}
	return b
}

// Request records a finished request.
func (r *Ring) Request(latency time.Duration, failed bool) {
	ms := float64(latency) / 1e6
	r.mu.Lock()
	b := r.at(r.now())
	b.n++
	if failed {
		b.errors++
	}
	b.lat[binOf(ms)]++
	r.mu.Unlock()
}

// TTFT records a time to first token.
func (r *Ring) TTFT(d time.Duration) {
	r.mu.Lock()
	b := r.at(r.now())
	b.ttftN++
	b.ttft[binOf(float64(d)/1e6)]++
	r.mu.Unlock()
}

// Tokens records generated tokens.
func (r *Ring) Tokens(n int) {
	if n <= 0 {
		return
	}
	r.mu.Lock()
	r.at(r.now()).tokens += uint64(n)
	r.mu.Unlock()
}

// Point is one bucket of /admin/stats.
type Point struct {
	T          int64   `json:"t"`
	RPS        float64 `json:"rps"`
	ErrorRate  float64 `json:"error_rate"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	TTFTP50ms  float64 `json:"ttft_p50_ms"`
	TokensPerS float64 `json:"tokens_per_s"`
}

// Series is /admin/stats' body.
type Series struct {
	IntervalS int     `json:"interval_s"`
	Series    []Point `json:"series"`
}

// Snapshot returns the last ten minutes, oldest first, one point per
// bucket (empty buckets are zeros).
func (r *Ring) Snapshot() Series {
	secs := int64(Interval / time.Second)
	now := r.now().Unix()
	cur := now - now%secs
	out := Series{IntervalS: int(secs), Series: make([]Point, 0, Buckets)}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := int64(Buckets - 1); i >= 0; i-- {
		start := cur - i*secs
		p := Point{T: start}
		b := &r.b[(start/secs)%Buckets]
		if b.start == start && b.n+b.ttftN > 0 || b.start == start && b.tokens > 0 {
			width := float64(secs)
			if start == cur {
				width = math.Max(1, float64(now-cur+1))
			}
			p.RPS = math.Round(float64(b.n)/width*100) / 100
			if b.n > 0 {
				p.ErrorRate = math.Round(float64(b.errors)/float64(b.n)*1e4) / 1e4
			}
			p.P50ms, p.P99ms = b.lat.quantile(0.5, b.n), b.lat.quantile(0.99, b.n)
			p.TTFTP50ms = b.ttft.quantile(0.5, b.ttftN)
			p.TokensPerS = math.Round(float64(b.tokens)/width*100) / 100
		}
		out.Series = append(out.Series, p)
	}
	return out
}
