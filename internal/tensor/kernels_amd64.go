//go:build amd64 && !purego

package tensor

import (
	"os"

	"golang.org/x/sys/cpu"
)

// SIMD names the kernel set in use.
var SIMD = func() string {
	if useVNNI {
		return "avx512-vnni"
	}
	if hasAVX2 {
		return "avx2"
	}
	return "go"
}()

var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// useVNNI selects the AVX-512 VNNI Q8_0 kernels (kernels_vnni_amd64.s).
// LLMO_NO_AVX512=1 turns them off (the AVX2 kernels then run).
var useVNNI = hasAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL &&
	cpu.X86.HasAVX512VNNI && os.Getenv("LLMO_NO_AVX512") == ""

// dotQ8VNNI is dotQ8 over activations prepared by Input (u = x XOR 0x80,
// xe = each block's scale 8 times), two blocks per AVX-512 instruction.
// Blocks accumulate in order as in dotQ8Go, which it matches bit for bit.
//
//go:noescape
func dotQ8VNNI(wd *float32, wq *int8, xe *float32, xu *int8, nb int) float32

// dotQ8x4VNNI is four dotQ8VNNI of one row with tokens eStride/uStride bytes
// apart.
//
//go:noescape
func dotQ8x4VNNI(wd *float32, wq *int8, xe *float32, xu *int8, nb, eStride, uStride int, out *[4]float32)

// dotQ8x8VNNI is dotQ8VNNI of rows consecutive rows with eight tokens, the
// tokens as four pairs in the interleaved layout of Input.q2/ec2 (stride
// bytes between pairs of q2, twice that in ec2); row r, token i lands at
// out[i*outStride+r]. Like dotQ8r4VNNI it takes signed quants and makes the
// weights the unsigned operand.
//
//go:noescape
func dotQ8x8VNNI(wd *float32, wq *int8, ec2 *uint32, xq2 *int8, nb, stride, rows int, out *float32, outStride int)

// dotQ8r4VNNI is dotQ8VNNI of rows (a multiple of 4) consecutive rows with
// one token, four rows at a time, into out[0:rows]. It takes the token's
// signed quants xq and lane corrections xc (Input.xc) and makes the weights
// the unsigned operand instead (w XOR 0x80): the correction is then per
// token, not per row, which leaves one VPDPBUSD per row and block pair.
//
//go:noescape
func dotQ8r4VNNI(wd *float32, wq *int8, xe *float32, xq *int8, xc *int32, nb, rows int, out *float32)

// The assembly kernels of kernels_amd64.s. Each has a Go twin in kernels.go
// that the tests compare it with.
//
// dotQ8AVX2 is dotQ8Go with the arithmetic of llama.cpp's
// ggml_vec_dot_q8_0_q8_0: per block |w|·(x·sign w) (VPMADDUBSW), pairs
// summed to eight int32 lanes (VPMADDWD), converted, and accumulated
// lane-wise by one FMA with the block's scale product; then llama.cpp's
// hsum_float_8. The twin computes the same sums in the same order.
//
//go:noescape
func dotQ8AVX2(wd *float32, wq *int8, xd *float32, xq *int8, nb int) float32

// dotQ8x4AVX2 is four dotQ8AVX2 of one weight row with the activation
// vectors at xd+i*stride blocks (xq+i*stride*32 quants), sharing the weight
// loads; each result is bit-identical to dotQ8AVX2's.
//
//go:noescape
func dotQ8x4AVX2(wd *float32, wq *int8, xd *float32, xq *int8, nb, stride int, out *[4]float32)

// dotQ8r4AVX2 is four dotQ8AVX2 of consecutive weight rows (nb blocks each)
// with one activation vector: four independent FMA chains instead of one.
//
//go:noescape
func dotQ8r4AVX2(wd *float32, wq *int8, xd *float32, xq *int8, nb int, out *[4]float32)

// dotF32AVX2 is dotF32Go with four 8-wide FMA accumulators.
//
//go:noescape
func dotF32AVX2(a, b *float32, n int) float32

// axpyAVX2 is axpyGo.
//
//go:noescape
func axpyAVX2(a float32, x, y *float32, n int)

func dotQ8(wd []float32, wq []int8, xd []float32, xq []int8) float32 {
	nb := len(wd)
	if !hasAVX2 || nb == 0 {
		return dotQ8Go(wd, wq, xd, xq)
	}
	_, _, _ = xd[nb-1], wq[nb*QK-1], xq[nb*QK-1]
	return dotQ8AVX2(&wd[0], &wq[0], &xd[0], &xq[0], nb)
}

func dotQ8x4(wd []float32, wq []int8, xd []float32, xq []int8, stride int, out *[4]float32) {
	nb := len(wd)
	if !hasAVX2 || nb == 0 {
		dotQ8x4Go(wd, wq, xd, xq, stride, out)
		return
	}
	_, _ = xd[3*stride+nb-1], xq[(3*stride+nb)*QK-1]
	_ = wq[nb*QK-1]
	dotQ8x4AVX2(&wd[0], &wq[0], &xd[0], &xq[0], nb, stride, out)
}

func dotQ8r4(wd []float32, wq []int8, xd []float32, xq []int8, out *[4]float32) {
	nb := len(xd)
	if !hasAVX2 || nb == 0 {
		dotQ8r4Go(wd, wq, xd, xq, out)
		return
	}
	_, _ = wd[4*nb-1], wq[4*nb*QK-1]
	_ = xq[nb*QK-1]
	dotQ8r4AVX2(&wd[0], &wq[0], &xd[0], &xq[0], nb, out)
}

