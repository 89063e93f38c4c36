package tensor

import (
	"math"
	"math/big"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func TestHalfRoundTrip(t *testing.T) {
	tests := []struct {
		in   float32
		want uint16
	}{
		{0, 0}, {1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {1e6, 0x7c00},
		{5.960464477539063e-08, 0x0001},                 // smallest subnormal
		{2.9802322387695312e-08, 0},                     // tie between 0 and the smallest subnormal -> even
		{1.0009765625, 0x3c01}, {1.00048828125, 0x3c00}, // tie -> even
		{float32(math.Inf(-1)), 0xfc00},
	}
	for _, tt := range tests {
		if got := F32ToF16(tt.in); got != tt.want {
			t.Errorf("F32ToF16(%g) = %#04x, want %#04x", tt.in, got, tt.want)
		}
	}
	for h := range 1 << 16 {
		if e := h >> 10 & 0x1f; e == 0x1f {
			continue
		}
		f := F16ToF32(uint16(h))
		if got := F32ToF16(f); got != uint16(h) {
			t.Fatalf("round trip of %#04x (%g) = %#04x", h, f, got)
		}
	}
	if got := BF16ToF32(F32ToBF16(1.5)); got != 1.5 {
		t.Errorf("bf16 1.5 -> %g", got)
	}
}

// Each SIMD kernel against its Go twin, over lengths that exercise the
// unrolled body and the tails.
func TestKernelsMatchTwins(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 7, 8, 31, 32, 33, 48, 64, 100, 288, 768, 2048} {
		a, b := randVec(r, n), randVec(r, n)
		got, want := dotF32(a, b), dotF32Go(a, b)
		if d := math.Abs(float64(got - want)); d > 1e-4*math.Sqrt(float64(n)) {
			t.Errorf("dotF32 n=%d: %g, twin %g", n, got, want)
		}
		y1, y2 := randVec(r, n), make([]float32, n)
		copy(y2, y1)
		axpy(0.37, a, y1)
		axpyGo(0.37, a, y2)
		for i := range y1 {
			if math.Abs(float64(y1[i]-y2[i])) > 1e-5 {
				t.Fatalf("axpy n=%d i=%d: %g, twin %g", n, i, y1[i], y2[i])
			}
		}
	}
	half := func(n int) []uint16 {
		h := make([]uint16, n)
		for i, v := range randVec(r, n) {
			h[i] = F32ToF16(v)
		}
		return h
	}
	// FMA32 rounds once: against an exact computation, with ordinary sums
	// and with sums where the product nearly cancels c.
	for i := range 20000 {
		a, b, c := float32(r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64())
		if i%2 == 0 {
			a = math.Float32frombits(math.Float32bits(a) | 1)
			b = math.Float32frombits(math.Float32bits(b) | 1)
			c = -a * b
		}
		want, _ := new(big.Float).SetPrec(200).Add(
			new(big.Float).SetPrec(200).Mul(big.NewFloat(float64(a)), big.NewFloat(float64(b))),
			big.NewFloat(float64(c))).Float32()
		if got := FMA32(a, b, c); got != want {
			t.Fatalf("FMA32(%g, %g, %g) = %g, want %g", a, b, c, got, want)
		}
	}
	// The half-precision attention kernels have the same arithmetic in the
	// same order as their twins: bit for bit.
	for _, n := range []int{8, 16, 24, 48, 64, 72, 128, 136, 256, 7} {
		a, b := half(n), half(n)
		if got, want := dotHalf(a, b), dotHalfGo(a, b); got != want {
			t.Errorf("dotHalf n=%d: %g, twin %g", n, got, want)
		}
		for _, rows := range []int{1, 4, 7, 9, 13, 21} {
			stride := n + 8
			k := half(rows * stride)
			got, want := make([]float32, rows), make([]float32, rows)
			dotHalfRows(got, k, stride, a)
			dotHalfRowsGo(want, k, stride, a)
			if !slices.Equal(got, want) {
				t.Errorf("dotHalfRows n=%d rows=%d: %v, twin %v", n, rows, got, want)
			}
		}
		y1 := half(n)
		y2 := append([]uint16(nil), y1...)
		madHalf(y1, a, -0.7)
		madHalfGo(y2, a, -0.7)
		if !slices.Equal(y1, y2) {
			t.Fatalf("madHalf n=%d: %v, twin %v", n, y1, y2)
		}
		scaleHalf(y1, 0.3)
		scaleHalfGo(y2, 0.3)
		if !slices.Equal(y1, y2) {
			t.Fatalf("scaleHalf n=%d: %v, twin %v", n, y1, y2)
		}
	}
	for _, nb := range []int{1, 2, 3, 9, 24, 64} {
		n := nb * QK
		w, x := Q8Blocks{make([]float32, nb), make([]int8, n)}, Q8Blocks{make([]float32, nb), make([]int8, n)}
		QuantizeQ8(w, randVec(r, n))
		QuantizeQ8(x, randVec(r, n))
		w.Qs[0], w.Qs[1] = -128, -128 // weights may hold -128; activations never do
		// Same sums in the same order: equal up to the twin's FMA being
		// computed in float64 (a double rounding, rarely one ulp apart).
		got, want := dotQ8(w.D, w.Qs, x.D, x.Qs), dotQ8Go(w.D, w.Qs, x.D, x.Qs)
		if d := math.Abs(float64(got - want)); d > 1e-6*math.Abs(float64(want))+1e-6 {
			t.Errorf("dotQ8 blocks=%d: %g, twin %g", nb, got, want)
		}
		// The four-vector kernel gives the single kernel's results exactly.
		const stride = 70
		xs := Q8Blocks{make([]float32, 4*stride), make([]int8, 4*stride*QK)}
		for i := range 4 {
			QuantizeQ8(Q8Blocks{xs.D[i*stride:], xs.Qs[i*stride*QK:]}, randVec(r, n))
		}
		var o4 [4]float32
		dotQ8x4(w.D, w.Qs, xs.D, xs.Qs, stride, &o4)
		for i := range 4 {
			one := dotQ8(w.D, w.Qs, xs.D[i*stride:i*stride+nb], xs.Qs[i*stride*QK:(i*stride+nb)*QK])
			if o4[i] != one {
				t.Errorf("dotQ8x4 blocks=%d vector %d: %g, single kernel %g", nb, i, o4[i], one)
			}
		}
		// So does the four-row kernel (rows of xs used as weights).
		dotQ8r4(xs.D[:4*nb], xs.Qs[:4*nb*QK], x.D, x.Qs, &o4)
		for i := range 4 {
			one := dotQ8(xs.D[i*nb:(i+1)*nb], xs.Qs[i*nb*QK:(i+1)*nb*QK], x.D, x.Qs)
			if o4[i] != one {
				t.Errorf("dotQ8r4 blocks=%d row %d: %g, single kernel %g", nb, i, o4[i], one)
			}
		}
	}
}

// The fast rounding is round-half-to-even on every value a block can hold.
func TestRoundMagic(t *testing.T) {
	for _, v := range []float32{0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, -126.5, 127, -127, 0.49999997, 3.4999998, 0} {
		p := float32(v)
		got := int32((p + roundMagic) - roundMagic)
		if want := int32(math.RoundToEven(float64(v))); got != want {
			t.Errorf("round(%g) = %d, want %d", v, got, want)
		}
	}
}

func TestQuantizeQ8(t *testing.T) {
	x := make([]float32, 64)
	for i := range x {
		x[i] = float32(i-20) / 8
	}
	q := Q8Blocks{make([]float32, 2), make([]int8, 64)}
	QuantizeQ8(q, x)
	// Block 0 spans -2.5..1.375: amax 2.5, so -2.5 -> -127.
	if q.Qs[0] != -127 || q.D[0] != F16ToF32(F32ToF16(2.5/127)) {
		t.Errorf("block 0: q[0]=%d d=%g", q.Qs[0], q.D[0])
	}
	back := make([]float32, 64)
	DequantizeQ8(back, q.D, q.Qs)
	for i := range x {
		if math.Abs(float64(back[i]-x[i])) > float64(q.D[i/QK]) {
			t.Errorf("x[%d]=%g dequantized to %g", i, x[i], back[i])
		}
	}
	// The GGUF block layout parses to the same blocks.
	raw := make([]byte, 0, 68)
	for b := range 2 {
		h := F32ToF16(q.D[b])
		raw = append(raw, byte(h), byte(h>>8))
		for _, v := range q.Qs[b*QK : b*QK+QK] {
			raw = append(raw, byte(v))
		}
	}
	p := Q8Blocks{make([]float32, 2), make([]int8, 64)}
	ParseQ8_0(p, raw)
	for i := range p.Qs {
		if p.Qs[i] != q.Qs[i] {
			t.Fatalf("parsed quant %d = %d, want %d", i, p.Qs[i], q.Qs[i])
		}
	}
}

// MatMul over a pool gives the serial products, for F32 and Q8 weights, in
// one combined dispatch with bias and output stride. 13 tokens take every
// Q8 kernel form (8 tokens, 4, then 1), and 130 rows the 4-row groups and
// the single rows after them.
func TestMatMulPool(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const rows, cols, T = 130, 96, 13
	w := NewF32(rows, cols, randVec(r, rows*cols))
	wq, err := QuantizeMatrix(w)
	if err != nil {
		t.Fatal(err)
	}
	in := NewInput(T, cols)
	copy(in.X, randVec(r, T*cols))
	in.Set(T)
	bias := randVec(r, rows)
	for _, threads := range []int{1, 2, 3} {
		p := NewPool(threads)
		outF, outQ, outQB := make([]float32, T*rows), make([]float32, T*(rows+3)), make([]float32, T*rows)
		mm := MatMul{Jobs: []Job{{W: w, In: in, Out: outF, Bias: bias}, {W: wq, In: in, Out: outQ, OutStride: rows + 3}, {W: wq, In: in, Out: outQB, Bias: bias}}}
		mm.Compute(p)
		for tt := range T {
			for rr := range rows {
				want := dotF32Go(w.F32[rr*cols:(rr+1)*cols], in.X[tt*cols:(tt+1)*cols]) + bias[rr]
				if d := math.Abs(float64(outF[tt*rows+rr] - want)); d > 1e-3 {
					t.Fatalf("threads=%d F32 [%d,%d] = %g, want %g", threads, tt, rr, outF[tt*rows+rr], want)
				}
				// Q8 products stay near the float ones: the quantization error
				// of both operands, about 1% of the magnitudes here.
				if d := math.Abs(float64(outQ[tt*(rows+3)+rr] - (want - bias[rr]))); d > 0.5 {
					t.Fatalf("threads=%d Q8 [%d,%d] = %g, float %g", threads, tt, rr, outQ[tt*(rows+3)+rr], want-bias[rr])
				}
				if got, want := outQB[tt*rows+rr], outQ[tt*(rows+3)+rr]+bias[rr]; got != want {
					t.Fatalf("threads=%d Q8 with bias [%d,%d] = %g, want %g", threads, tt, rr, got, want)
				}
			}
		}
		p.Close()
	}
}

func BenchmarkDotQ8(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 768
	w, x := Q8Blocks{make([]float32, n/QK), make([]int8, n)}, Q8Blocks{make([]float32, n/QK), make([]int8, n)}
	QuantizeQ8(w, randVec(r, n))
	QuantizeQ8(x, randVec(r, n))
	b.SetBytes(n + n/QK*4)
	for b.Loop() {
		dotQ8(w.D, w.Qs, x.D, x.Qs)
	}
}

func BenchmarkDotQ8Go(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 768
	w, x := Q8Blocks{make([]float32, n/QK), make([]int8, n)}, Q8Blocks{make([]float32, n/QK), make([]int8, n)}
	QuantizeQ8(w, randVec(r, n))
	QuantizeQ8(x, randVec(r, n))
	b.SetBytes(n + n/QK*4)
	for b.Loop() {
		dotQ8Go(w.D, w.Qs, x.D, x.Qs)
	}
}

func BenchmarkDotF32(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	a, c := randVec(r, 768), randVec(r, 768)
	b.SetBytes(768 * 4)
	for b.Loop() {
		dotF32(a, c)
	}
}

type countTask struct {
	hits    []atomic.Int64
	workers []atomic.Int64
}

func (c *countTask) Chunks() int { return len(c.hits) }

func (c *countTask) RunChunk(chunk, worker int) {
	c.hits[chunk].Add(1)
	c.workers[worker].Add(1)
}

// Every Do runs each chunk exactly once, also with concurrent callers and
// with workers that parked between tasks.
func TestPool(t *testing.T) {
	for _, threads := range []int{1, 2, 3} {
		p := NewPool(threads)
		c := &countTask{hits: make([]atomic.Int64, 37), workers: make([]atomic.Int64, threads)}
		var wg sync.WaitGroup
		for g := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 300 {
					if g == 1 && i%100 == 0 {
						time.Sleep(2 * time.Millisecond) // let workers park
					}
					p.Do(c)
				}
			}()
		}
		wg.Wait()
		for i := range c.hits {
			if n := c.hits[i].Load(); n != 600 {
				t.Errorf("threads=%d chunk %d ran %d times, want 600", threads, i, n)
			}
		}
		var total int64
		for i := range c.workers {
			total += c.workers[i].Load()
		}
		if total != 600*37 {
			t.Errorf("workers ran %d chunks, want %d", total, 600*37)
		}
		p.Close()
	}
}

