package tensor

import "math"

// Expf is e^x in float32, computed as glibc's expf (the libm llama.cpp's
// flash attention calls): x·32/ln2 split into an integer k and a remainder
// r, 2^(k/32) from a 32-entry table, 2^(r/32) from a cubic, all in float64,
// rounded once to float32. Within 0.502 ulp of e^x, and three to four times
// faster than math.Exp, which attention calls once per key.
func Expf(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > 0x1.62e42ep6: // above ln(MaxFloat32)
		return float32(math.Inf(1))
	case x < -0x1.9fe368p6: // below the smallest subnormal
		return 0
	}
	const (
		n     = 32
		shift = 0x1.8p+52
		c0    = 0x1.c6af84b912394p-5 / n / n / n
		c1    = 0x1.ebfce50fac4f3p-3 / n / n
		c2    = 0x1.62e42ff0c52d6p-1 / n
	)
	z := 0x1.71547652b82fep+0 * n * float64(x)
	kd := z + shift // round to the nearest integer in the low bits
	ki := math.Float64bits(kd)
	kd -= shift
	r := z - kd
	s := math.Float64frombits(exp2Table[ki%n] + ki<<(52-5))
	p := float64(c0*r) + c1
	y := float64(c2*r) + 1
	y = float64(p*(r*r)) + y
	return float32(y * s)
}

// exp2Table[i] is 2^(i/32) with i/32 taken out of its exponent bits, so that
// adding k<<47 scales it by 2^(k/32) for any integer k.
var exp2Table = func() (t [32]uint64) {
	for i := range t {
		t[i] = math.Float64bits(math.Exp2(float64(i)/32)) - uint64(i)<<47
	}
	return t
}()
