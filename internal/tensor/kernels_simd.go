//go:build goexperiment.simd && amd64 && !purego

package tensor

import "simd/archsimd"

// SIMD is the kernel set in use.
var SIMD = func() string {
	if useAVX2 {
		return "avx2"
	}
	return "go"
}()

var useAVX2 = archsimd.X86.AVX2() && archsimd.X86.FMA()

// dotF32 is dotF32Go with AVX2+FMA: four 8-wide accumulators.
func dotF32(a, b []float32) float32 {
	if !useAVX2 {
		return dotF32Go(a, b)
	}
	n := len(a)
	b = b[:n]
	var acc0, acc1, acc2, acc3 archsimd.Float32x8
	i := 0
	for ; i+32 <= n; i += 32 {
		acc0 = archsimd.LoadFloat32x8Slice(a[i:]).MulAdd(archsimd.LoadFloat32x8Slice(b[i:]), acc0)
		acc1 = archsimd.LoadFloat32x8Slice(a[i+8:]).MulAdd(archsimd.LoadFloat32x8Slice(b[i+8:]), acc1)
		acc2 = archsimd.LoadFloat32x8Slice(a[i+16:]).MulAdd(archsimd.LoadFloat32x8Slice(b[i+16:]), acc2)
		acc3 = archsimd.LoadFloat32x8Slice(a[i+24:]).MulAdd(archsimd.LoadFloat32x8Slice(b[i+24:]), acc3)
	}
	for ; i+8 <= n; i += 8 {
		acc0 = archsimd.LoadFloat32x8Slice(a[i:]).MulAdd(archsimd.LoadFloat32x8Slice(b[i:]), acc0)
	}
	s := hsum(acc0.Add(acc1).Add(acc2.Add(acc3)))
	for ; i < n; i++ {
		s += a[i] * b[i]
	}
	return s
}

func hsum(v archsimd.Float32x8) float32 {
	var t [8]float32
	v.Store(&t)
	// Scalar Go code is SSE: leaving the upper halves dirty makes every
	// later SSE instruction pay a merge penalty (10x slower here).
	archsimd.ClearAVXUpperBits()
	return ((t[0] + t[4]) + (t[2] + t[6])) + ((t[1] + t[5]) + (t[3] + t[7])) // llama.cpp's hsum_float_8
}

// axpy is axpyGo with AVX2+FMA.
func axpy(a float32, x, y []float32) {
	if !useAVX2 {
		axpyGo(a, x, y)
		return
	}
	n := len(x)
	y = y[:n]
	va := archsimd.BroadcastFloat32x8(a)
	i := 0
	for ; i+8 <= n; i += 8 {
		va.MulAdd(archsimd.LoadFloat32x8Slice(x[i:]), archsimd.LoadFloat32x8Slice(y[i:])).StoreSlice(y[i:])
	}
	archsimd.ClearAVXUpperBits()
	for ; i < n; i++ {
		y[i] += a * x[i]
	}
}

