package engine

import (
	"math"
	"testing"
)

// vexpf stays within 2.5 ulp of exp (ggml_v_expf's bound is 1.45 + 0.5
// ulp of the exact value), is exact at 0, and flushes to 0 and +Inf where
// ggml's does.
func TestVexpf(t *testing.T) {
	if got := vexpf(0); got != 1 {
		t.Errorf("vexpf(0) = %g, want 1", got)
	}
	for _, c := range []struct{ x, want float32 }{{-200, 0}, {-1e4, 0}, {200, float32(math.Inf(1))}} {
		if got := vexpf(c.x); got != c.want {
			t.Errorf("vexpf(%g) = %g, want %g", c.x, got, c.want)
		}
	}
	for x := float32(-87); x < 88; x += 0.0137 {
		want := math.Exp(float64(x))
		got := float64(vexpf(x))
		ulp := float64(math.Nextafter32(float32(want), float32(math.Inf(1))) - float32(want))
		if math.Abs(got-want) > 2.5*ulp {
			t.Fatalf("vexpf(%g) = %g, exp = %g (%.2f ulp)", x, got, want, math.Abs(got-want)/ulp)
		}
	}
}

// fma32 rounds once: 1+2^-23 squared minus 1 keeps the 2^-46 term that a
// float32 product then sum would drop.
func TestFMA32(t *testing.T) {
	a := float32(1 + 0x1p-23)
	if got, want := fma32(a, a, -1), float32(0x1p-22+0x1p-46); got != want {
		t.Errorf("fma32 = %g, want %g", got, want)
	}
}
