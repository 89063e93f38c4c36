package tensor

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Task is work cut into chunks that a Pool runs in any order, each exactly
// once. worker (0 <= worker < Pool.Threads()) identifies the goroutine
// running the chunk, for per-worker scratch space.
type Task interface {
	Chunks() int
	RunChunk(chunk, worker int)
}

// spinLimit is how many polls a worker makes for new work before it parks.
// A forward pass dispatches a task every few microseconds, so workers that
// spin briefly pick up the next one without a scheduler round trip; idle
// workers park and cost nothing.
const spinLimit = 1 << 14

// Pool is a fixed set of worker goroutines started once. Do publishes a
// task; the caller and the workers claim its chunks from a shared counter
// until none are left, so a worker that the OS has not scheduled (on a busy
// machine) delays nothing: the others take its share. Do neither spawns
// goroutines nor allocates. A Pool runs one Task at a time; concurrent
// callers take turns.
type Pool struct {
	n       int
	mu      sync.Mutex
	task    Task          // the current task, published by seq
	seq     atomic.Uint64 // task generation
	claim   atomic.Uint64 // claimWord(generation, chunks, next chunk)
	done    atomic.Int64  // chunks finished in the current task
	workers []*worker
	closed  atomic.Bool
	close   sync.Once
}

type worker struct {
	wake     chan struct{} // cap 1: a token wakes a parked worker
	sleeping atomic.Bool
}

// NewPool starts threads-1 workers (the caller of Do is the last one).
// threads <= 0 means GOMAXPROCS.
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	p := &Pool{n: threads}
	for i := 1; i < threads; i++ {
		w := &worker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		go p.work(i, w)
	}
	return p
}

func (p *Pool) work(id int, w *worker) {
	var seen uint64
	for {
		for spins := 0; p.seq.Load() == seen; spins++ {
			if p.closed.Load() {
				return
			}
			if spins < spinLimit {
				if spins&255 == 255 {
					runtime.Gosched()
				}
				continue
			}
			// Park. Do stores seq before it reads sleeping and we store
			// sleeping before we read seq, so one of us sees the other:
			// no lost wake-up.
			w.sleeping.Store(true)
			if p.seq.Load() == seen && !p.closed.Load() {
				<-w.wake
			}
			w.sleeping.Store(false)
			spins = 0
		}
		seen = p.seq.Load()
		if p.closed.Load() {
			return
		}
		p.runChunks(seen, id)
	}
}

// The claim word holds a task's generation (24 bits), its chunk count and
// the next chunk to run (20 bits each). Keeping the count in the same word
// as the generation matters: a worker that read the count of a newer task
// but the claim word of the older one would claim a chunk that does not
// exist, run it against the newer task and count it done, so that the
// newer Do could return before its last chunk finished.
const (
	claimBits = 20
	maxChunks = 1<<claimBits - 1
	claimMask = 1<<claimBits - 1
	genMask   = 1<<(64-2*claimBits) - 1
)

func claimWord(gen uint64, chunks, next int) uint64 {
	return (gen&genMask)<<(2*claimBits) | uint64(chunks)<<claimBits | uint64(next)
}

// runChunks claims and runs chunks of generation gen until none are left or
// the generation has moved on. The task is read only after a successful
// claim, which orders the read after Do's write of it; and Do cannot return
// (so no newer task can replace it) while a claimed chunk is unfinished.
func (p *Pool) runChunks(gen uint64, id int) {
	for {
		v := p.claim.Load()
		next, n := int(v&claimMask), int(v>>claimBits&claimMask)
		if v>>(2*claimBits) != gen&genMask || next >= n {
			return
		}
		if !p.claim.CompareAndSwap(v, v+1) {
			continue
		}
		p.task.RunChunk(next, id)
		p.done.Add(1)
	}
}

// Threads is the number of goroutines that run a task's chunks.
func (p *Pool) Threads() int { return p.n }

// Do runs every chunk of t and returns when all are done.
func (p *Pool) Do(t Task) {
	n := t.Chunks()
	if p.n == 1 || n <= 1 || n > maxChunks {
		p.DoSerial(t)
		return
	}
	p.mu.Lock()
	gen := p.seq.Load() + 1
	p.task = t
	p.done.Store(0)
	p.claim.Store(claimWord(gen, n, 0))
	p.seq.Store(gen)
	for _, w := range p.workers {
		if w.sleeping.Load() {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
	p.runChunks(gen, 0)
	for spins := 0; p.done.Load() < int64(n); spins++ {
		if spins&255 == 255 {
			runtime.Gosched()
		}
	}
	p.mu.Unlock()
}

// DoSerial runs every chunk of t in the calling goroutine: for work too
// small to be worth waking the workers.
func (p *Pool) DoSerial(t Task) {
	for c := range t.Chunks() {
		t.RunChunk(c, 0)
	}
}

// Close stops the workers. The pool must be idle.
func (p *Pool) Close() {
	p.close.Do(func() {
		p.closed.Store(true)
		for _, w := range p.workers {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	})
}
