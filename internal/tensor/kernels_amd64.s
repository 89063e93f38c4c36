//go:build amd64 && !purego

#include "textflag.h"

// func dotQ8AVX2(wd *float32, wq *int8, xd *float32, xq *int8, nb int) float32
TEXT ·dotQ8AVX2(SB), NOSPLIT, $0-44
	MOVQ wd+0(FP), SI
	MOVQ wq+8(FP), DI
	MOVQ xd+16(FP), R8
	MOVQ xq+24(FP), R9
	MOVQ nb+32(FP), CX
	VPXOR Y0, Y0, Y0              // acc
	MOVL $0x00010001, AX
	VMOVD AX, X7
	VPBROADCASTD X7, Y7           // int16 ones
	XORQ AX, AX
loop1:
	CMPQ AX, CX
	JGE done1
	VMOVDQU (DI), Y1              // w
	VMOVDQU (R9), Y2              // x
	VPABSB Y1, Y3                 // |w|
	VPSIGNB Y1, Y2, Y2            // x * sign(w)
	VPMADDUBSW Y2, Y3, Y4         // |w| * x' pairwise -> int16
	VPMADDWD Y7, Y4, Y4           // -> int32 lanes of 4 products
	VCVTDQ2PS Y4, Y4
	VMOVSS (SI)(AX*4), X5
	VMULSS (R8)(AX*4), X5, X5     // wd[b] * xd[b]
	VBROADCASTSS X5, Y5
	VFMADD231PS Y4, Y5, Y0        // acc += d * q
	ADDQ $32, DI
	ADDQ $32, R9
	INCQ AX
	JMP loop1
done1:
	// llama.cpp hsum_float_8: ((x0+x4)+(x2+x6)) + ((x1+x5)+(x3+x7))
	VEXTRACTF128 $1, Y0, X1
	VADDPS X0, X1, X1
	VMOVHLPS X1, X1, X2
	VADDPS X2, X1, X1
	VMOVSHDUP X1, X2
	VADDSS X2, X1, X1
	VZEROUPPER
	MOVSS X1, ret+40(FP)
	RET

// func dotQ8x4AVX2(wd *float32, wq *int8, xd *float32, xq *int8, nb, stride int, out *[4]float32)
TEXT ·dotQ8x4AVX2(SB), NOSPLIT, $0-56
	MOVQ wd+0(FP), SI
	MOVQ wq+8(FP), DI
	MOVQ xd+16(FP), R8
	MOVQ xq+24(FP), R9
	MOVQ nb+32(FP), CX
	MOVQ stride+40(FP), DX
	// xd pointers of vectors 1..3: R10, R11, R12 ; xq pointers: R13, BX, and
	// vector 3's quants are addressed as R9 + 3*stride*32 via R14-free math.
	LEAQ (R8)(DX*4), R10
	LEAQ (R10)(DX*4), R11
	LEAQ (R11)(DX*4), R12
	SHLQ $5, DX                   // stride in quant bytes
	LEAQ (R9)(DX*1), R13
	LEAQ (R13)(DX*1), BX
	VPXOR Y0, Y0, Y0
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPXOR Y10, Y10, Y10
	MOVL $0x00010001, AX
	VMOVD AX, X7
	VPBROADCASTD X7, Y7
	XORQ AX, AX
