package stats

import (
	"testing"
	"time"
)

func TestRingBucketsAndQuantiles(t *testing.T) {
	now := time.Unix(1_700_000_000, 0) // a multiple of 5
	r := New()
	r.now = func() time.Time { return now }
	for i := 1; i <= 100; i++ {
		r.Request(time.Duration(i)*time.Millisecond, i > 95)
	}
	r.TTFT(20 * time.Millisecond)
	r.Tokens(50)
	now = now.Add(4 * time.Second) // same bucket, 5 s elapsed
	s := r.Snapshot()
	if s.IntervalS != 5 || len(s.Series) != Buckets {
		t.Fatalf("series %d/%d", s.IntervalS, len(s.Series))
	}
	p := s.Series[Buckets-1]
	if p.RPS != 20 || p.ErrorRate != 0.05 || p.TokensPerS != 10 {
		t.Fatalf("point %+v", p)
	}
	// Log-scaled bins are within 25% of the true quantile.
	if p.P50ms < 50/1.25 || p.P50ms > 50*1.25 || p.P99ms < 99/1.25 || p.P99ms > 99*1.25 || p.TTFTP50ms < 16 || p.TTFTP50ms > 25 {
		t.Fatalf("quantiles %+v", p)
	}
	// Ten minutes later the old bucket is gone, not mixed into the new one.
	now = now.Add(10 * time.Minute)
	r.Request(time.Millisecond, false)
	s = r.Snapshot()
	total := 0.0
	for _, p := range s.Series {
		total += p.RPS
	}
	if s.Series[Buckets-1].RPS == 0 || total > 1.01 {
		t.Fatalf("stale buckets survived: total rps %v", total)
	}
}
