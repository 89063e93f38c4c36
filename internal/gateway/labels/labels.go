// Package labels caches Prometheus metric children by their label values.
// CounterVec.WithLabelValues hashes the values and, because the variadic
// slice escapes into the vector, allocates on every call; on the gateway's
// hot path (several counters per proxied request) that is measurable. A
// Cache keeps each child behind a comparable key struct in a plain map under
// a read lock, so a lookup of a known child allocates nothing.
//
// A child looked up here must never be deleted from its vector (the cache
// would keep counting into the orphan): the gateway's vectors only grow.
package labels

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Cache maps a key K to the child of a metric vector.
type Cache[K comparable, M any] struct {
	mu  sync.RWMutex
	m   map[K]M
	get func(K) M
}

// New returns a cache that builds missing children with get (typically a
// closure calling WithLabelValues).
func New[K comparable, M any](get func(K) M) *Cache[K, M] {
	return &Cache[K, M]{m: map[K]M{}, get: get}
}

// Get returns the child for k, creating it on first use.
func (c *Cache[K, M]) Get(k K) M {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = c.get(k)
	c.mu.Lock()
	c.m[k] = v
	c.mu.Unlock()
	return v
}

// Counters is a Cache of counters.
type Counters[K comparable] = Cache[K, prometheus.Counter]

// Observers is a Cache of histograms or summaries.
type Observers[K comparable] = Cache[K, prometheus.Observer]