loop4:
	CMPQ AX, CX
	JGE done4
	VMOVDQU (DI), Y1              // w
	VPABSB Y1, Y3                 // |w|
	VMOVSS (SI)(AX*4), X6         // wd[b]

	VMOVDQU (R9), Y2
	VPSIGNB Y1, Y2, Y2
	VPMADDUBSW Y2, Y3, Y4
	VPMADDWD Y7, Y4, Y4
	VCVTDQ2PS Y4, Y4
	VMULSS (R8)(AX*4), X6, X5
	VBROADCASTSS X5, Y5
	VFMADD231PS Y4, Y5, Y0

	VMOVDQU (R13), Y2
	VPSIGNB Y1, Y2, Y2
	VPMADDUBSW Y2, Y3, Y4
	VPMADDWD Y7, Y4, Y4
	VCVTDQ2PS Y4, Y4
	VMULSS (R10)(AX*4), X6, X5
	VBROADCASTSS X5, Y5
	VFMADD231PS Y4, Y5, Y8

	VMOVDQU (BX), Y2
	VPSIGNB Y1, Y2, Y2
	VPMADDUBSW Y2, Y3, Y4
	VPMADDWD Y7, Y4, Y4
	VCVTDQ2PS Y4, Y4
	VMULSS (R11)(AX*4), X6, X5
	VBROADCASTSS X5, Y5
	VFMADD231PS Y4, Y5, Y9

	VMOVDQU (BX)(DX*1), Y2
	VPSIGNB Y1, Y2, Y2
	VPMADDUBSW Y2, Y3, Y4
	VPMADDWD Y7, Y4, Y4
	VCVTDQ2PS Y4, Y4
	VMULSS (R12)(AX*4), X6, X5
	VBROADCASTSS X5, Y5
	VFMADD231PS Y4, Y5, Y10

	ADDQ $32, DI
	ADDQ $32, R9
	ADDQ $32, R13
	ADDQ $32, BX
	INCQ AX
	JMP loop4
done4:
	MOVQ out+48(FP), DI
	VEXTRACTF128 $1, Y0, X1
	VADDPS X0, X1, X1
	VMOVHLPS X1, X1, X2
	VADDPS X2, X1, X1
	VMOVSHDUP X1, X2
	VADDSS X2, X1, X1
	VMOVSS X1, 0(DI)
	VEXTRACTF128 $1, Y8, X1
	VADDPS X8, X1, X1
	VMOVHLPS X1, X1, X2
	VADDPS X2, X1, X1
	VMOVSHDUP X1, X2
	VADDSS X2, X1, X1
	VMOVSS X1, 4(DI)
	VEXTRACTF128 $1, Y9, X1
	VADDPS X9, X1, X1
	VMOVHLPS X1, X1, X2
	VADDPS X2, X1, X1
	VMOVSHDUP X1, X2
	VADDSS X2, X1, X1
	VMOVSS X1, 8(DI)
	VEXTRACTF128 $1, Y10, X1
	VADDPS X10, X1, X1
	VMOVHLPS X1, X1, X2
	VADDPS X2, X1, X1
	VMOVSHDUP X1, X2
	VADDSS X2, X1, X1
	VMOVSS X1, 12(DI)
	VZEROUPPER
	RET

// func dotQ8r4AVX2(wd *float32, wq *int8, xd *float32, xq *int8, nb int, out *[4]float32)
TEXT ·dotQ8r4AVX2(SB), NOSPLIT, $0-48
	MOVQ wd+0(FP), SI
	MOVQ wq+8(FP), DI
	MOVQ xd+16(FP), R8
	MOVQ xq+24(FP), R9
	MOVQ nb+32(FP), CX
	// Row i's scales at SI + i*nb*4, quants at DI + i*nb*32.
	MOVQ CX, DX
	SHLQ $2, DX                   // nb*4
	LEAQ (SI)(DX*1), R10
	LEAQ (R10)(DX*1), R11
	LEAQ (R11)(DX*1), R12
	MOVQ CX, DX
	SHLQ $5, DX                   // nb*32
	LEAQ (DI)(DX*1), R13
	LEAQ (R13)(DX*1), BX
	VPXOR Y0, Y0, Y0
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPXOR Y10, Y10, Y10
	MOVL $0x00010001, AX
	VMOVD AX, X7
	VPBROADCASTD X7, Y7
	XORQ AX, AX
