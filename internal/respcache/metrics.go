package respcache

import (
	"encoding/json"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmo/llmo/api"
	"github.com/llmo/llmo/internal/reqinfo"
)

type metrics struct {
	lookups      *prometheus.CounterVec
	similarity   prometheus.Histogram
	collapsed    prometheus.Counter
	fillErrors   prometheus.Counter
	fillsDropped prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmo_cache_lookups_total",
			Help: "Response cache lookups by kind (exact, semantic) and result (hit, miss, bypass, error).",
		}, []string{"kind", "result"}),
		similarity: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "llmo_cache_semantic_similarity",
			Help:    "Cosine similarity of the best semantic candidate of each lookup that found one over the threshold.",
			Buckets: []float64{0.5, 0.7, 0.8, 0.85, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 0.995, 0.999, 1},
		}),
		collapsed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llmo_cache_collapsed_total",
			Help: "Requests answered by waiting for an identical in-flight request (singleflight).",
		}),
		fillErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llmo_cache_fill_errors_total",
			Help: "Cache writes that failed (the response was served anyway).",
		}),
		fillsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "llmo_cache_fills_dropped_total",
			Help: "Cache writes skipped because too many were pending (slow cache).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.lookups, m.similarity, m.collapsed, m.fillErrors, m.fillsDropped)
	}
	return m
}

func encodeEntry(e *Entry) ([]byte, error) { return json.Marshal(e) }

func decodeEntry(b []byte) (*Entry, error) {
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, err
	}
	if e.V != entryVersion || (e.Kind != kindChat && e.Kind != kindText) || e.check() != nil {
		return nil, errors.New("unknown cache entry format")
	}
	return &e, nil
}

func usageOf(u reqinfo.Usage) *api.Usage {
	return &api.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.PromptTokens + u.CompletionTokens}
}
