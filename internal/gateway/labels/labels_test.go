package labels

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type key struct{ route, code string }

func TestCacheCountsIntoTheVector(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"route", "code"})
	c := New(func(k key) prometheus.Counter { return vec.WithLabelValues(k.route, k.code) })
	for range 3 {
		c.Get(key{"a", "200"}).Inc()
	}
	c.Get(key{"a", "500"}).Inc()
	if got := testutil.ToFloat64(vec.WithLabelValues("a", "200")); got != 3 {
		t.Errorf("a/200 = %v, want 3", got)
	}
	if got := testutil.ToFloat64(vec.WithLabelValues("a", "500")); got != 1 {
		t.Errorf("a/500 = %v, want 1", got)
	}
	if c.Get(key{"a", "200"}) != c.Get(key{"a", "200"}) {
		t.Error("the same key gave two children")
	}
}

func BenchmarkCacheGet(b *testing.B) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"route", "code"})
	c := New(func(k key) prometheus.Counter { return vec.WithLabelValues(k.route, k.code) })
	b.ReportAllocs()
	for b.Loop() {
		c.Get(key{"POST /v1/chat/completions", "200"}).Inc()
	}
}

func BenchmarkWithLabelValues(b *testing.B) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"route", "code"})
	b.ReportAllocs()
	for b.Loop() {
		vec.WithLabelValues("POST /v1/chat/completions", "200").Inc()
	}
}
