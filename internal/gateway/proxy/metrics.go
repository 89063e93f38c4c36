package proxy

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	ttft     *prometheus.HistogramVec
	tokens   *prometheus.CounterVec
	retries  *prometheus.CounterVec
	upstream *prometheus.CounterVec
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
	return m
}
