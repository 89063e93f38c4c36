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

// Pool is a fixed set of worker goroutines started once. Do hands each
// worker a part of a Task without spawning goroutines or allocating, so a
// forward pass costs no garbage. A Pool runs one Task at a time; concurrent
// callers take turns.
type Pool struct {
	n     int
	mu    sync.Mutex
	work  []chan Task
	wg    sync.WaitGroup
	close sync.Once
}

// NewPool starts threads-1 workers (the caller of Do is the last one).
// threads <= 0 means GOMAXPROCS.
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	p := &Pool{n: threads}
	for i := 1; i < threads; i++ {
		ch := make(chan Task, 1)
		p.work = append(p.work, ch)
		go func(part int) {
			for t := range ch {
				t.Run(part, p.n)
				p.wg.Done()
			}
		}(i)
	}
	return p
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
	p.wg.Add(p.n - 1)
	for _, ch := range p.work {
		ch <- t
	}
	t.Run(0, p.n)
	p.wg.Wait()
	p.mu.Unlock()
}

// DoSerial runs t in the calling goroutine as a single part: for work too
// small to be worth waking the workers.
func (p *Pool) DoSerial(t Task) { t.Run(0, 1) }

// Close stops the workers. The pool must be idle.
func (p *Pool) Close() {
	p.close.Do(func() {
		for _, ch := range p.work {
			close(ch)
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

var _ = atomic.Int32{}
