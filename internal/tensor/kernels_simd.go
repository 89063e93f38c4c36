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
	return ((t[0] + t[4]) + (t[1] + t[5])) + ((t[2] + t[6]) + (t[3] + t[7]))
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

// dotQ8 is dotQ8Go with AVX2, after llama.cpp's ggml_vec_dot_q8_0_q8_0:
// per block, |w| (unsigned) times x carrying w's sign (VPMADDUBSW), pairs
// summed to int32 (VPMADDWD with ones). Eight blocks' int32 vectors are then
// reduced together with horizontal adds into one vector of eight block sums,
// converted and scaled by the eight scale products with one FMA, so that the
// loop needs no scalar (SSE) float work.
func dotQ8(wd []float32, wq []int8, xd []float32, xq []int8) float32 {
	if !useAVX2 {
		return dotQ8Go(wd, wq, xd, xq)
	}
	nb := len(wd)
	xd = xd[:nb]
	wq = wq[:nb*QK]
	xq = xq[:nb*QK]
	ones := archsimd.BroadcastInt16x16(1)
	var acc archsimd.Float32x8
	b := 0
	for ; b+8 <= nb; b += 8 {
		o := b * QK
		p0 := blockQ8(wq[o:], xq[o:], ones)
		p1 := blockQ8(wq[o+QK:], xq[o+QK:], ones)
		p2 := blockQ8(wq[o+2*QK:], xq[o+2*QK:], ones)
		p3 := blockQ8(wq[o+3*QK:], xq[o+3*QK:], ones)
		p4 := blockQ8(wq[o+4*QK:], xq[o+4*QK:], ones)
		p5 := blockQ8(wq[o+5*QK:], xq[o+5*QK:], ones)
		p6 := blockQ8(wq[o+6*QK:], xq[o+6*QK:], ones)
		p7 := blockQ8(wq[o+7*QK:], xq[o+7*QK:], ones)
		// Within each 128-bit half: [p0 p1 p2 p3] sums of that half.
		lo := p0.AddPairsGrouped(p1).AddPairsGrouped(p2.AddPairsGrouped(p3))
		hi := p4.AddPairsGrouped(p5).AddPairsGrouped(p6.AddPairsGrouped(p7))
		var sums archsimd.Int32x8
		sums = sums.SetLo(lo.GetLo().Add(lo.GetHi())).SetHi(hi.GetLo().Add(hi.GetHi()))
		d := archsimd.LoadFloat32x8Slice(wd[b:]).Mul(archsimd.LoadFloat32x8Slice(xd[b:]))
		acc = sums.ConvertToFloat32().MulAdd(d, acc)
	}
	s := hsum(acc)
	for ; b < nb; b++ {
		o := b * QK
		var st int32
		w := wq[o : o+QK]
		x := xq[o : o+QK]
		for i := range QK {
			st += int32(w[i]) * int32(x[i])
		}
		s += float32(st) * (wd[b] * xd[b])
	}
	return s
}

func blockQ8(w, x []int8, ones archsimd.Int16x16) archsimd.Int32x8 {
	wv := archsimd.LoadInt8x32Slice(w)
	xv := archsimd.LoadInt8x32Slice(x)
	return wv.Abs().AsUint8x32().DotProductPairsSaturated(xv.CopySign(wv)).DotProductPairs(ones)
}