loopr4:
	CMPQ AX, CX
	JGE doner4
	VMOVDQU (R9), Y2              // x
	VMOVSS (R8)(AX*4), X6         // xd[b]

	VMOVDQU (DI), Y1
	VPABSB Y1, Y3
	VPSIGNB Y1, Y2, Y4
	VPMADDUBSW Y4, Y3, Y4
	VPMADDWD Y7, Y4, Y4
	VCVTDQ2PS Y4, Y4
	VMULSS (SI)(AX*4), X6, X5     // wd[b]*xd[b], as in the single kernel
	VBROADCASTSS X5, Y5
	VFMADD231PS Y4, Y5, Y0

	VMOVDQU (R13), Y1
	VPABSB Y1, Y3
	VPSIGNB Y1, Y2, Y4
	VPMADDUBSW Y4, Y3, Y4
	VPMADDWD Y7, Y4, Y4
	VCVTDQ2PS Y4, Y4
	VMULSS (R10)(AX*4), X6, X5
	VBROADCASTSS X5, Y5
	VFMADD231PS Y4, Y5, Y8

	VMOVDQU (BX), Y1
	VPABSB Y1, Y3
	VPSIGNB Y1, Y2, Y4
	VPMADDUBSW Y4, Y3, Y4
	VPMADDWD Y7, Y4, Y4
	VCVTDQ2PS Y4, Y4
	VMULSS (R11)(AX*4), X6, X5
	VBROADCASTSS X5, Y5
	VFMADD231PS Y4, Y5, Y9

	VMOVDQU (BX)(DX*1), Y1
	VPABSB Y1, Y3
	VPSIGNB Y1, Y2, Y4
	VPMADDUBSW Y4, Y3, Y4
	VPMADDWD Y7, Y4, Y4
	VCVTDQ2PS Y4, Y4
	VMULSS (R12)(AX*4), X6, X5
	VBROADCASTSS X5, Y5
	VFMADD231PS Y4, Y5, Y10

	ADDQ $32, DI
	ADDQ $32, R13
	ADDQ $32, BX
	ADDQ $32, R9
	INCQ AX
	JMP loopr4
doner4:
	MOVQ out+40(FP), DI
	VEXTRACTF128 $1, Y0, X1
	VADDPS X0, X1, X1
	VMOVHLPS X1, X1, X2
	VADDPS X2, X1, X1
	VMOVSHDUP X1, X2
	VADDSS X2, X1, X1
	VMOVSS X1, 0(DI)
	VEXTRACTF128 $1, Y8, X1
	VADDPS X8, X1, X1
	VMOVHLPS X1, X1, X2
	VADDPS X2, X1, X1
	VMOVSHDUP X1, X2
	VADDSS X2, X1, X1
	VMOVSS X1, 4(DI)
	VEXTRACTF128 $1, Y9, X1
	VADDPS X9, X1, X1
	VMOVHLPS X1, X1, X2
	VADDPS X2, X1, X1
	VMOVSHDUP X1, X2
	VADDSS X2, X1, X1
	VMOVSS X1, 8(DI)
	VEXTRACTF128 $1, Y10, X1
	VADDPS X10, X1, X1
	VMOVHLPS X1, X1, X2
	VADDPS X2, X1, X1
	VMOVSHDUP X1, X2
	VADDSS X2, X1, X1
	VMOVSS X1, 12(DI)
	VZEROUPPER
	RET

// func dotF32AVX2(a, b *float32, n int) float32
TEXT ·dotF32AVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	XORQ AX, AX
	MOVQ CX, DX
	ANDQ $-32, DX
loopf32:
	CMPQ AX, DX
	JGE tail8
	VMOVUPS (SI)(AX*4), Y4
	VMOVUPS 32(SI)(AX*4), Y5
	VMOVUPS 64(SI)(AX*4), Y6
	VMOVUPS 96(SI)(AX*4), Y7
	VFMADD231PS (DI)(AX*4), Y4, Y0
	VFMADD231PS 32(DI)(AX*4), Y5, Y1
	VFMADD231PS 64(DI)(AX*4), Y6, Y2
	VFMADD231PS 96(DI)(AX*4), Y7, Y3
	ADDQ $32, AX
	JMP loopf32
tail8:
	MOVQ CX, DX
	ANDQ $-8, DX
