package modelsvc

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics uses vLLM's metric names and its model_name label, so that vLLM
// dashboards, KEDA scalers and the Gateway API Inference Extension's
// endpoint picker read llmo replicas unchanged.
type metrics struct {
	promptTokens *prometheus.CounterVec
	genTokens    *prometheus.CounterVec
	success      *prometheus.CounterVec
	ttft         *prometheus.HistogramVec
	itl          *prometheus.HistogramVec
	e2e          *prometheus.HistogramVec
	queue        *prometheus.HistogramVec
	rejected     *prometheus.CounterVec
	reg          prometheus.Registerer
}

// vLLM's bucket boundaries, so that quantiles line up on shared dashboards.
var (
	ttftBuckets = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0}
	itlBuckets  = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0}
	e2eBuckets  = []float64{0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0}
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reg: reg,
		promptTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vllm:prompt_tokens_total", Help: "Number of prefill tokens processed.",
		}, []string{"model_name"}),
		genTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vllm:generation_tokens_total", Help: "Number of generation tokens processed.",
		}, []string{"model_name"}),
		success: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vllm:request_success_total", Help: "Count of finished requests, by finish reason (stop, length, abort).",
		}, []string{"model_name", "finished_reason"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vllm:time_to_first_token_seconds", Help: "Time from request arrival to the first generated token.", Buckets: ttftBuckets,
		}, []string{"model_name"}),
		itl: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vllm:inter_token_latency_seconds", Help: "Time between consecutive generated tokens.", Buckets: itlBuckets,
		}, []string{"model_name"}),
		e2e: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vllm:e2e_request_latency_seconds", Help: "Time from request arrival to its last token.", Buckets: e2eBuckets,
		}, []string{"model_name"}),
		queue: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vllm:request_queue_time_seconds", Help: "Time a request waited for a batch slot.", Buckets: e2eBuckets,
		}, []string{"model_name"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "llmo_model_rejected_total", Help: "Requests refused before generation, by reason (queue_full, draining, invalid, not_found, timeout).",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.promptTokens, m.genTokens, m.success, m.ttft, m.itl, m.e2e, m.queue, m.rejected)
	for _, r := range []string{"queue_full", "draining", "invalid", "not_found", "timeout"} {
		m.rejected.WithLabelValues(r)
	}
	return m
}

// addModel registers the per-model gauges, read from the scheduler at
// scrape time so they are never stale.
func (m *metrics) addModel(mod *model) {
	name := prometheus.Labels{"model_name": mod.id}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vllm:num_requests_running", Help: "Number of requests in model execution batches.", ConstLabels: name,
		}, func() float64 { return float64(mod.b.Stats().Running) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vllm:num_requests_waiting", Help: "Number of requests waiting to be processed.", ConstLabels: name,
		}, func() float64 { return float64(mod.adm.Waiting() + int64(mod.b.Stats().Waiting)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vllm:kv_cache_usage_perc", Help: "KV-cache usage. 1 means 100 percent usage.", ConstLabels: name,
		}, func() float64 { return mod.b.Stats().KVUsage }),
	)
	for _, r := range []string{"stop", "length", "abort"} {
		m.success.WithLabelValues(mod.id, r)
	}
	m.promptTokens.WithLabelValues(mod.id)
	m.genTokens.WithLabelValues(mod.id)
}

// seqTimer records one sequence's latency metrics as its tokens arrive.
type seqTimer struct {
	m       *metrics
	model   string
	arrived time.Time
	last    time.Time
	tokens  int
}

func (m *metrics) timer(model string, arrived time.Time) *seqTimer {
	return &seqTimer{m: m, model: model, arrived: arrived}
}

// token is called for each generated token.
func (t *seqTimer) token(now time.Time) {
	if t.tokens == 0 {
		t.m.ttft.WithLabelValues(t.model).Observe(now.Sub(t.arrived).Seconds())
	} else {
		t.m.itl.WithLabelValues(t.model).Observe(now.Sub(t.last).Seconds())
	}
	t.tokens++
	t.last = now
	t.m.genTokens.WithLabelValues(t.model).Inc() // as it happens, so rates are live
}

// finish records the end of a sequence; reason is stop, length or abort.
func (t *seqTimer) finish(reason string, prompt, completion int) {
	t.m.e2e.WithLabelValues(t.model).Observe(time.Since(t.arrived).Seconds())
	t.m.success.WithLabelValues(t.model, reason).Inc()
	t.m.promptTokens.WithLabelValues(t.model).Add(float64(prompt))
	if extra := completion - t.tokens; extra > 0 { // tokens the engine counted but did not emit
		t.m.genTokens.WithLabelValues(t.model).Add(float64(extra))
	}
}
