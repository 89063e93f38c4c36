//go:build amd64 && !purego

package tensor

import (
	"math/rand/v2"
	"testing"
)

// The VNNI kernels against the Go twin, bit for bit (same integer sums,
// scale products, FMAs in block order and horizontal sum: llama.cpp's), and
// the three VNNI forms against each other. Odd block counts
// exercise the masked last pair; 17+ blocks cross a 16-block scale group.
func TestVNNIKernels(t *testing.T) {
	if !useVNNI {
		t.Skip("no AVX-512 VNNI on this CPU")
	}
	r := rand.New(rand.NewPCG(5, 6))
	for _, nb := range []int{1, 2, 3, 8, 9, 16, 17, 24, 33, 64} {
		cols := nb * QK
		const T = 6
		in := NewInput(T, cols)
		copy(in.X, randVec(r, T*cols))
		in.Set(T)
		w := NewF32(4, cols, randVec(r, 4*cols))
		wq, _ := QuantizeMatrix(w)
		wq.Q8.Qs[0] = -128
		in.prepare(wq)
		for tok := range T {
			xd, xq := in.q.D[tok*nb:(tok+1)*nb], in.q.Qs[tok*cols:(tok+1)*cols]
			for row := range 4 {
				wd, wqs := wq.Q8.D[row*nb:(row+1)*nb], wq.Q8.Qs[row*cols:(row+1)*cols]
				got := dotQ8VNNI(&wd[0], &wqs[0], &in.xe[tok*in.ePer], &in.u[tok*in.ePer*4], nb)
				want := dotQ8Go(wd, wqs, xd, xq)
				if got != want {
					t.Fatalf("nb=%d token %d row %d: VNNI %g, twin %g", nb, tok, row, got, want)
				}
			}
			var o4 [4]float32
			dotQ8r4VNNI(&wq.Q8.D[0], &wq.Q8.Qs[0], &in.xe[tok*in.ePer], &in.q.Qs[tok*cols], &in.xc[tok*in.ePer], nb, 4, &o4[0])
			for row := range 4 {
				one := dotQ8VNNI(&wq.Q8.D[row*nb], &wq.Q8.Qs[row*cols], &in.xe[tok*in.ePer], &in.u[tok*in.ePer*4], nb)
				if o4[row] != one {
					t.Fatalf("nb=%d r4 row %d: %g vs single %g", nb, row, o4[row], one)
				}
			}
		}
		// Twelve rows in one call: three groups of four.
		w12 := NewF32(12, cols, randVec(r, 12*cols))
		wq12, _ := QuantizeMatrix(w12)
		o12 := make([]float32, 12)
		dotQ8r4VNNI(&wq12.Q8.D[0], &wq12.Q8.Qs[0], &in.xe[0], &in.q.Qs[0], &in.xc[0], nb, 12, &o12[0])
		for row := range 12 {
			if one := dotQ8VNNI(&wq12.Q8.D[row*nb], &wq12.Q8.Qs[row*cols], &in.xe[0], &in.u[0], nb); o12[row] != one {
				t.Fatalf("nb=%d r4 x3 row %d: %g vs single %g", nb, row, o12[row], one)
			}
		}
		vs := in.ePer * 4
		for tok := 0; tok+4 <= T; tok += 2 {
			var o4 [4]float32
			dotQ8x4VNNI(&wq.Q8.D[nb], &wq.Q8.Qs[cols], &in.xe[tok*in.ePer], &in.u[tok*vs], nb, vs, vs, &o4)
			for i := range 4 {
				one := dotQ8VNNI(&wq.Q8.D[nb], &wq.Q8.Qs[cols], &in.xe[(tok+i)*in.ePer], &in.u[(tok+i)*vs], nb)
				if o4[i] != one {
					t.Fatalf("nb=%d x4 token %d: %g vs single %g", nb, tok+i, o4[i], one)
				}
			}
		}
		in8 := NewInput(8, cols)
		copy(in8.X, randVec(r, 8*cols))
		in8.Set(8)
		in8.prepare(wq)
		// Four rows at once, outputs 5 apart per token.
		o8 := make([]float32, 8*5)
		dotQ8x8VNNI(&wq.Q8.D[0], &wq.Q8.Qs[0], &in8.ec2[0], &in8.q2[0], nb, nb*64, 4, &o8[0], 5)
		for i := range 8 {
			for row := range 4 {
				one := dotQ8VNNI(&wq.Q8.D[row*nb], &wq.Q8.Qs[row*cols], &in8.xe[i*in8.ePer], &in8.u[i*vs], nb)
				if o8[i*5+row] != one {
					t.Fatalf("nb=%d x8 token %d row %d: %g vs single %g", nb, i, row, o8[i*5+row], one)
				}
			}
		}
	}
}

func BenchmarkDotQ8VNNI(b *testing.B) {
	if !useVNNI {
		b.Skip("no AVX-512 VNNI")
	}
	r := rand.New(rand.NewPCG(1, 2))
	const n = 768
	in := NewInput(1, n)
	copy(in.X, randVec(r, n))
	in.Set(1)
	w, _ := QuantizeMatrix(NewF32(1, n, randVec(r, n)))
	in.prepare(w)
	b.SetBytes(n + n/QK*4)
	for b.Loop() {
		dotQ8VNNI(&w.Q8.D[0], &w.Q8.Qs[0], &in.xe[0], &in.u[0], n/QK)
	}
}

// Kernel forms on one 768-column row (in L1): per call, 4 dot products for
// the r4/x4 forms.
func BenchmarkQ8Forms(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	const n, nb = 768, 768 / QK
	in := NewInput(4, n)
	copy(in.X, randVec(r, 4*n))
	in.Set(4)
	w, _ := QuantizeMatrix(NewF32(4, n, randVec(r, 4*n)))
	in.prepare(w)
	var o4 [4]float32
	b.Run("avx2-r4", func(b *testing.B) {
		for b.Loop() {
			dotQ8r4(w.Q8.D, w.Q8.Qs, in.q.D[:nb], in.q.Qs[:n], &o4)
		}
	})
	b.Run("avx2-x4", func(b *testing.B) {
		for b.Loop() {
			dotQ8x4(w.Q8.D[:nb], w.Q8.Qs[:n], in.q.D, in.q.Qs, nb, &o4)
		}
	})
	if !useVNNI {
		return
	}
	b.Run("vnni-r4", func(b *testing.B) {
		for b.Loop() {
			dotQ8r4VNNI(&w.Q8.D[0], &w.Q8.Qs[0], &in.xe[0], &in.q.Qs[0], &in.xc[0], nb, 4, &o4[0])
		}
	})
	b.Run("vnni-x4", func(b *testing.B) {
		for b.Loop() {
			dotQ8x4VNNI(&w.Q8.D[0], &w.Q8.Qs[0], &in.xe[0], &in.u[0], nb, in.ePer*4, in.ePer*4, &o4)
		}
	})
}