loop8:
	CMPQ AX, DX
	JGE reduce
	VMOVUPS (SI)(AX*4), Y4
	VFMADD231PS (DI)(AX*4), Y4, Y0
	ADDQ $8, AX
	JMP loop8
reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X0, X1, X1
	VMOVHLPS X1, X1, X2
	VADDPS X2, X1, X1
	VMOVSHDUP X1, X2
	VADDSS X2, X1, X0
tail1:
	CMPQ AX, CX
	JGE donef32
	VMOVSS (SI)(AX*4), X4
	VFMADD231SS (DI)(AX*4), X4, X0
	INCQ AX
	JMP tail1
donef32:
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func axpyAVX2(a float32, x, y *float32, n int)
TEXT ·axpyAVX2(SB), NOSPLIT, $0-32
	VBROADCASTSS a+0(FP), Y0
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ n+24(FP), CX
	XORQ AX, AX
	MOVQ CX, DX
	ANDQ $-8, DX
loopaxpy:
	CMPQ AX, DX
	JGE tailaxpy
	VMOVUPS (DI)(AX*4), Y1
	VFMADD231PS (SI)(AX*4), Y0, Y1
	VMOVUPS Y1, (DI)(AX*4)
	ADDQ $8, AX
	JMP loopaxpy
tailaxpy:
	CMPQ AX, CX
	JGE doneaxpy
	VMOVSS (DI)(AX*4), X1
	VFMADD231SS (SI)(AX*4), X0, X1
	VMOVSS X1, (DI)(AX*4)
	INCQ AX
	JMP tailaxpy
doneaxpy:
	VZEROUPPER
	RET

// func dotHalfAVX2(a, b *uint16, n int) float32
// n a multiple of 64. Accumulator j of ggml (elements i+16j..i+16j+15 of
// each 64-chunk) is Y(2j) for its lanes 0-7 and Y(2j+1) for lanes 8-15.
TEXT ·dotHalfAVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ AX, AX
loophalf:
	CMPQ AX, CX
	JGE reducehalf
	VCVTPH2PS (SI)(AX*2), Y8
	VCVTPH2PS (DI)(AX*2), Y9
	VFMADD231PS Y9, Y8, Y0
	VCVTPH2PS 16(SI)(AX*2), Y8
	VCVTPH2PS 16(DI)(AX*2), Y9
	VFMADD231PS Y9, Y8, Y1
	VCVTPH2PS 32(SI)(AX*2), Y8
	VCVTPH2PS 32(DI)(AX*2), Y9
	VFMADD231PS Y9, Y8, Y2
	VCVTPH2PS 48(SI)(AX*2), Y8
	VCVTPH2PS 48(DI)(AX*2), Y9
	VFMADD231PS Y9, Y8, Y3
	VCVTPH2PS 64(SI)(AX*2), Y8
	VCVTPH2PS 64(DI)(AX*2), Y9
	VFMADD231PS Y9, Y8, Y4
	VCVTPH2PS 80(SI)(AX*2), Y8
	VCVTPH2PS 80(DI)(AX*2), Y9
	VFMADD231PS Y9, Y8, Y5
	VCVTPH2PS 96(SI)(AX*2), Y8
	VCVTPH2PS 96(DI)(AX*2), Y9
	VFMADD231PS Y9, Y8, Y6
	VCVTPH2PS 112(SI)(AX*2), Y8
	VCVTPH2PS 112(DI)(AX*2), Y9
	VFMADD231PS Y9, Y8, Y7
	ADDQ $64, AX
	JMP loophalf
