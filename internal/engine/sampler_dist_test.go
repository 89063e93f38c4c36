package engine

import (
	"math"
	"testing"
)

// TestTemperatureSamplingMatchesSoftmax: plain temperature sampling (the
// unranked fast path) and the ranked path (top-p just under 1) both draw
// tokens with the frequencies softmax(logits/T) predicts.
func TestTemperatureSamplingMatchesSoftmax(t *testing.T) {
	logits := []float32{2, 1, 0.5, -1, 3, -60}
	const temp = 1.5
	want := make([]float64, len(logits))
	var z float64
	for i, l := range logits {
		want[i] = math.Exp(float64(l) / temp)
		z += want[i]
	}
	for i := range want {
		want[i] /= z
	}
	for _, cfg := range []Sampling{{Temperature: temp}, {Temperature: temp, TopP: 0.999999}} {
		s := newSampler(len(logits))
		s.reset(cfg, 7)
		const n = 200000
		counts := make([]int, len(logits))
		buf := make([]float32, len(logits))
		for range n {
			copy(buf, logits)
			counts[s.sample(buf)]++
		}
		for i, c := range counts {
			got := float64(c) / n
			if math.Abs(got-want[i]) > 0.006 {
				t.Errorf("%+v: token %d drawn %.4f of the time, softmax says %.4f", cfg, i, got, want[i])
			}
		}
	}
	// Same seed, same draws.
	a, b := newSampler(len(logits)), newSampler(len(logits))
	a.reset(Sampling{Temperature: 1}, 42)
	b.reset(Sampling{Temperature: 1}, 42)
	for range 100 {
		x, y := append([]float32{}, logits...), append([]float32{}, logits...)
		if a.sample(x) != b.sample(y) {
			t.Fatal("seeded sampling is not reproducible")
		}
	}
}

func BenchmarkSampleTemperature(b *testing.B) {
	logits := make([]float32, 32000)
	for i := range logits {
		logits[i] = float32(math.Sin(float64(i))) * 4
	}
	s := newSampler(len(logits))
	s.reset(Sampling{Temperature: 0.8}, 1)
	buf := make([]float32, len(logits))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, logits)
		s.sample(buf)
	}
}
