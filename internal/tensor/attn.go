package tensor

import "math"

// Half-precision attention kernels. The KV cache holds keys and values as
// IEEE half (as llama.cpp's default F16 cache does), and attention follows
// ggml's CPU flash attention: q rounded to half, each key's score by
// ggml_vec_dot_f16, an online softmax, and the weighted values accumulated
// in half precision. The arithmetic (and its order) is ggml's, so that
// greedy output matches a llama.cpp reference token for token.

// FMA32 is a*b+c rounded once to float32, as an FMA instruction computes it.
// (Go fuses float32 a*b+c only on some targets; this is exact everywhere.)
func FMA32(a, b, c float32) float32 {
	p := float64(a) * float64(b) // exact: 24+24 bits
	cc := float64(c)
	s := p + cc
	r := float32(s)
	if float64(r) == s || math.IsInf(s, 0) || math.IsNaN(s) {
		return r
	}
	// s was rounded once already; rounding it again to float32 is wrong
	// only when s sits exactly halfway between two float32s and the sum's
	// lost low part says which way the exact value lies.
	bb := s - p
	e := (p - (s - bb)) + (cc - bb) // p + cc = s + e exactly (TwoSum)
	if e == 0 {
		return r
	}
	lo, hi := float64(r), float64(r)
	if lo > s {
		lo = float64(math.Nextafter32(r, float32(math.Inf(-1))))
	} else {
		hi = float64(math.Nextafter32(r, float32(math.Inf(1))))
	}
	if s-lo != hi-s {
		return r // not a tie: the double rounding was harmless
	}
	if e > 0 {
		return float32(hi)
	}
	return float32(lo)
}

// DotHalf is Σ a[i]*b[i] of two half-precision vectors of equal length,
// summed as ggml_vec_dot_f16 does on AVX-512: chunks of 64 into four
// 16-lane float accumulators by FMA, the accumulators added (0+2, 1+3, then
// 0+1) and reduced as _mm512_reduce_add_ps, then the remaining elements'
// products added one by one in float64.
func DotHalf(a, b []uint16) float32 { return dotHalf(a, b) }

// DotHalfRows is dst[p] = DotHalf(k[p*stride:p*stride+len(q)], q) for every
// p < len(dst): the scores of one query against a run of cached keys.
func DotHalfRows(dst []float32, k []uint16, stride int, q []uint16) {
	dotHalfRows(dst, k, stride, q)
}

func dotHalfRowsGo(dst []float32, k []uint16, stride int, q []uint16) {
	for p := range dst {
		dst[p] = dotHalfGo(k[p*stride:p*stride+len(q)], q)
	}
}

// MadHalf is y[i] = half(fma(x[i], v, y[i])) (ggml_vec_mad_f16).
func MadHalf(y, x []uint16, v float32) { madHalf(y, x, v) }

// ScaleHalf is y[i] = half(y[i]*v) (ggml_vec_scale_f16).
func ScaleHalf(y []uint16, v float32) { scaleHalf(y, v) }

// dotHalfTail is the float64 part of DotHalf: s plus the products of
// a[i:] and b[i:], one at a time.
func dotHalfTail(s float64, a, b []uint16) float32 {
	b = b[:len(a)]
	for i, v := range a {
		s += float64(F16ToF32(v) * F16ToF32(b[i]))
	}
	return float32(s)
}

func dotHalfGo(a, b []uint16) float32 {
	n := len(a)
	b = b[:n]
	np := n &^ 63
	if np == 0 {
		return dotHalfTail(0, a, b)
	}
	var acc [4][16]float32
	for i := 0; i < np; i += 64 {
		for j := range 4 {
			for l := range 16 {
				k := i + 16*j + l
				acc[j][l] = FMA32(F16ToF32(a[k]), F16ToF32(b[k]), acc[j][l])
			}
		}
	}
	for l := range 16 {
		acc[0][l] += acc[2][l]
		acc[1][l] += acc[3][l]
	}
	for l := range 16 {
		acc[0][l] += acc[1][l]
	}
	return dotHalfTail(float64(reduce16(&acc[0])), a[np:], b[np:])
}

// reduce16 is GCC's _mm512_reduce_add_ps: halves added, then quarters,
// then (0+2)+(1+3).
func reduce16(a *[16]float32) float32 {
	var t [8]float32
	for i := range 8 {
		t[i] = a[i] + a[i+8]
	}
	for i := range 4 {
		t[i] += t[i+4]
	}
	return (t[0] + t[2]) + (t[1] + t[3])
}

func madHalfGo(y, x []uint16, v float32) {
	x = x[:len(y)]
	for i, h := range y {
		y[i] = F32ToF16(FMA32(F16ToF32(x[i]), v, F16ToF32(h)))
	}
}

func scaleHalfGo(y []uint16, v float32) {
	for i, h := range y {
		y[i] = F32ToF16(F16ToF32(h) * v)
	}
}