reducehalf:
	// acc0 += acc2, acc1 += acc3, acc0 += acc1
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y6, Y2, Y2
	VADDPS Y7, Y3, Y3
	VADDPS Y2, Y0, Y0
	VADDPS Y3, Y1, Y1
	// _mm512_reduce_add_ps: lanes i and i+8, then as hsum_float_8.
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X0, X1, X1
	VMOVHLPS X1, X1, X2
	VADDPS X2, X1, X1
	VMOVSHDUP X1, X2
	VADDSS X2, X1, X0
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func madHalfAVX2(y, x *uint16, v float32, n int)
// y[i] = half(fma(x[i], v, y[i])) for n a multiple of 8.
TEXT ·madHalfAVX2(SB), NOSPLIT, $0-32
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	VBROADCASTSS v+16(FP), Y0
	MOVQ n+24(FP), CX
	XORQ AX, AX
loopmad:
	CMPQ AX, CX
	JGE donemad
	VCVTPH2PS (SI)(AX*2), Y1
	VCVTPH2PS (DI)(AX*2), Y2
	VFMADD231PS Y0, Y1, Y2
	VCVTPS2PH $0, Y2, X2
	VMOVDQU X2, (DI)(AX*2)
	ADDQ $8, AX
	JMP loopmad
donemad:
	VZEROUPPER
	RET

// func scaleHalfAVX2(y *uint16, v float32, n int)
// y[i] = half(y[i]*v) for n a multiple of 8.
TEXT ·scaleHalfAVX2(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), DI
	VBROADCASTSS v+8(FP), Y0
	MOVQ n+16(FP), CX
	XORQ AX, AX
loopscale:
	CMPQ AX, CX
	JGE donescale
	VCVTPH2PS (DI)(AX*2), Y1
	VMULPS Y0, Y1, Y1
	VCVTPS2PH $0, Y1, X1
	VMOVDQU X1, (DI)(AX*2)
	ADDQ $8, AX
	JMP loopscale
donescale:
	VZEROUPPER
	RET

// acc (float64) += the eight products k[i]*q[i] at kptr (halves; q's eight
// already widened in Y2), each exact in float, added one at a time in order.
#define CHAIN8(kptr, acc) \
	VCVTPH2PS kptr, Y1; \
	VMULPS Y2, Y1, Y1; \
	VCVTPS2PD X1, Y3; \
	VEXTRACTF128 $1, Y1, X4; \
	VCVTPS2PD X4, Y4; \
	VADDSD X3, acc, acc; \
	VPERMILPD $1, X3, X5; \
	VADDSD X5, acc, acc; \
	VEXTRACTF128 $1, Y3, X5; \
	VADDSD X5, acc, acc; \
	VPERMILPD $1, X5, X5; \
	VADDSD X5, acc, acc; \
	VADDSD X4, acc, acc; \
	VPERMILPD $1, X4, X5; \
	VADDSD X5, acc, acc; \
	VEXTRACTF128 $1, Y4, X5; \
	VADDSD X5, acc, acc; \
	VPERMILPD $1, X5, X5; \
	VADDSD X5, acc, acc

// func dotHalfTailAVX2(s float64, a, b *uint16, n int) float64
// s plus a[i]*b[i] for i < n (a multiple of 8), each product exact in float
// and added to s in float64 one at a time, in order.
TEXT ·dotHalfTailAVX2(SB), NOSPLIT, $0-40
	MOVSD s+0(FP), X0
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ n+24(FP), CX
	XORQ AX, AX
looptail:
	CMPQ AX, CX
	JGE donetail
	VCVTPH2PS (DI)(AX*2), Y2
	CHAIN8((SI)(AX*2), X0)
	ADDQ $8, AX
	JMP looptail
donetail:
	VZEROUPPER
	MOVSD X0, ret+32(FP)
	RET

// func dotHalfTail4AVX2(k *uint16, stride int, q *uint16, n int, out *[4]float32)
// out[j] = Σ k[j*stride+i]*q[i] for j < 4, i < n (a multiple of 8), each as
// dotHalfTailAVX2 from zero: the four float64 chains are independent, so
// they run side by side instead of one after another.
TEXT ·dotHalfTail4AVX2(SB), NOSPLIT, $0-40
	MOVQ k+0(FP), SI
	MOVQ stride+8(FP), R8
	SHLQ $1, R8                   // bytes between rows
	MOVQ q+16(FP), DI
	MOVQ n+24(FP), CX
	LEAQ (SI)(R8*1), R9
	LEAQ (SI)(R8*2), R10
	LEAQ (R9)(R8*2), R11
	VXORPD X0, X0, X0
	VXORPD X6, X6, X6
	VXORPD X7, X7, X7
	VXORPD X8, X8, X8
	XORQ AX, AX

