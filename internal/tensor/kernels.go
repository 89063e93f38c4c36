package tensor

import "math"

// The plain-Go twins of the SIMD kernels. Each SIMD kernel is tested
// against its twin; on builds without SIMD these are the kernels.

// dotF32Go is Σ a[i]*b[i].
func dotF32Go(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpyGo is y[i] += a*x[i].
func axpyGo(a float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += a * v
	}
}

// dotQ8Go is Σ_b wd[b]*xd[b]*Σ_i wq[32b+i]*xq[32b+i] over len(wd) blocks,
// accumulated as the SIMD kernel (and llama.cpp) does: eight lanes of four
// products each, fused multiply-add by the block's scale product, then a
// pairwise horizontal sum.
func dotQ8Go(wd []float32, wq []int8, xd []float32, xq []int8) float32 {
	xd = xd[:len(wd)]
	wq = wq[:len(wd)*QK]
	xq = xq[:len(wd)*QK]
	var acc [8]float32
	for b := range wd {
		w := wq[b*QK : b*QK+QK]
		x := xq[b*QK : b*QK+QK]
		d := float64(wd[b] * xd[b])
		for k := range 8 {
			var s int32
			for i := 4 * k; i < 4*k+4; i++ {
				s += int32(w[i]) * int32(x[i])
			}
			acc[k] = float32(math.FMA(d, float64(s), float64(acc[k])))
		}
	}
	return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
}

// Dot is Σ a[i]*b[i] (len(b) >= len(a)).
func Dot(a, b []float32) float32 { return dotF32(a, b) }

// Axpy is y[i] += a*x[i] (len(y) >= len(x)).
func Axpy(a float32, x, y []float32) { axpy(a, x, y) }

func dotQ8x4Go(wd []float32, wq []int8, xd []float32, xq []int8, stride int, out *[4]float32) {
	nb := len(wd)
	for i := range 4 {
		out[i] = dotQ8Go(wd, wq, xd[i*stride:i*stride+nb], xq[i*stride*QK:(i*stride+nb)*QK])
	}
}

func dotQ8r4Go(wd []float32, wq []int8, xd []float32, xq []int8, out *[4]float32) {
	nb := len(xd)
	for i := range 4 {
		out[i] = dotQ8Go(wd[i*nb:(i+1)*nb], wq[i*nb*QK:(i+1)*nb*QK], xd, xq)
	}
}
