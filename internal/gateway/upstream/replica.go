// Package upstream keeps the gateway's view of its model replicas: which
// exist (from flags, a config file, DNS or self-registration), which models
// each serves, whether each is healthy, and how loaded it is. The balancer
// reads it on every request, so the hot path is lock-free: pools are an
// immutable snapshot swapped atomically, and per-replica load lives in
// atomics.
package upstream

import (
	"math"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/llmo/llmo/api"
)

// Source says where a replica came from.
type Source string

// The replica sources, as reported by /api/health.
const (
	Static     Source = "static"
	File       Source = "file"
	DNS        Source = "dns"
	Registered Source = "registered"
)

// State is a replica's routing state.
type State int

// The states. Only Healthy replicas receive traffic.
const (
	Unhealthy State = iota // failing (or not yet passing) its active health check
	Healthy
	Ejected  // passively ejected after consecutive failures; readmitted later
	Draining // its /ready says it is draining
)

func (s State) String() string {
	switch s {
	case Healthy:
		return "healthy"
	case Ejected:
		return "ejected"
	case Draining:
		return "draining"
	}
	return "unhealthy"
}

// Replica is one upstream OpenAI-compatible server.
type Replica struct {
	URL  string   // normalised base URL without a trailing slash
	Base *url.URL // parsed URL

	breaker *gobreaker.TwoStepCircuitBreaker[struct{}]

	outstanding atomic.Int64
	avail       atomic.Bool   // Healthy and breaker not open: eligible for traffic
	breakerSt   atomic.Int32  // 0 closed, 1 half-open, 2 open
	waiting     atomic.Int64  // scraped vllm:num_requests_waiting
	running     atomic.Int64  // scraped vllm:num_requests_running
	kvBits      atomic.Uint64 // scraped vllm:kv_cache_usage_perc (float64 bits)

	latMu   sync.Mutex
	lat     [latencyWindow]float64 // recent times to response headers, seconds
	latN    int
	latLast time.Time

	mu           sync.Mutex
	state        State
	sources      map[Source]time.Time // source -> lease expiry (zero = no lease)
	staticModels []string             // models named by the config file, if any
	models       []api.Model          // learned from /v1/models
	modelsAt     time.Time
	consecFails  int
	ejections    int
	ejectedUntil time.Time
	lastErr      string
	stop         func()
}

// Outstanding is the number of requests this gateway has in flight to r.
func (r *Replica) Outstanding() int64 { return r.outstanding.Load() }

// Acquire counts a request in flight; call the returned func when it ends.
func (r *Replica) Acquire() func() {
	r.outstanding.Add(1)
	return func() { r.outstanding.Add(-1) }
}

// Hold counts one more outstanding request, like Acquire, without a closure
// to allocate; Release ends it.
func (r *Replica) Hold() { r.outstanding.Add(1) }

// Release ends a request counted by Hold.
func (r *Replica) Release() { r.outstanding.Add(-1) }

// Available reports whether r may receive traffic now.
func (r *Replica) Available() bool { return r.avail.Load() }

// Waiting, Running and KVUsage are the last scraped engine gauges.
func (r *Replica) Waiting() int64    { return r.waiting.Load() }
func (r *Replica) Running() int64    { return r.running.Load() }
func (r *Replica) KVUsage() float64  { return math.Float64frombits(r.kvBits.Load()) }
func (r *Replica) BreakerState() int { return int(r.breakerSt.Load()) }

// latencyWindow is how many recent observations the latency estimate
// takes the median of, latencyMinSamples how many it needs before it says
// anything (the median of one or two samples is an outlier as often as
// not, and a replica judged slow on one GC pause would lose every tie and
// never be measured again), and latencyMaxAge how old the newest may be
// before the estimate is forgotten (so a once-slow replica is probed again).
const (
	latencyWindow     = 8
	latencyMinSamples = 3
	latencyMaxAge     = 5 * time.Second
)

// Latency is the median of the last few times to response headers, in
// seconds (0 when unknown or stale). A median ignores the odd GC pause or
// scheduling hiccup that would swing a mean.
func (r *Replica) Latency() float64 {
	r.latMu.Lock()
	defer r.latMu.Unlock()
	if r.latN < latencyMinSamples || time.Since(r.latLast) > latencyMaxAge {
		return 0
	}
	n := min(r.latN, latencyWindow)
	var buf [latencyWindow]float64
	copy(buf[:n], r.lat[:n])
	w := buf[:n]
	slices.Sort(w)
	if n%2 == 1 {
		return w[n/2]
	}
	return (w[n/2-1] + w[n/2]) / 2
}

// ObserveLatency records one time-to-headers observation.
func (r *Replica) ObserveLatency(d time.Duration) {
	r.latMu.Lock()
	r.lat[r.latN%latencyWindow] = d.Seconds()
	r.latN++
	r.latLast = time.Now()
	r.latMu.Unlock()
}

// Breaker returns the replica's circuit breaker admission: done must be
// called with the attempt's outcome (nil error = success).
func (r *Replica) Breaker() (done func(error), err error) { return r.breaker.Allow() }

// State is r's routing state.
func (r *Replica) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// Source is the first source that named r, in a fixed order.
func (r *Replica) Source() Source {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sourceLocked()
}

func (r *Replica) sourceLocked() Source {
	for _, s := range []Source{Static, File, DNS, Registered} {
		if _, ok := r.sources[s]; ok {
			return s
		}
	}
	return Static
}

// ModelIDs are the models r serves: from the config file if it names them,
// otherwise as learned from r's /v1/models.
func (r *Replica) ModelIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.modelIDsLocked()
}

func (r *Replica) modelIDsLocked() []string {
	if len(r.staticModels) > 0 {
		return r.staticModels
	}
	ids := make([]string, 0, len(r.models))
	for _, m := range r.models {
		ids = append(ids, m.ID)
	}
	return ids
}

func (r *Replica) refreshAvail() {
	r.avail.Store(r.state == Healthy && r.breakerSt.Load() != 2)
}

// ID is r's URL; balance policies hash it.
func (r *Replica) ID() string { return r.URL }
