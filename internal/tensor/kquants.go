package tensor

import (
	"encoding/binary"
	"fmt"
)

// GGML type numbers of the formats Dequantize reads.
const (
	typeQ4_0 = 2
	typeQ4_K = 12
	typeQ6_K = 14
)

// Dequantize expands GGUF data of the given GGML type (Q4_0, Q4_K or Q6_K)
// into dst, following ggml's reference dequantizers. The engine widens these
// at load and re-quantizes them to Q8_0 for its integer kernels.
func Dequantize(dst []float32, raw []byte, ggmlType uint32) error {
	switch ggmlType {
	case typeQ4_0:
		return blocks(dst, raw, 32, 18, dequantQ4_0)
	case typeQ4_K:
		return blocks(dst, raw, 256, 144, dequantQ4K)
	case typeQ6_K:
		return blocks(dst, raw, 256, 210, dequantQ6K)
	}
	return fmt.Errorf("tensor: cannot dequantize GGML type %d", ggmlType)
}

func blocks(dst []float32, raw []byte, n, size int, f func(y []float32, b []byte)) error {
	if len(dst)%n != 0 || len(raw) < len(dst)/n*size {
		return fmt.Errorf("tensor: %d values need %d bytes in blocks of %d, have %d", len(dst), len(dst)/n*size, n, len(raw))
	}
	for i := range len(dst) / n {
		f(dst[i*n:(i+1)*n], raw[i*size:(i+1)*size])
	}
	return nil
}

func f16le(b []byte) float32 { return F16ToF32(binary.LittleEndian.Uint16(b)) }

func dequantQ4_0(y []float32, b []byte) {
	d := f16le(b)
	qs := b[2:18]
	for j := range 16 {
		y[j] = float32(int(qs[j]&0xf)-8) * d
		y[j+16] = float32(int(qs[j]>>4)-8) * d
	}
}

func scaleMinK4(j int, q []byte) (d, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

func dequantQ4K(y []float32, b []byte) {
	d, dmin := f16le(b), f16le(b[2:])
	scales := b[4:16]
	q := b[16:144]
	is := 0
	for j := 0; j < 256; j += 64 {
		sc, m := scaleMinK4(is, scales)
		d1, m1 := d*float32(sc), dmin*float32(m)
		sc, m = scaleMinK4(is+1, scales)
		d2, m2 := d*float32(sc), dmin*float32(m)
		for l := range 32 {
			y[j+l] = d1*float32(q[l]&0xf) - m1
			y[j+32+l] = d2*float32(q[l]>>4) - m2
		}
		q = q[32:]
		is += 2
	}
}

func dequantQ6K(y []float32, b []byte) {
	ql, qh, sc := b[0:128], b[128:192], b[192:208]
	d := f16le(b[208:])
	for n := 0; n < 256; n += 128 {
		for l := range 32 {
			is := l / 16
			q1 := int(int8(ql[l]&0xf|(qh[l]>>0&3)<<4)) - 32
			q2 := int(int8(ql[l+32]&0xf|(qh[l]>>2&3)<<4)) - 32
			q3 := int(int8(ql[l]>>4|(qh[l]>>4&3)<<4)) - 32
			q4 := int(int8(ql[l+32]>>4|(qh[l]>>6&3)<<4)) - 32
			y[n+l] = d * float32(int8(sc[is])) * float32(q1)
			y[n+l+32] = d * float32(int8(sc[is+2])) * float32(q2)
			y[n+l+64] = d * float32(int8(sc[is+4])) * float32(q3)
			y[n+l+96] = d * float32(int8(sc[is+6])) * float32(q4)
		}
		ql, qh, sc = ql[64:], qh[32:], sc[8:]
	}
}
