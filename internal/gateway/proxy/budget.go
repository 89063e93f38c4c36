package proxy

import (
	"sync"
	"time"
)

// Budget limits retries to a fraction of traffic, as Finagle's and Envoy's
// retry budgets do, so that retries cannot multiply the load on a fleet that
// is already failing: every request deposits Ratio of a token, every retry
// spends one; a floor of MinPerSec retries per second is always allowed, so
// that low traffic can still fail over.
type Budget struct {
	mu        sync.Mutex
	ratio     float64
	tokens    float64
	max       float64
	minPerSec float64
	floor     float64
	last      time.Time
}

// NewBudget returns a budget allowing ratio retries per request plus
// minPerSec.
func NewBudget(ratio, minPerSec float64) *Budget {
	return &Budget{ratio: ratio, max: 100 * max(ratio, 0.01), minPerSec: minPerSec, floor: minPerSec, last: time.Now()}
}

// Deposit credits one request.
func (b *Budget) Deposit() {
	b.mu.Lock()
	b.tokens = min(b.max, b.tokens+b.ratio)
	b.mu.Unlock()
}

// Withdraw spends one retry and reports whether it was allowed.
func (b *Budget) Withdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	now := time.Now()
	b.floor = min(b.minPerSec, b.floor+now.Sub(b.last).Seconds()*b.minPerSec)
	b.last = now
	if b.floor >= 1 {
		b.floor--
		return true
	}
	return false
}
