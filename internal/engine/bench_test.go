package engine

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// benchStep measures one decode step of `batch` sequences: the forward pass
// and greedy sampling, which is what the scheduler does per generated token
// (minus the event send). It must not allocate.
func benchStep(b *testing.B, name string, opts Options, batch int) {
	var m *Model
	if filepath.IsAbs(name) {
		var err error
		if m, err = Load(name, opts); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close() })
	} else {
		m = loadModel(b, name, opts)
	}
	r := newRunner(m, batch, 256, max(batch, 8), batch)
	samp := make([]*sampler, batch)
	for i := range samp {
		samp[i] = newSampler(m.hp.vocab)
		samp[i].reset(Sampling{}, 1)
	}
	toks := make([]int, batch)
	for i := range toks {
		toks[i] = 1
	}
	pos := 0
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		if pos == 255 {
			pos = 0
		}
		r.b.reset()
		for i := range batch {
			r.b.add(toks[i], i, pos, true)
		}
		r.forward(false)
		for i := range batch {
			toks[i] = samp[i].sample(r.logits[i*m.hp.vocab : (i+1)*m.hp.vocab])
			samp[i].accept(toks[i])
		}
		pos++
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "tok/s")
	// CPU time per token: on a machine shared with other work, wall time
	// says more about the neighbours than about the engine.
	b.ReportMetric(float64(b.N*batch)/(cpuTime()-cpu0).Seconds(), "tok/cpu-s")
}

func BenchmarkDecodeStep(b *testing.B) {
	for _, c := range []struct {
		name    string
		file    string
		threads int
		batch   int
	}{
		{"260K", "stories260K.gguf", 1, 1},
		{"15M-q8_0", "synth-15m-q8_0.gguf", 1, 1},
		{"15M-q8_0-batch8", "synth-15m-q8_0.gguf", 1, 8},
		{"15M-q8_0-2threads", "synth-15m-q8_0.gguf", 2, 1},
		// A 110M-shape Q8_0 model made with
		// go run ./internal/synth/cmd/mksynth -shape 110m -type q8_0 -o FILE
		// runs when LLMO_BENCH_110M=FILE.
		{"110M-q8_0", os.Getenv("LLMO_BENCH_110M"), 1, 1},
		{"110M-q8_0-batch8", os.Getenv("LLMO_BENCH_110M"), 1, 8},
	} {
		if c.file == "" {
			continue
		}
		b.Run(c.name, func(b *testing.B) {
			benchStep(b, c.file, Options{Threads: c.threads, MaxBatch: c.batch}, c.batch)
		})
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
