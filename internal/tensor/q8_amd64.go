//go:build amd64 && !purego

package tensor

import "golang.org/x/sys/cpu"

// Q8SIMD names the Q8_0 kernel in use.
var Q8SIMD = func() string {
	if hasAVX2 {
		return "avx2-asm"
	}
	return "go"
}()

var hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// dotQ8AVX2 is dotQ8Go in AVX2 assembly (q8_amd64.s), with the arithmetic of
// llama.cpp's ggml_vec_dot_q8_0_q8_0: per block |w|·(x·sign w) (VPMADDUBSW),
// pairs summed to eight int32 lanes (VPMADDWD), converted, and accumulated
// lane-wise by one FMA with the block's scale product; then llama.cpp's
// hsum_float_8. The Go twin computes exactly the same sums in the same order.
//
//go:noescape
func dotQ8AVX2(wd *float32, wq *int8, xd *float32, xq *int8, nb int) float32

// dotQ8x4AVX2 is four dotQ8AVX2 of one weight row with the activation
// vectors at xd+i*stride blocks (and xq+i*stride*32 quants), sharing the
// weight loads; each result is bit-identical to dotQ8AVX2's.
//
//go:noescape
func dotQ8x4AVX2(wd *float32, wq *int8, xd *float32, xq *int8, nb, stride int, out *[4]float32)

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
		for i := range 4 {
			out[i] = dotQ8Go(wd, wq, xd[i*stride:i*stride+nb], xq[i*stride*QK:(i*stride+nb)*QK])
		}
		return
	}
	_, _ = xd[3*stride+nb-1], xq[(3*stride+nb)*QK-1]
	_ = wq[nb*QK-1]
	dotQ8x4AVX2(&wd[0], &wq[0], &xd[0], &xq[0], nb, stride, out)
}
