package modelsvc

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/llmo/llmo/internal/errs"
)

// admission bounds the work on one model: at most slots sequences run (one
// per KV slot) and at most queue more wait for one. A request that finds
// both full is refused at once with 429 rather than left to time out.
type admission struct {
	sem      *semaphore.Weighted
	slots    int64
	limit    int64        // slots + queue
	admitted atomic.Int64 // sequences running or waiting
	waiting  atomic.Int64 // sequences waiting for a slot
}

func newAdmission(slots, queue int) *admission {
	return &admission{sem: semaphore.NewWeighted(int64(slots)), slots: int64(slots), limit: int64(slots + queue)}
}

// acquire admits n sequences (a request with n choices), waiting for slots
// until ctx ends. It returns the release func and how long it waited.
func (a *admission) acquire(ctx context.Context, n int) (release func(), waited time.Duration, err error) {
	w := int64(n)
	if w > a.slots {
		return nil, 0, errs.Param("n", "n=%d is more than this server's %d concurrent sequences", n, a.slots)
	}
	if a.admitted.Add(w) > a.limit {
		a.admitted.Add(-w)
		return nil, 0, errs.E(errs.RateLimited, "server is at capacity (%d running, queue of %d full); retry later", a.slots, a.limit-a.slots).
			WithRetry(time.Second).WithCode("queue_full")
	}
	start := time.Now()
	a.waiting.Add(w)
	err = a.sem.Acquire(ctx, w)
	a.waiting.Add(-w)
	if err != nil {
		a.admitted.Add(-w)
		return nil, time.Since(start), err
	}
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			a.sem.Release(w)
			a.admitted.Add(-w)
		}
	}, time.Since(start), nil
}

// Waiting is the number of sequences waiting for a slot.
func (a *admission) Waiting() int64 { return a.waiting.Load() }

// Admitted is the number of sequences running or waiting.
func (a *admission) Admitted() int64 { return a.admitted.Load() }