loop4tail:
	CMPQ AX, CX
	JGE done4tail
	VCVTPH2PS (DI)(AX*2), Y2
	CHAIN8((SI)(AX*2), X0)
	CHAIN8((R9)(AX*2), X6)
	CHAIN8((R10)(AX*2), X7)
	CHAIN8((R11)(AX*2), X8)
	ADDQ $8, AX
	JMP loop4tail
done4tail:
	MOVQ out+32(FP), DI
	VCVTSD2SS X0, X0, X0
	VMOVSS X0, 0(DI)
	VCVTSD2SS X6, X6, X6
	VMOVSS X6, 4(DI)
	VCVTSD2SS X7, X7, X7
	VMOVSS X7, 8(DI)
	VCVTSD2SS X8, X8, X8
	VMOVSS X8, 12(DI)
	VZEROUPPER
	RET

// func dotHalfTail8AVX2(k *uint16, stride int, q *uint16, n int, out *[8]float32)
// dotHalfTail4AVX2 for eight rows: eight independent float64 chains keep
// both adders busy through the add latency.
TEXT ·dotHalfTail8AVX2(SB), NOSPLIT, $0-40
	MOVQ k+0(FP), SI
	MOVQ stride+8(FP), R8
	SHLQ $1, R8                   // bytes between rows
	MOVQ q+16(FP), DI
	MOVQ n+24(FP), CX
	LEAQ (SI)(R8*1), R9
	LEAQ (SI)(R8*2), R10
	LEAQ (R9)(R8*2), R11
	LEAQ (R10)(R8*2), R12
	LEAQ (R11)(R8*2), R13
	LEAQ (R12)(R8*2), R14
	LEAQ (R13)(R8*2), R15
	VXORPD X0, X0, X0
	VXORPD X6, X6, X6
	VXORPD X7, X7, X7
	VXORPD X8, X8, X8
	VXORPD X9, X9, X9
	VXORPD X10, X10, X10
	VXORPD X11, X11, X11
	VXORPD X12, X12, X12
	XORQ AX, AX
loop8tail:
	CMPQ AX, CX
	JGE done8tail
	VCVTPH2PS (DI)(AX*2), Y2
	CHAIN8((SI)(AX*2), X0)
	CHAIN8((R9)(AX*2), X6)
	CHAIN8((R10)(AX*2), X7)
	CHAIN8((R11)(AX*2), X8)
	CHAIN8((R12)(AX*2), X9)
	CHAIN8((R13)(AX*2), X10)
	CHAIN8((R14)(AX*2), X11)
	CHAIN8((R15)(AX*2), X12)
	ADDQ $8, AX
	JMP loop8tail
done8tail:
	MOVQ out+32(FP), DI
	VCVTSD2SS X0, X0, X0
	VMOVSS X0, 0(DI)
	VCVTSD2SS X6, X6, X6
	VMOVSS X6, 4(DI)
	VCVTSD2SS X7, X7, X7
	VMOVSS X7, 8(DI)
	VCVTSD2SS X8, X8, X8
	VMOVSS X8, 12(DI)
	VCVTSD2SS X9, X9, X9
	VMOVSS X9, 16(DI)
	VCVTSD2SS X10, X10, X10
	VMOVSS X10, 20(DI)
	VCVTSD2SS X11, X11, X11
	VMOVSS X11, 24(DI)
	VCVTSD2SS X12, X12, X12
	VMOVSS X12, 28(DI)
	VZEROUPPER
	RET

