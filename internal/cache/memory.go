package cache

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// Memory is the in-process Store: an otter cache bounded in bytes (each
// entry weighs len(namespace)+len(key)+len(value)), with a TTL per entry and
// W-TinyLFU eviction. It also carries a MemoryIndex, so the monolith has a
// semantic index without any other moving part.
type Memory struct {
	c        *otter.Cache[memKey, memVal]
	maxBytes int64
	idx      *MemoryIndex

	hits, misses, evictions atomic.Int64
}

type memKey struct{ ns, key string }

type memVal struct {
	b   []byte
	ttl time.Duration
}

// DefaultMaxBytes bounds a memory cache when no size is given.
const DefaultMaxBytes = 256 << 20

// maxEntryWeight keeps a weight inside otter's uint32.
const maxEntryWeight = math.MaxUint32

// NewMemory returns a memory Store holding at most maxBytes of keys and
// values (0 or less means DefaultMaxBytes).
func NewMemory(maxBytes int64) Store { return NewMemoryStore(maxBytes) }

// NewMemoryStore is NewMemory with the concrete type, for callers that also
// want its semantic index or Close.
func NewMemoryStore(maxBytes int64) *Memory {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	m := &Memory{maxBytes: maxBytes, idx: NewMemoryIndex(0)}
	m.c = otter.Must(&otter.Options[memKey, memVal]{
		MaximumWeight: uint64(maxBytes),
		Weigher: func(k memKey, v memVal) uint32 {
			w := uint64(len(k.ns)) + uint64(len(k.key)) + uint64(len(v.b))
			return uint32(min(w, maxEntryWeight))
		},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[memKey, memVal]) time.Duration {
			return e.Value.ttl
		}),
		OnAtomicDeletion: func(e otter.DeletionEvent[memKey, memVal]) {
			if e.Cause == otter.CauseOverflow {
				m.evictions.Add(1)
			}
		},
	})
	return m
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, ns, key string) ([]byte, bool, error) {
	if err := validNSKey(ns, key); err != nil {
		return nil, false, err
	}
	v, ok := m.c.GetIfPresent(memKey{ns, key})
	if !ok {
		m.misses.Add(1)
		return nil, false, nil
	}
	m.hits.Add(1)
	return v.b, true, nil
}

// Set implements Store. The value is copied, so callers may reuse val.
func (m *Memory) Set(_ context.Context, ns, key string, val []byte, ttl time.Duration) error {
	if err := validNSKey(ns, key); err != nil {
		return err
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	m.c.Set(memKey{ns, key}, memVal{b: append([]byte(nil), val...), ttl: ttl})
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, ns, key string) error {
	if err := validNSKey(ns, key); err != nil {
		return err
	}
	m.c.Invalidate(memKey{ns, key})
	return nil
}

// Flush implements Store. It walks the keys (flushes are rare; lookups are
// not, so keys are not kept in per-namespace maps).
func (m *Memory) Flush(ctx context.Context, ns string) error {
	if err := ValidNamespace(ns); err != nil {
		return err
	}
	for k := range m.c.Keys() {
		if k.ns == ns {
			m.c.Invalidate(k)
		}
	}
	return m.idx.Flush(ctx, ns)
}

// Stats implements Store.
func (m *Memory) Stats(context.Context) (Stats, error) {
	m.c.CleanUp()
	return Stats{
		Backend:   "memory",
		Entries:   int64(m.c.EstimatedSize()),
		Bytes:     int64(m.c.WeightedSize()),
		MaxBytes:  m.maxBytes,
		Evictions: m.evictions.Load(),
		Hits:      m.hits.Load(),
		Misses:    m.misses.Load(),
	}, nil
}

// Add implements SemanticIndex with the store's in-memory index.
func (m *Memory) Add(ctx context.Context, ns, bucket string, e SemanticEntry, ttl time.Duration) error {
	return m.idx.Add(ctx, ns, bucket, e, ttl)
}

// Search implements SemanticIndex.
func (m *Memory) Search(ctx context.Context, ns, bucket string, vec []float32, k int, minScore float32) ([]SemanticMatch, error) {
	return m.idx.Search(ctx, ns, bucket, vec, k, minScore)
}

// Close stops otter's background goroutines.
func (m *Memory) Close() error {
	m.c.StopAllGoroutines()
	return nil
}

var (
	_ Store         = (*Memory)(nil)
	_ SemanticIndex = (*Memory)(nil)
)
