// Package balance chooses the replica that serves a request. There is one
// small policy per file, as in Caddy's selection policies:
//
//   - LeastLoaded: power of two random choices over a cost built from this
//     gateway's outstanding requests, the replica's scraped queue and KV-cache
//     use, and a decaying latency estimate.
//   - Prefix: rendezvous (highest random weight) hashing of the prompt prefix
//     with bounded load, so that every gateway replica sends a prefix to the
//     same model replica (whose KV cache may already hold it) without shared
//     state, and spills over only when that replica is overloaded.
//   - RoundRobin: the baseline.
package balance

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// Target is what a policy needs to know about a replica.
type Target interface {
	ID() string // stable across gateways: the replica URL
	Outstanding() int64
	Waiting() int64
	KVUsage() float64
	Latency() float64 // seconds; 0 when unknown
}

// Policy picks one of cands (never empty) for a request whose prompt prefix
// hashes to key, and returns its index.
type Policy[T Target] interface {
	Pick(cands []T, key uint64) int
	// NeedsKey reports whether Pick uses key, so callers can skip hashing.
	NeedsKey() bool
}

// Names of the policies, for --balancer.
const (
	NameLeastLoaded = "least-loaded"
	NamePrefix      = "prefix"
	NameRoundRobin  = "round-robin"
)

// New returns the policy called name.
func New[T Target](name string) (Policy[T], error) {
	switch name {
	case NameLeastLoaded, "":
		return &LeastLoaded[T]{}, nil
	case NamePrefix:
		return &Prefix[T]{LoadFactor: 1.25}, nil
	case NameRoundRobin:
		return &RoundRobin[T]{}, nil
	}
	return nil, fmt.Errorf("unknown balancer %q; want %s, %s or %s", name, NameLeastLoaded, NamePrefix, NameRoundRobin)
}

// HashKey hashes a prompt prefix.
func HashKey(prefix []byte) uint64 { return xxhash.Sum64(prefix) }

// RoundRobin cycles through the candidates.
type RoundRobin[T Target] struct{ n atomic.Uint64 }

// Pick implements Policy.
func (p *RoundRobin[T]) Pick(cands []T, _ uint64) int {
	return int((p.n.Add(1) - 1) % uint64(len(cands)))
}

// NeedsKey implements Policy.
func (p *RoundRobin[T]) NeedsKey() bool { return false }

// latencyFloor is the latency below which differences are ignored: a few
// milliseconds of jitter (GC, scheduling) must not steer traffic, and no
// model replica answers faster anyway.
const latencyFloor = 5e-3

// LeastLoaded is power-of-two-choices over Load, with latency breaking
// ties.
type LeastLoaded[T Target] struct{}

// Load is the work queued at t: this gateway's in-flight requests to it plus
// the engine's own waiting queue (requests from other gateways), plus its
// KV-cache use (0..1), which separates replicas with equal queues by how
// close they are to preempting.
func Load(t Target) float64 {
	return float64(t.Outstanding()+t.Waiting()) + t.KVUsage()
}

// Pick implements Policy. Of two random candidates the less loaded wins; at
// equal load a replica more than twice as slow loses (a slow replica under
// light, sequential traffic never builds a queue, so load alone would not
// see it). Smaller latency differences are noise and the choice stays
// random, which spreads load evenly over equal replicas.
func (p *LeastLoaded[T]) Pick(cands []T, _ uint64) int {
	n := len(cands)
	if n == 1 {
		return 0
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	li, lj := Load(cands[i]), Load(cands[j])
	switch {
	case lj < li:
		return j
	case li < lj:
		return i
	}
	ti, tj := max(cands[i].Latency(), latencyFloor), max(cands[j].Latency(), latencyFloor)
	if tj*2 < ti {
		return j
	}
	return i
}

// NeedsKey implements Policy.
func (p *LeastLoaded[T]) NeedsKey() bool { return false }

// Prefix is rendezvous hashing with bounded load (Mirrokni et al., 2018):
// candidates are ranked by hash(key, replica); the best-ranked one whose
// outstanding count stays within LoadFactor times the mean wins.
type Prefix[T Target] struct {
	LoadFactor float64 // > 1; 1.25 by default
	// MinLoad is the bound below which a replica never spills (default 4):
	// with a strict bound a replica holding one request would already spill
	// when the others are idle, and an engine batches several sequences at
	// no extra cost.
	MinLoad int64
}

// Pick implements Policy.
func (p *Prefix[T]) Pick(cands []T, key uint64) int {
	n := len(cands)
	if n == 1 {
		return 0
	}
	var total int64
	for _, c := range cands {
		total += c.Outstanding()
	}
	c := p.LoadFactor
	if c <= 1 {
		c = 1.25
	}
	minLoad := p.MinLoad
	if minLoad <= 0 {
		minLoad = 4
	}
	limit := max(int64(math.Ceil(c*float64(total+1)/float64(n))), minLoad)
	best, bestScore := -1, uint64(0)
	fallback, fbScore := 0, uint64(0)
	for i, t := range cands {
		s := Score(key, t.ID())
		if s >= fbScore {
			fallback, fbScore = i, s
		}
		if t.Outstanding()+1 <= limit && (best < 0 || s > bestScore) {
			best, bestScore = i, s
		}
	}
	if best < 0 {
		return fallback
	}
	return best
}

// NeedsKey implements Policy.
func (p *Prefix[T]) NeedsKey() bool { return true }

// Score is the rendezvous weight of replica id for key.
func Score(key uint64, id string) uint64 {
	return mix(key ^ xxhash.Sum64String(id))
}

// mix is splitmix64's finaliser: a cheap, well-distributed bijection.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
