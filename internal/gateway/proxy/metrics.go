package proxy

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmo/llmo/internal/gateway/labels"
)

type metrics struct {
	ttft     *prometheus.HistogramVec
	tokens   *prometheus.CounterVec
	retries  *prometheus.CounterVec
	upstream *prometheus.CounterVec

	// Children of the per-request counters, looked up without allocating.
	upstreamC *labels.Counters[upstreamKey]
	tokensC   *labels.Counters[[2]string]
}

type upstreamKey struct{ model, replica, code string }

func (m *metrics) upstreamCount(model, replica, code string) {
	m.upstreamC.Get(upstreamKey{model, replica, code}).Inc()
}

func (m *metrics) tokenCount(model, direction string) prometheus.Counter {
	return m.tokensC.Get([2]string{model, direction})
}

var codeLabels = func() map[int]string {
	m := map[int]string{}
	for c := 100; c < 600; c++ {
		m[c] = strconv.Itoa(c)
	}
	return m
}()

// codeLabel is strconv.Itoa without an allocation for HTTP status codes.
func codeLabel(c int) string {
	if s, ok := codeLabels[c]; ok {
		return s
	}
	return strconv.Itoa(c)
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "llmo_gateway_ttft_seconds",
			Help:    "Time from request arrival to the first streamed event sent to the client.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"model"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmo_gateway_tokens_total",
			Help: "Tokens processed by upstream replicas, as reported in their usage.",
		}, []string{"model", "direction"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmo_gateway_retries_total",
			Help: "Upstream retries, by the reason of the failed attempt (or budget_exhausted when one was refused).",
		}, []string{"model", "reason"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmo_gateway_upstream_requests_total",
			Help: "Attempts sent to replicas, by status code (error: no answer; stream_error: broke mid-stream).",
		}, []string{"model", "replica", "code"}),
	}
	if reg != nil {
		reg.MustRegister(m.ttft, m.tokens, m.retries, m.upstream)
	}
	m.upstreamC = labels.New(func(k upstreamKey) prometheus.Counter {
		return m.upstream.WithLabelValues(k.model, k.replica, k.code)
	})
	m.tokensC = labels.New(func(k [2]string) prometheus.Counter { return m.tokens.WithLabelValues(k[0], k[1]) })
	return m
}