// growTask has more chunks each time, and each chunk marks itself started
// and finished; Do must not return while any chunk of its task runs.
type growTask struct {
	n       int
	running atomic.Int64
	ran     atomic.Int64
}

func (g *growTask) Chunks() int { return g.n }

func (g *growTask) RunChunk(c, _ int) {
	g.running.Add(1)
	for range 50 * (c % 4) { // uneven chunk lengths
		runtime.Gosched()
	}
	g.ran.Add(1)
	g.running.Add(-1)
}

// TestPoolDoWaitsForGrowingTasks: tasks of increasing chunk counts, back to
// back, must each run every chunk once and be finished when Do returns. (It
// guards the claim word; the race that word closes, a worker pairing a new
// task's chunk count with the old task's claim state, has a window too
// narrow to hit reliably here.)
func TestPoolDoWaitsForGrowingTasks(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	for i := range 3000 {
		g := &growTask{n: 2 + i%17}
		p.Do(g)
		if r := g.running.Load(); r != 0 {
			t.Fatalf("task %d: Do returned with %d chunks still running", i, r)
		}
		if got := g.ran.Load(); got != int64(g.n) {
			t.Fatalf("task %d: %d chunks ran, want %d", i, got, g.n)
		}
	}
}

// Expf is glibc's expf: within 0.502 ulp of e^x. Against math.Exp rounded
// to float32 (correctly rounded but for float64 error), it may differ by one
// ulp where e^x lies within a few thousandths of an ulp of halfway between
// two float32s: about 1 in 2000 arguments.
func TestExpf(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	off := 0
	for i := range 2_000_000 {
		x := float32(-100 + 110*r.Float64())
		if i < 1000 {
			x = float32(-r.Float64()) // the softmax range, densely
		}
		got, want := Expf(x), float32(math.Exp(float64(x)))
		if got == want {
			continue
		}
		ulps := int64(math.Float32bits(got)) - int64(math.Float32bits(want))
		if ulps > 1 || ulps < -1 {
			t.Fatalf("Expf(%g) = %g, want %g", x, got, want)
		}
		off++
	}
	if off > 2000 {
		t.Errorf("%d of 2e6 results one ulp off; only near-ties should be", off)
	}
	for _, c := range []struct{ x, want float32 }{
		{0, 1}, {float32(math.Inf(-1)), 0}, {-200, 0}, {100, float32(math.Inf(1))},
	} {
		if got := Expf(c.x); got != c.want {
			t.Errorf("Expf(%g) = %g, want %g", c.x, got, c.want)
		}
	}
	if got := Expf(float32(math.NaN())); got == got {
		t.Errorf("Expf(NaN) = %g", got)
	}
}