// func quantizeQ8AVX2(x *float32, nb int, d *float32, qs *int8, u *int8, xe *float32, xc *int32)
// Per block of 32: amax = max |x|; d = half(amax/127); q = round-half-even
// (x * 127/amax) (0 when amax is 0), packed to bytes in order; with u
// non-nil, also u = q XOR 0x80, xe = d 8 times and xc = -128 × each 4-byte
// lane's sum (VPMADDUBSW of 128s with q, then VPMADDWD with 1s: exact).
TEXT ·quantizeQ8AVX2(SB), NOSPLIT, $0-56
	MOVQ x+0(FP), SI
	MOVQ nb+8(FP), CX
	MOVQ d+16(FP), R8
	MOVQ qs+24(FP), DI
	MOVQ u+32(FP), R9
	MOVQ xe+40(FP), R10
	MOVL $0x7fffffff, AX
	MOVQ AX, X15
	VPBROADCASTD X15, Y15         // |x| mask
	MOVL $0x42fe0000, AX          // 127.0
	MOVQ AX, X14
	MOVL $0x80808080, AX
	MOVQ AX, X13
	VPBROADCASTD X13, Y13
	// VPERMD index putting the packed dwords back in element order.
	MOVQ $0x0000000400000000, AX
	MOVQ AX, X12
	MOVQ $0x0000000500000001, AX
	MOVQ AX, X11
	VPUNPCKLQDQ X11, X12, X12
	MOVQ $0x0000000600000002, AX
	MOVQ AX, X11
	MOVQ $0x0000000700000003, AX
	MOVQ AX, X10
	VPUNPCKLQDQ X10, X11, X11
	VINSERTI128 $1, X11, Y12, Y12
	MOVQ xe+40(FP), R10
	MOVQ xc+48(FP), R11
	MOVL $0x00010001, AX
	MOVQ AX, X11
	VPBROADCASTD X11, Y11         // int16 ones
qloop:
	TESTQ CX, CX
	JLE qdone
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VANDPS Y15, Y0, Y4
	VANDPS Y15, Y1, Y5
	VANDPS Y15, Y2, Y6
	VANDPS Y15, Y3, Y7
	VMAXPS Y5, Y4, Y4
	VMAXPS Y7, Y6, Y6
	VMAXPS Y6, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VMAXPS X5, X4, X4
	VMOVHLPS X4, X4, X5
	VMAXPS X5, X4, X4
	VMOVSHDUP X4, X5
	VMAXSS X5, X4, X4             // amax
	VDIVSS X14, X4, X5            // amax/127
	VCVTPS2PH $0, X5, X5
	VCVTPH2PS X5, X5
	VMOVSS X5, (R8)
	VXORPS X6, X6, X6
	VUCOMISS X6, X4
	JEQ qzero
	VDIVSS X4, X14, X6            // 127/amax
qzero:
	VBROADCASTSS X6, Y6
	VMULPS Y6, Y0, Y0
	VMULPS Y6, Y1, Y1
	VMULPS Y6, Y2, Y2
	VMULPS Y6, Y3, Y3
	VCVTPS2DQ Y0, Y0              // round half to even (MXCSR default)
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y2, Y2
	VCVTPS2DQ Y3, Y3
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKSSWB Y2, Y0, Y0
	VPERMD Y0, Y12, Y0
	VMOVDQU Y0, (DI)
	TESTQ R9, R9
	JZ qnext
	VPXOR Y13, Y0, Y1
	VMOVDQU Y1, (R9)
	VBROADCASTSS X5, Y5
	VMOVUPS Y5, (R10)
	VPMADDUBSW Y0, Y13, Y1        // 128·(q[2i]+q[2i+1]), exact in int16
	VPMADDWD Y11, Y1, Y1          // lane sums of four
	VPXOR Y2, Y2, Y2
	VPSUBD Y1, Y2, Y1
	VMOVDQU Y1, (R11)
	ADDQ $32, R9
	ADDQ $32, R10
	ADDQ $32, R11
qnext:
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, R8
	DECQ CX
	JMP qloop
qdone:
	VZEROUPPER
	RET
