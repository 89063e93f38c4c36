package upstream

import (
	"testing"
	"time"
)

// TestLatencyNeedsSeveralSamples: one slow response (a GC pause, a cold
// connection) must not mark a replica slow, or the least-loaded balancer
// would starve it of the traffic that would correct the estimate.
func TestLatencyNeedsSeveralSamples(t *testing.T) {
	var r Replica
	r.ObserveLatency(200 * time.Millisecond)
	r.ObserveLatency(2 * time.Millisecond)
	if got := r.Latency(); got != 0 {
		t.Fatalf("Latency after 2 samples = %v, want 0 (unknown)", got)
	}
	r.ObserveLatency(3 * time.Millisecond)
	if got := r.Latency(); got != 0.003 {
		t.Fatalf("Latency after 3 samples = %v, want the median 0.003", got)
	}
}
