//go:build !amd64 || purego

package tensor

// Q8SIMD names the Q8_0 kernel in use.
const Q8SIMD = "go"

func dotQ8(wd []float32, wq []int8, xd []float32, xq []int8) float32 {
	return dotQ8Go(wd, wq, xd, xq)
}

// dotQ8x4 is dotQ8 of one weight row with four activation vectors, the
// i-th at blocks [i*stride, i*stride+len(wd)) of xd (and quants of xq).
func dotQ8x4(wd []float32, wq []int8, xd []float32, xq []int8, stride int, out *[4]float32) {
	nb := len(wd)
	for i := range 4 {
		out[i] = dotQ8Go(wd, wq, xd[i*stride:i*stride+nb], xq[i*stride*QK:(i*stride+nb)*QK])
	}
}
