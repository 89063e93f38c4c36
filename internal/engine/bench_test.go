package engine

import (
	"testing"
)

// benchStep measures one decode step of `batch` sequences: the forward pass
// and greedy sampling, which is what the scheduler does per generated token
// (minus the event send). It must not allocate.
func benchStep(b *testing.B, name string, opts Options, batch int) {
	m := loadModel(b, name, opts)
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
	} {
		b.Run(c.name, func(b *testing.B) {
			benchStep(b, c.file, Options{Threads: c.threads, MaxBatch: c.batch}, c.batch)
		})
	}
}
