// Package tensor holds the engine's numeric kernels: number formats (F32,
// F16, BF16, Q8_0 and the dequantizers of Q4_0, Q4_K and Q6_K), dot products,
// and batched matrix products split across a persistent worker pool.
//
// Every SIMD kernel (simd/archsimd, built with GOEXPERIMENT=simd on amd64)
// has a plain-Go twin with the same results up to float rounding; the twins
// are what runs with -tags purego, without the experiment, or on other CPUs,
// and the tests compare the two.
package tensor

import (
	"fmt"
	"math"
)

// QK is the number of elements in a Q8_0 block.
const QK = 32

// Kind is the in-memory format of a Matrix.
type Kind uint8

// The formats a Matrix can hold. F16 and BF16 weights are widened to F32 at
// load (Go has no portable half-precision arithmetic), or quantized to Q8.
const (
	F32 Kind = iota
	Q8
)

func (k Kind) String() string {
	switch k {
	case F32:
		return "F32"
	case Q8:
		return "Q8_0"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Q8Blocks is Q8_0 data split into its two parts, so that kernels load the
// 32 quants of a block with one aligned-enough vector load and read the scale
// without half-precision conversion: block b covers Qs[32b:32b+32] and has
// scale D[b]. The scales are float16 values widened to float32, as in GGUF.
type Q8Blocks struct {
	D  []float32
	Qs []int8
}

// Matrix is a row-major weight matrix: Rows output features of Cols inputs
// each (GGUF dims [Cols, Rows]).
type Matrix struct {
	Kind       Kind
	Rows, Cols int
	F32        []float32 // Kind F32: Rows*Cols values
	Q8         Q8Blocks  // Kind Q8: Rows*Cols/32 blocks
	// HalfInput rounds the input to float16 before an F32 product, as
	// llama.cpp does for F16 weights (its vec_dot_type for F16 is F16). It
	// keeps greedy output of F16 models close to that reference.
	HalfInput bool
}

// Bytes is the memory the matrix data occupies.
func (m *Matrix) Bytes() int64 {
	return int64(len(m.F32))*4 + int64(len(m.Q8.D))*4 + int64(len(m.Q8.Qs))
}

// Row dequantizes row r into dst (len Cols).
func (m *Matrix) Row(dst []float32, r int) {
	switch m.Kind {
	case F32:
		copy(dst, m.F32[r*m.Cols:(r+1)*m.Cols])
	case Q8:
		nb := m.Cols / QK
		DequantizeQ8(dst[:m.Cols], m.Q8.D[r*nb:(r+1)*nb], m.Q8.Qs[r*m.Cols:(r+1)*m.Cols])
	}
}

// NewF32 wraps data (len rows*cols) as a matrix without copying.
func NewF32(rows, cols int, data []float32) *Matrix {
	return &Matrix{Kind: F32, Rows: rows, Cols: cols, F32: data[:rows*cols]}
}

// QuantizeMatrix returns the Q8 form of an F32 matrix. Cols must be a
// multiple of 32.
func QuantizeMatrix(m *Matrix) (*Matrix, error) {
	if m.Kind != F32 {
		return nil, fmt.Errorf("tensor: quantize %v matrix", m.Kind)
	}
	if m.Cols%QK != 0 {
		return nil, fmt.Errorf("tensor: %d columns are not a multiple of %d", m.Cols, QK)
	}
	q := &Matrix{Kind: Q8, Rows: m.Rows, Cols: m.Cols}
	q.Q8 = Q8Blocks{D: make([]float32, m.Rows*m.Cols/QK), Qs: make([]int8, m.Rows*m.Cols)}
	QuantizeQ8(q.Q8, m.F32)
	return q, nil
}

// QuantizeQ8 quantizes x (len a multiple of 32) into dst as llama.cpp's
// AVX2 quantize_row_q8_0 does: per block d = amax/127 (stored as float16),
// q = round-half-even(x * 127/amax).
func QuantizeQ8(dst Q8Blocks, x []float32) { quantizeQ8(dst, x, nil, nil, nil) }

// quantizeQ8FormsGo is quantizeQ8Go plus, when u is given, the forms the
// VNNI kernels read: u = quants XOR 0x80, xe = each scale 8 times, and xc =
// -128 × the sum of each 4-quant lane (8 per block).
func quantizeQ8FormsGo(dst Q8Blocks, x []float32, u []int8, xe []float32, xc []int32) {
	quantizeQ8Go(dst, x)
	if u == nil {
		return
	}
	nb := len(x) / QK
	for i, v := range dst.Qs[:nb*QK] {
		u[i] = v ^ -128
	}
	for b, d := range dst.D[:nb] {
		for k := range 8 {
			xe[b*8+k] = d
			q := dst.Qs[b*QK+4*k : b*QK+4*k+4]
			xc[b*8+k] = -128 * (int32(q[0]) + int32(q[1]) + int32(q[2]) + int32(q[3]))
		}
	}
}

func quantizeQ8Go(dst Q8Blocks, x []float32) {
	nb := len(x) / QK
	d := dst.D[:nb]
	qs := dst.Qs[:nb*QK]
	for b := range nb {
		blk := x[b*QK : b*QK+QK]
		var amax float32
		for _, v := range blk {
			amax = max(amax, abs32(v))
		}
		d[b] = F16ToF32(F32ToF16(amax / 127))
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		q := qs[b*QK : b*QK+QK]
		for i, v := range blk {
			// Round half to even (as VROUNDPS): adding 1.5·2^23 leaves
			// no fraction bits for |p| <= 127. The conversion keeps the
			// product from being fused into the add.
			p := float32(v * id)
			q[i] = int8(int32((p + roundMagic) - roundMagic))
		}
	}
}

const roundMagic = 12582912 // 1.5 * 2^23

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// DequantizeQ8 expands blocks (scales d, quants qs) into dst.
func DequantizeQ8(dst []float32, d []float32, qs []int8) {
	for b, s := range d {
		q := qs[b*QK : b*QK+QK]
		o := dst[b*QK : b*QK+QK]
		for i, v := range q {
			o[i] = float32(v) * s
		}
	}
}

// ParseQ8_0 splits GGUF Q8_0 bytes (34-byte blocks: float16 scale, 32 int8)
// into dst, which must hold len(raw)/34 blocks.
func ParseQ8_0(dst Q8Blocks, raw []byte) {
	nb := len(raw) / 34
	for b := range nb {
		blk := raw[b*34 : b*34+34]
		dst.D[b] = F16ToF32(uint16(blk[0]) | uint16(blk[1])<<8)
		q := dst.Qs[b*QK : b*QK+QK]
		for i := range q {
			q[i] = int8(blk[2+i])
		}
	}
}
