//go:build !amd64 || purego

package tensor

// SIMD names the kernel set in use.
const SIMD = "go"

const useVNNI = false

func dotQ8VNNI(wd *float32, wq *int8, xe *float32, xu *int8, nb int) float32 { panic("no VNNI") }

func dotQ8x4VNNI(wd *float32, wq *int8, xe *float32, xu *int8, nb, eStride, uStride int, out *[4]float32) {
	panic("no VNNI")
}

func dotQ8x8VNNI(wd *float32, wq *int8, ec2 *uint32, xq2 *int8, nb, stride, rows int, out *float32, outStride int) {
	panic("no VNNI")
}

func dotQ8r4VNNI(wd *float32, wq *int8, xe *float32, xq *int8, xc *int32, nb, rows int, out *float32) {
	panic("no VNNI")
}

func dotF32(a, b []float32) float32 { return dotF32Go(a, b) }

func axpy(a float32, x, y []float32) { axpyGo(a, x, y) }

func dotQ8(wd []float32, wq []int8, xd []float32, xq []int8) float32 {
	return dotQ8Go(wd, wq, xd, xq)
}

// dotQ8x4 is dotQ8 of one weight row with four activation vectors, the
// i-th at blocks [i*stride, i*stride+len(wd)) of xd (and quants of xq).
func dotQ8x4(wd []float32, wq []int8, xd []float32, xq []int8, stride int, out *[4]float32) {
	dotQ8x4Go(wd, wq, xd, xq, stride, out)
}

// dotQ8r4 is dotQ8 of four consecutive weight rows (blocks [i*nb, (i+1)*nb)
// of wd, nb = len(xd)) with one activation vector.
func dotQ8r4(wd []float32, wq []int8, xd []float32, xq []int8, out *[4]float32) {
	dotQ8r4Go(wd, wq, xd, xq, out)
}

func dotHalf(a, b []uint16) float32 { return dotHalfGo(a, b) }

func dotHalfRows(dst []float32, k []uint16, stride int, q []uint16) {
	dotHalfRowsGo(dst, k, stride, q)
}

func madHalf(y, x []uint16, v float32) { madHalfGo(y, x, v) }

func scaleHalf(y []uint16, v float32) { scaleHalfGo(y, v) }

func quantizeQ8(dst Q8Blocks, x []float32, u []int8, xe []float32, xc []int32) {
	quantizeQ8FormsGo(dst, x, u, xe, xc)
}
