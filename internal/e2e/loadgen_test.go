package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// outcome is one logical request as a client saw it.
type outcome struct {
	code    int           // final HTTP status (0: no answer)
	err     error         // final transport error
	retries int           // client-side retries before the final answer
	latency time.Duration // of the final attempt
	hdr     map[string]string
}

// loadResult aggregates outcomes.
type loadResult struct {
	mu        sync.Mutex
	Sent      int64
	OK        int64
	Failed    int64
	Retried   int64 // client-side retries
	Codes     map[int]int64
	Errors    map[string]int64
	Latencies []time.Duration // of 200s
	FailedAt  []time.Time
	// Recovery bookkeeping for scenarios with an outage: the first and last
	// moment an attempt failed.
	firstFail, lastFail time.Time
}

func (r *loadResult) add(o outcome, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Codes == nil {
		r.Codes, r.Errors = map[int]int64{}, map[string]int64{}
	}
	r.Sent++
	r.Retried += int64(o.retries)
	r.Codes[o.code]++
	if o.code == 200 && o.err == nil {
		r.OK++
		r.Latencies = append(r.Latencies, o.latency)
		return
	}
	r.Failed++
	r.FailedAt = append(r.FailedAt, at)
	if o.err != nil {
		msg := o.err.Error()
		if len(msg) > 120 {
			msg = msg[:120]
		}
		r.Errors[msg]++
	}
}

func (r *loadResult) percentile(p float64) time.Duration {
	r.mu.Lock()
	l := slices.Clone(r.Latencies)
	r.mu.Unlock()
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	return l[min(len(l)-1, int(float64(len(l))*p))]
}

func (r *loadResult) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	codes := make([]string, 0, len(r.Codes))
	for c, n := range r.Codes {
		codes = append(codes, fmt.Sprintf("%d:%d", c, n))
	}
	sort.Strings(codes)
	var errs []string
	for e, n := range r.Errors {
		errs = append(errs, fmt.Sprintf("%dx %s", n, e))
	}
	return fmt.Sprintf("sent=%d ok=%d failed=%d client-retried=%d codes=[%s] errors=[%s]",
		r.Sent, r.OK, r.Failed, r.Retried, strings.Join(codes, " "), strings.Join(errs, "; "))
}

// runLoad runs workers that call do back to back until ctx ends, and
// returns the aggregate. A request in flight when ctx ends still counts:
// do gets its own context that outlives ctx by grace.
func runLoad(ctx context.Context, workers int, grace time.Duration, do func(ctx context.Context, worker int) outcome) *loadResult {
	res := &loadResult{}
	var wg sync.WaitGroup
	var stop atomic.Bool
	go func() { <-ctx.Done(); stop.Store(true) }()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for !stop.Load() {
				rctx, cancel := context.WithTimeout(context.Background(), grace)
				o := do(rctx, w)
				cancel()
				res.add(o, time.Now())
			}
		}(w)
	}
	wg.Wait()
	return res
}
