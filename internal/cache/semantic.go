package cache

import (
	"context"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/llmo/llmo/internal/errs"
)

// SemanticIndex finds earlier prompts close in meaning to a new one. Entries
// live in buckets (the gateway derives a bucket from everything except the
// prompt: model, digest, sampling parameters, conversation prefix), so a
// search only ever compares prompts whose answers would be interchangeable.
type SemanticIndex interface {
	Add(ctx context.Context, ns, bucket string, e SemanticEntry, ttl time.Duration) error
	// Search returns up to k entries of the bucket with cosine similarity
	// >= minScore, best first.
	Search(ctx context.Context, ns, bucket string, vec []float32, k int, minScore float32) ([]SemanticMatch, error)
}

// SemanticEntry is one indexed prompt. ID names the exact-cache entry that
// holds its answer; Text is kept for the gateway's negation/number guard.
type SemanticEntry struct {
	ID     string    `json:"id"`
	Text   string    `json:"text"`
	Vector []float32 `json:"vector"`
}

// SemanticMatch is a search result.
type SemanticMatch struct {
	ID    string  `json:"id"`
	Text  string  `json:"text"`
	Score float32 `json:"score"`
}

// Bounds of the semantic index.
const (
	DefaultSemanticPerBucket = 1024
	MaxVectorDim             = 8192
	MaxSemanticText          = 64 << 10
	maxSemanticK             = 32
	maxMemoryBuckets         = 16384
)

func validSemantic(ns, bucket string, vec []float32) error {
	if err := ValidNamespace(ns); err != nil {
		return err
	}
	if err := ValidKey(bucket); err != nil {
		return errs.Param("bucket", "bucket: %s", errs.As(err).Message)
	}
	if len(vec) == 0 || len(vec) > MaxVectorDim {
		return errs.Param("vector", "vector must have 1 to %d dimensions", MaxVectorDim)
	}
	for _, x := range vec {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return errs.Param("vector", "vector has a NaN or infinite component")
		}
	}
	return nil
}

func validEntry(ns, bucket string, e SemanticEntry) error {
	if err := validSemantic(ns, bucket, e.Vector); err != nil {
		return err
	}
	if err := ValidKey(e.ID); err != nil {
		return errs.Param("id", "id: %s", errs.As(err).Message)
	}
	if len(e.Text) > MaxSemanticText {
		return errs.Param("text", "text is longer than %d bytes", MaxSemanticText)
	}
	return nil
}

// Normalize returns v scaled to unit length (a copy), or nil for a zero vector.
func Normalize(v []float32) []float32 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return nil
	}
	inv := 1 / math.Sqrt(s)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out
}

// dot is the cosine similarity of two unit vectors.
func dot(a, b []float32) float32 {
	var s float32
	b = b[:len(a)]
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

// topK collects the best k matches.
type topK struct {
	k   int
	min float32
	m   []SemanticMatch
}

func (t *topK) offer(id, text string, score float32) {
	if score < t.min {
		return
	}
	for _, x := range t.m {
		if x.ID == id { // newest entry for an id wins (entries are scanned newest first)
			return
		}
	}
	t.m = append(t.m, SemanticMatch{ID: id, Text: text, Score: score})
	sort.SliceStable(t.m, func(i, j int) bool { return t.m[i].Score > t.m[j].Score })
	if len(t.m) > t.k {
		t.m = t.m[:t.k]
	}
}

func clampK(k int) int {
	if k <= 0 {
		return 1
	}
	return min(k, maxSemanticK)
}

// MemoryIndex is an in-process SemanticIndex: per bucket, a bounded ring of
// unit vectors scanned linearly (a bucket holds at most perBucket entries,
// so a scan is a few hundred thousand multiply-adds at worst).
type MemoryIndex struct {
	perBucket int
	now       func() time.Time

	mu      sync.RWMutex
	buckets map[bucketID]*ring
	order   []bucketID // creation order, for evicting whole buckets
}

type bucketID struct{ ns, bucket string }

type memEntry struct {
	SemanticEntry
	expires time.Time
}

type ring struct {
	mu   sync.Mutex
	ents []memEntry // oldest first
}

// NewMemoryIndex returns an index keeping at most perBucket entries per
// bucket (0 means DefaultSemanticPerBucket).
func NewMemoryIndex(perBucket int) *MemoryIndex {
	if perBucket <= 0 {
		perBucket = DefaultSemanticPerBucket
	}
	return &MemoryIndex{perBucket: perBucket, now: time.Now, buckets: map[bucketID]*ring{}}
}

// Add implements SemanticIndex.
func (x *MemoryIndex) Add(_ context.Context, ns, bucket string, e SemanticEntry, ttl time.Duration) error {
	if err := validEntry(ns, bucket, e); err != nil {
		return err
	}
	v := Normalize(e.Vector)
	if v == nil {
		return errs.Param("vector", "vector has zero length")
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	id := bucketID{ns, bucket}
	x.mu.Lock()
	r := x.buckets[id]
	if r == nil {
		if len(x.order) >= maxMemoryBuckets {
			delete(x.buckets, x.order[0])
			x.order = x.order[1:]
		}
		r = &ring{}
		x.buckets[id] = r
		x.order = append(x.order, id)
	}
	x.mu.Unlock()

	r.mu.Lock()
	defer r.mu.Unlock()
	r.ents = append(r.ents, memEntry{SemanticEntry{ID: e.ID, Text: e.Text, Vector: v}, x.now().Add(ttl)})
	if over := len(r.ents) - x.perBucket; over > 0 {
		r.ents = append(r.ents[:0:0], r.ents[over:]...)
	}
	return nil
}

// Search implements SemanticIndex.
func (x *MemoryIndex) Search(_ context.Context, ns, bucket string, vec []float32, k int, minScore float32) ([]SemanticMatch, error) {
	if err := validSemantic(ns, bucket, vec); err != nil {
		return nil, err
	}
	q := Normalize(vec)
	if q == nil {
		return nil, nil
	}
	x.mu.RLock()
	r := x.buckets[bucketID{ns, bucket}]
	x.mu.RUnlock()
	if r == nil {
		return nil, nil
	}
	now := x.now()
	t := topK{k: clampK(k), min: minScore}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.ents) - 1; i >= 0; i-- {
		e := &r.ents[i]
		if len(e.Vector) != len(q) || now.After(e.expires) {
			continue
		}
		t.offer(e.ID, e.Text, dot(q, e.Vector))
	}
	return t.m, nil
}

// Flush drops every bucket of ns.
func (x *MemoryIndex) Flush(_ context.Context, ns string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	keep := x.order[:0]
	for _, id := range x.order {
		if id.ns == ns {
			delete(x.buckets, id)
			continue
		}
		keep = append(keep, id)
	}
	x.order = keep
	return nil
}

var _ SemanticIndex = (*MemoryIndex)(nil)
