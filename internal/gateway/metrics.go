package gateway

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llmo/llmo/internal/gateway/labels"
	"github.com/llmo/llmo/internal/gateway/upstream"
)

type upstreamPoolStatus = upstream.PoolStatus

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	// Children by label values, looked up without allocating.
	requestsC *labels.Counters[requestKey]
	durationC *labels.Observers[[2]string]
}

type requestKey struct{ route, model, code, key string }

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
	m.requestsC = labels.New(func(k requestKey) prometheus.Counter {
		return m.requests.WithLabelValues(k.route, k.model, k.code, k.key)
	})
	m.durationC = labels.New(func(k [2]string) prometheus.Observer { return m.duration.WithLabelValues(k[0], k[1]) })
	return m
}

var codeLabels = func() map[int]string {
	m := map[int]string{}
	for c := 100; c < 600; c++ {
		m[c] = strconv.Itoa(c)
	}
	return m
}()

func codeLabel(c int) string {
	if s, ok := codeLabels[c]; ok {
		return s
	}
	return strconv.Itoa(c)
}