// The SIMD quantizer matches its twin bit for bit, and its VNNI forms are
// the quants XOR 0x80 and each scale 8 times; zero blocks give zeros.
func TestQuantizeQ8MatchesTwin(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, nb := range []int{1, 2, 3, 9, 24} {
		x := randVec(r, nb*QK)
		for i := range x {
			x[i] *= float32(1 + i%7) // different magnitudes per block
		}
		clear(x[:QK]) // an all-zero block
		if nb > 1 {
			x[QK+5] = 127 * x[QK+6] // a block whose amax dwarfs the rest
		}
		got := Q8Blocks{make([]float32, nb), make([]int8, nb*QK)}
		want := Q8Blocks{make([]float32, nb), make([]int8, nb*QK)}
		u, xe, xc := make([]int8, nb*QK), make([]float32, nb*8), make([]int32, nb*8)
		quantizeQ8(got, x, u, xe, xc)
		quantizeQ8Go(want, x)
		if !slices.Equal(got.D, want.D) || !slices.Equal(got.Qs, want.Qs) {
			t.Fatalf("nb=%d: %v %v, twin %v %v", nb, got.D, got.Qs, want.D, want.Qs)
		}
		for i, q := range want.Qs {
			if u[i] != q^-128 {
				t.Fatalf("nb=%d: u[%d] = %d, want %d", nb, i, u[i], q^-128)
			}
		}
		for b, d := range want.D {
			for k := range 8 {
				if xe[b*8+k] != d {
					t.Fatalf("nb=%d: xe[%d] = %g, want %g", nb, b*8+k, xe[b*8+k], d)
				}
				var sum int32
				for _, q := range want.Qs[b*QK+4*k : b*QK+4*k+4] {
					sum += int32(q)
				}
				if xc[b*8+k] != -128*sum {
					t.Fatalf("nb=%d: xc[%d] = %d, want %d", nb, b*8+k, xc[b*8+k], -128*sum)
				}
			}
		}
	}
}