func dotF32(a, b []float32) float32 {
	n := len(a)
	if !hasAVX2 || n == 0 {
		return dotF32Go(a, b)
	}
	_ = b[n-1]
	return dotF32AVX2(&a[0], &b[0], n)
}

func axpy(a float32, x, y []float32) {
	n := len(x)
	if !hasAVX2 || n == 0 {
		axpyGo(a, x, y)
		return
	}
	_ = y[n-1]
	axpyAVX2(a, &x[0], &y[0], n)
}

// dotHalfAVX2 is the chunked part of dotHalfGo for n a multiple of 64: the
// four 16-lane accumulators as eight 8-lane ones (lane arithmetic does not
// depend on the register width), added and reduced in ggml's order.
//
//go:noescape
func dotHalfAVX2(a, b *uint16, n int) float32

// madHalfAVX2 is madHalfGo for n a multiple of 8 (F16C conversions, FMA).
//
//go:noescape
func madHalfAVX2(y, x *uint16, v float32, n int)

// scaleHalfAVX2 is scaleHalfGo for n a multiple of 8.
//
//go:noescape
func scaleHalfAVX2(y *uint16, v float32, n int)

// dotHalfTailAVX2 is dotHalfTail (in float64) for n a multiple of 8.
//
//go:noescape
func dotHalfTailAVX2(s float64, a, b *uint16, n int) float64

// dotHalfTail4AVX2 is four dotHalfTail of rows stride apart with one q.
//
//go:noescape
func dotHalfTail4AVX2(k *uint16, stride int, q *uint16, n int, out *[4]float32)

// dotHalfTail8AVX2 is eight dotHalfTail of rows stride apart with one q.
//
//go:noescape
func dotHalfTail8AVX2(k *uint16, stride int, q *uint16, n int, out *[8]float32)

func dotHalfRows(dst []float32, k []uint16, stride int, q []uint16) {
	n := len(q)
	p := 0
	if hasAVX2 && n > 0 && n < 64 && n%8 == 0 && len(dst) >= 4 {
		_ = k[(len(dst)-1)*stride+n-1]
		var o8 [8]float32
		for ; p+8 <= len(dst); p += 8 {
			dotHalfTail8AVX2(&k[p*stride], stride, &q[0], n, &o8)
			copy(dst[p:p+8], o8[:])
		}
		var o [4]float32
		for ; p+4 <= len(dst); p += 4 {
			dotHalfTail4AVX2(&k[p*stride], stride, &q[0], n, &o)
			copy(dst[p:p+4], o[:])
		}
	}
	for ; p < len(dst); p++ {
		dst[p] = dotHalf(k[p*stride:p*stride+n], q)
	}
}

func dotHalf(a, b []uint16) float32 {
	n := len(a)
	if !hasAVX2 || n == 0 {
		return dotHalfGo(a, b)
	}
	_ = b[n-1]
	np := n &^ 63
	var s float64
	if np > 0 {
		s = float64(dotHalfAVX2(&a[0], &b[0], np))
	}
	if rest := n - np; rest%8 == 0 {
		if rest > 0 {
			s = dotHalfTailAVX2(s, &a[np], &b[np], rest)
		}
		return float32(s)
	}
	return dotHalfTail(s, a[np:], b[np:n])
}

func madHalf(y, x []uint16, v float32) {
	n := len(y)
	n8 := n &^ 7
	if !hasAVX2 || n8 == 0 {
		madHalfGo(y, x, v)
		return
	}
	_ = x[n-1]
	madHalfAVX2(&y[0], &x[0], v, n8)
	madHalfGo(y[n8:], x[n8:n], v)
}

func scaleHalf(y []uint16, v float32) {
	n := len(y)
	n8 := n &^ 7
	if !hasAVX2 || n8 == 0 {
		scaleHalfGo(y, v)
		return
	}
	scaleHalfAVX2(&y[0], v, n8)
	scaleHalfGo(y[n8:], v)
}

// quantizeQ8AVX2 is quantizeQ8FormsGo for nb blocks of x: with u non-nil it
// also writes the VNNI forms u, xe and xc.
//
//go:noescape
func quantizeQ8AVX2(x *float32, nb int, d *float32, qs *int8, u *int8, xe *float32, xc *int32)

// quantizeQ8 is QuantizeQ8, plus the VNNI forms when u is given (u len(x)
// bytes, xe and xc len(x)/4 values each).
func quantizeQ8(dst Q8Blocks, x []float32, u []int8, xe []float32, xc []int32) {
	nb := len(x) / QK
	if !hasAVX2 || nb == 0 {
		quantizeQ8FormsGo(dst, x, u, xe, xc)
		return
	}
	_, _ = dst.D[nb-1], dst.Qs[nb*QK-1]
	var up *int8
	var ep *float32
	var cp *int32
	if u != nil {
		_, _, _ = u[nb*QK-1], xe[nb*8-1], xc[nb*8-1]
		up, ep, cp = &u[0], &xe[0], &xc[0]
	}
	quantizeQ8AVX2(&x[0], nb, &dst.D[0], &dst.Qs[0], up, ep, cp)
}
