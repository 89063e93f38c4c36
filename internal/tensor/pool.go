package tensor

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Task is work split across a Pool: Run(i, n) does the i-th of n parts.
type Task interface {
	Run(part, parts int)
}

// spinLimit is how many polls a worker makes for new work before it parks.
// A forward pass dispatches a task every few microseconds, so workers that
// spin briefly pick up the next one without a scheduler round trip; idle
// workers park and cost nothing.
const spinLimit = 1 << 14

// Pool is a fixed set of worker goroutines started once. Do hands each
// worker a part of a Task without spawning goroutines or allocating, so a
// forward pass costs no garbage. A Pool runs one Task at a time; concurrent
// callers take turns.
type Pool struct {
	n       int
	mu      sync.Mutex
	task    Task          // the current task, published by seq
	seq     atomic.Uint64 // incremented for every task
	pending atomic.Int32  // parts not yet finished
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

func (p *Pool) work(part int, w *worker) {
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
		p.task.Run(part, p.n)
		p.pending.Add(-1)
	}
}

// Threads is the number of parts Do splits a task into.
func (p *Pool) Threads() int { return p.n }

// Do runs t.Run(i, n) for every part i and returns when all are done.
func (p *Pool) Do(t Task) {
	if p.n == 1 {
		t.Run(0, 1)
		return
	}
	p.mu.Lock()
	p.task = t
	p.pending.Store(int32(p.n - 1))
	p.seq.Add(1)
	for _, w := range p.workers {
		if w.sleeping.Load() {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
	t.Run(0, p.n)
	for spins := 0; p.pending.Load() != 0; spins++ {
		if spins&255 == 255 {
			runtime.Gosched()
		}
	}
	p.task = nil
	p.mu.Unlock()
}

// DoSerial runs t in the calling goroutine as a single part: for work too
// small to be worth waking the workers.
func (p *Pool) DoSerial(t Task) { t.Run(0, 1) }

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

// split is the [lo, hi) range of part i of n over total items, in multiples
// of align.
func split(total, part, parts, align int) (lo, hi int) {
	units := (total + align - 1) / align
	lo = units * part / parts * align
	hi = units * (part + 1) / parts * align
	return min(lo, total), min(hi, total)
}
