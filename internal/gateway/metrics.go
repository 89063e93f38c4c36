package gateway

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmo/llmo/internal/gateway/upstream"
)

type upstreamPoolStatus = upstream.PoolStatus

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmo_gateway_requests_total",
			Help: "Gateway API requests by route template, model, status code and API key name.",
		}, []string{"route", "model", "code", "key"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "llmo_gateway_request_duration_seconds",
			Help:    "Gateway API request latency until the response ended, by route template and model.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"route", "model"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

var codeLabels = map[int]string{200: "200", 400: "400", 401: "401", 403: "403", 404: "404", 429: "429", 499: "499", 500: "500", 502: "502", 503: "503", 504: "504"}

func codeLabel(c int) string {
	if s, ok := codeLabels[c]; ok {
		return s
	}
	return strconv.Itoa(c)
}
