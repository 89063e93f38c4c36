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
