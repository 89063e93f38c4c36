package auth

import (
	"math"
	"sync"
	"time"
)

// tokenBucket is a tokens-per-minute budget. x/time/rate covers the
// requests/minute limit, but a token quota also needs to give back what a
// request reserved and did not use, and to charge more than was reserved
// (running into debt that later requests wait out); rate.Limiter can do
// neither exactly, so this small bucket does it under one mutex. Every
// operation is atomic, which is what keeps concurrent admissions from
// overshooting.
type tokenBucket struct {
	mu       sync.Mutex
	capacity float64 // tokens per minute; also the burst
	perSec   float64
	tokens   float64 // may go negative (debt) after a charge
	last     time.Time
}

func newTokenBucket(tpm int, now time.Time) *tokenBucket {
	return &tokenBucket{capacity: float64(tpm), perSec: float64(tpm) / 60, tokens: float64(tpm), last: now}
}

func (b *tokenBucket) refill(now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(b.capacity, b.tokens+dt*b.perSec)
		b.last = now
	}
}

// take reserves n tokens if they are there. Otherwise it reserves nothing
// and says how long until they would be.
func (b *tokenBucket) take(n int, now time.Time) (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	need := float64(n)
	if b.tokens >= need {
		b.tokens -= need
		return true, 0
	}
	secs := (need - b.tokens) / b.perSec
	return false, time.Duration(math.Ceil(secs * float64(time.Second)))
}

// adjust gives back delta tokens (delta > 0, capped at capacity) or charges
// -delta more (delta < 0, possibly into debt).
func (b *tokenBucket) adjust(delta int, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	b.tokens = math.Min(b.capacity, b.tokens+float64(delta))
}

// available is the current budget, for tests and debugging.
func (b *tokenBucket) available(now time.Time) float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	return b.tokens
}
