package cache

import (
	"context"
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/llmo/llmo/internal/errs"
)

// Guard wraps a Store (and its SemanticIndex, when it has one) with a
// per-call timeout and a circuit breaker, so that a slow or dead cache costs
// callers at most the timeout a few times and then nothing at all: once the
// breaker opens, calls fail at once until a probe succeeds. Client errors
// (a bad key, a value too large) do not count against the cache.
type Guard struct {
	inner   Store
	idx     SemanticIndex
	timeout time.Duration
	cb      *gobreaker.CircuitBreaker[any]
}

// Breaker settings: three consecutive failures open the circuit; after
// GuardOpenFor one probe goes through.
const (
	guardTrip    = 3
	GuardOpenFor = 2 * time.Second
)

// NewGuard wraps inner. timeout <= 0 means 200ms.
func NewGuard(name string, inner Store, timeout time.Duration) *Guard {
	if g, ok := inner.(*Guard); ok {
		return g
	}
	if timeout <= 0 {
		timeout = 200 * time.Millisecond
	}
	g := &Guard{inner: inner, timeout: timeout}
	g.idx, _ = inner.(SemanticIndex)
	g.cb = gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     GuardOpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= guardTrip },
		IsSuccessful: func(err error) bool {
			if err == nil {
				return true
			}
			switch errs.KindOf(err) {
			case errs.Invalid, errs.TooLarge, errs.NotFound:
				return true
			}
			return false
		},
		IsExcluded: func(err error) bool { return errors.Is(err, errCallerGone) },
	})
	return g
}

// errCallerGone marks a call abandoned by its caller, which says nothing
// about the cache's health.
var errCallerGone = errors.New("caller canceled")

// State is the breaker's state: "closed", "half-open" or "open".
func (g *Guard) State() string { return g.cb.State().String() }

// Inner is the wrapped store.
func (g *Guard) Inner() Store { return g.inner }

func (g *Guard) do(ctx context.Context, fn func(ctx context.Context) error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	_, err := g.cb.Execute(func() (any, error) {
		cctx, cancel := context.WithTimeout(ctx, g.timeout)
		defer cancel()
		err := fn(cctx)
		if err != nil && ctx.Err() != nil {
			return nil, errors.Join(errCallerGone, ctx.Err())
		}
		if err != nil && cctx.Err() != nil {
			return nil, errs.Wrap(errs.Timeout, err, "cache call timed out after %s", g.timeout)
		}
		return nil, err
	})
	switch {
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		return errs.Wrap(errs.Unavailable, err, "cache unavailable (circuit open)")
	case errors.Is(err, errCallerGone):
		return ctx.Err()
	}
	return err
}

// Get implements Store.
func (g *Guard) Get(ctx context.Context, ns, key string) (b []byte, ok bool, err error) {
	err = g.do(ctx, func(ctx context.Context) error {
		b, ok, err = g.inner.Get(ctx, ns, key)
		return err
	})
	return b, ok, err
}

// Set implements Store.
func (g *Guard) Set(ctx context.Context, ns, key string, val []byte, ttl time.Duration) error {
	return g.do(ctx, func(ctx context.Context) error { return g.inner.Set(ctx, ns, key, val, ttl) })
}

// Delete implements Store.
func (g *Guard) Delete(ctx context.Context, ns, key string) error {
	return g.do(ctx, func(ctx context.Context) error { return g.inner.Delete(ctx, ns, key) })
}

// Flush implements Store.
func (g *Guard) Flush(ctx context.Context, ns string) error {
	return g.do(ctx, func(ctx context.Context) error { return g.inner.Flush(ctx, ns) })
}

// Stats implements Store.
func (g *Guard) Stats(ctx context.Context) (st Stats, err error) {
	err = g.do(ctx, func(ctx context.Context) error {
		st, err = g.inner.Stats(ctx)
		return err
	})
	return st, err
}

// Add implements SemanticIndex (an error when the store has no index).
func (g *Guard) Add(ctx context.Context, ns, bucket string, e SemanticEntry, ttl time.Duration) error {
	if g.idx == nil {
		return errs.E(errs.NotImplemented, "this cache store has no semantic index")
	}
	return g.do(ctx, func(ctx context.Context) error { return g.idx.Add(ctx, ns, bucket, e, ttl) })
}

// Search implements SemanticIndex.
func (g *Guard) Search(ctx context.Context, ns, bucket string, vec []float32, k int, minScore float32) (m []SemanticMatch, err error) {
	if g.idx == nil {
		return nil, errs.E(errs.NotImplemented, "this cache store has no semantic index")
	}
	err = g.do(ctx, func(ctx context.Context) error {
		m, err = g.idx.Search(ctx, ns, bucket, vec, k, minScore)
		return err
	})
	return m, err
}

// HasIndex reports whether the guarded store carries a semantic index.
func (g *Guard) HasIndex() bool { return g.idx != nil }

var (
	_ Store         = (*Guard)(nil)
	_ SemanticIndex = (*Guard)(nil)
)
