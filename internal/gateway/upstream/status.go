package upstream

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

// ReplicaStatus is one replica as /api/health reports it.
type ReplicaStatus struct {
	URL         string  `json:"url"`
	State       string  `json:"state"`
	Breaker     string  `json:"breaker"`
	Outstanding int64   `json:"outstanding"`
	Waiting     int64   `json:"waiting"`
	Running     int64   `json:"running"`
	KVUsage     float64 `json:"kv_usage"`
	Source      string  `json:"source"`
	LastError   string  `json:"last_error,omitempty"`
}

// PoolStatus is one model's pool as /api/health reports it.
type PoolStatus struct {
	Model    string          `json:"model"`
	Healthy  int             `json:"healthy"`
	Replicas []ReplicaStatus `json:"replicas"`
}

var breakerNames = [...]string{"closed", "half-open", "open"}

// Status describes r.
func (r *Replica) Status() ReplicaStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return ReplicaStatus{
		URL: r.URL, State: r.state.String(), Breaker: breakerNames[r.breakerSt.Load()],
		Outstanding: r.outstanding.Load(), Waiting: r.waiting.Load(), Running: r.running.Load(),
		KVUsage: r.KVUsage(), Source: string(r.sourceLocked()), LastError: r.lastErr,
	}
}

// Status describes every pool, sorted by model. Replicas that serve no
// known model yet are listed under the model "".
func (g *Registry) Status() []PoolStatus {
	pools := g.Pools()
	out := make([]PoolStatus, 0, len(pools))
	inPool := map[*Replica]bool{}
	for m, rs := range pools {
		ps := PoolStatus{Model: m, Replicas: []ReplicaStatus{}}
		for _, r := range rs {
			inPool[r] = true
			st := r.Status()
			if st.State == "healthy" {
				ps.Healthy++
			}
			ps.Replicas = append(ps.Replicas, st)
		}
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	var orphans []ReplicaStatus
	for _, r := range g.Replicas() {
		if !inPool[r] {
			orphans = append(orphans, r.Status())
		}
	}
	if len(orphans) > 0 {
		out = append(out, PoolStatus{Model: "", Replicas: orphans})
	}
	return out
}

// Collector exports the replica gauges of CONTRACTS.md at scrape time, so
// removed replicas leave no stale series behind.
type Collector struct {
	g                         *Registry
	healthy, outstanding, brk *prometheus.Desc
}

// NewCollector returns a prometheus.Collector over g.
func NewCollector(g *Registry) *Collector {
	return &Collector{g: g,
		healthy:     prometheus.NewDesc("llmo_gateway_replica_healthy", "1 when the replica receives traffic (healthy, not ejected, breaker not open).", []string{"model", "replica"}, nil),
		outstanding: prometheus.NewDesc("llmo_gateway_replica_outstanding", "Requests this gateway has in flight to the replica.", []string{"model", "replica"}, nil),
		brk:         prometheus.NewDesc("llmo_gateway_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open.", []string{"replica"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.healthy
	ch <- c.outstanding
	ch <- c.brk
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for m, rs := range c.g.Pools() {
		for _, r := range rs {
			h := 0.0
			if r.Available() {
				h = 1
			}
			ch <- prometheus.MustNewConstMetric(c.healthy, prometheus.GaugeValue, h, m, r.URL)
			ch <- prometheus.MustNewConstMetric(c.outstanding, prometheus.GaugeValue, float64(r.Outstanding()), m, r.URL)
		}
	}
	for _, r := range c.g.Replicas() {
		ch <- prometheus.MustNewConstMetric(c.brk, prometheus.GaugeValue, float64(r.BreakerState()), r.URL)
	}
}
