//go:build amd64 && !purego

#include "textflag.h"

// AVX-512 VNNI Q8_0 kernels. Two blocks (64 bytes) per instruction: VPDPBUSD
// multiplies unsigned activations u = x+128 (x XOR 0x80, prepared once per
// token) with the signed weights, and 128·Σw (VPDPBUSD of 0x80 bytes with
// the weights) is subtracted, which leaves Σ x·w exactly, in the same
// 4-product int32 lanes as the AVX2 kernels. The float accumulation is
// llama.cpp's exactly: one 8-lane accumulator, one FMA per block with the
// block's scale product, blocks in order (the even block of a pair from
// lanes 0-7, then the odd one from lanes 8-15), then hsum_float_8. Any other
// order changes roundings, and a reference engine's greedy picks with them.
//
// Scales: xe holds each block's activation scale 8 times (so a pair of
// blocks is one 16-float load), the weight scales are permuted out of a
// 16-block vector (VPERMPS with a running index).
//
// Registers: Z31 = 0x80 bytes, Z30 = 2 (index step), Z27 = [0 x8, 1 x8]
// (first index), Z29 = current index.

#define CONSTS \
	MOVL $0x80808080, AX; \
	VPBROADCASTD AX, Z31; \
	MOVL $2, AX; \
	VPBROADCASTD AX, Z30; \
	MOVL $1, AX; \
	VPBROADCASTD AX, Y26; \
	VPXORD Z27, Z27, Z27; \
	VINSERTI64X4 $1, Y26, Z27, Z27

// K2 = lanes of the weight-scale group starting at block AX (min(16, DX-AX)).
#define GROUPMASK \
	MOVQ DX, CX; \
	SUBQ AX, CX; \
	MOVQ $16, BX; \
	CMPQ CX, BX; \
	CMOVQGT BX, CX; \
	MOVL $1, BX; \
	SHLL CX, BX; \
	DECL BX; \
	KMOVW BX, K2; \
	VMOVDQA32 Z27, Z29

// K1 = all 64 bytes of the pair at block AX, or only the first 32 when it
// is the odd last block.
#define PAIRMASK \
	MOVQ $-1, BX; \
	MOVL $0xFFFFFFFF, CX; \
	LEAQ 1(AX), R14; \
	CMPQ R14, DX; \
	CMOVQGE CX, BX; \
	KMOVQ BX, K1

// Z4 = weights of the pair at wptr, Z5 = 128·Σw per lane.
#define WLOAD(wptr) \
	VMOVDQU8.Z wptr, K1, Z4; \
	VPXORD Z5, Z5, Z5; \
	VPDPBUSD Z4, Z31, Z5

// acc += (wd·xd) * Σ x·w for one token whose u and xe pairs are at uaddr
// and eaddr, the even block then the odd one; Z6 holds the pair's weight
// scales. An odd last block has zero scales and quants: acc + 0·0 = acc.
#define TOKSTEP(uaddr, eaddr, acc) \
	VMOVDQU8 uaddr, Z8; \
	VPXORD Z9, Z9, Z9; \
	VPDPBUSD Z4, Z8, Z9; \
	VPSUBD Z5, Z9, Z9; \
	VCVTDQ2PS Z9, Z9; \
	VMULPS eaddr, Z6, Z10; \
	VEXTRACTF64X4 $1, Z9, Y7; \
	VEXTRACTF64X4 $1, Z10, Y15; \
	VFMADD231PS Y9, Y10, acc; \
	VFMADD231PS Y7, Y15, acc

// X1 = llama.cpp's hsum_float_8 of Yacc.
#define HSUM(Yacc) \
	VMOVAPS Yacc, Y1; \
	VEXTRACTF128 $1, Y1, X2; \
	VADDPS X1, X2, X1; \
	VMOVHLPS X1, X1, X2; \
	VADDPS X2, X1, X1; \
	VMOVSHDUP X1, X2; \
	VADDSS X2, X1, X1

// func dotQ8VNNI(wd *float32, wq *int8, xe *float32, xu *int8, nb int) float32
TEXT ·dotQ8VNNI(SB), NOSPLIT, $0-44
	MOVQ wd+0(FP), SI
	MOVQ wq+8(FP), DI
	MOVQ xe+16(FP), R8
	MOVQ xu+24(FP), R9
	MOVQ nb+32(FP), DX
	CONSTS
	VPXORD Z0, Z0, Z0
	XORQ AX, AX
v1loop:
	CMPQ AX, DX
	JGE v1done
	TESTQ $15, AX
	JNZ v1noreload
	GROUPMASK
	VMOVUPS.Z (SI), K2, Z20
	ADDQ $64, SI
v1noreload:
	PAIRMASK
	WLOAD((DI))
	VPERMPS Z20, Z29, Z6
	TOKSTEP((R9), (R8), Y0)
	VPADDD Z30, Z29, Z29
	ADDQ $64, DI
	ADDQ $64, R9
	ADDQ $64, R8
	ADDQ $2, AX
	JMP v1loop
v1done:
	HSUM(Y0)
	VZEROUPPER
	MOVSS X1, ret+40(FP)
	RET

// func dotQ8x4VNNI(wd *float32, wq *int8, xe *float32, xu *int8, nb, eStride, uStride int, out *[4]float32)
// Token t's pairs are at xe + t*eStride and xu + t*uStride (bytes).
TEXT ·dotQ8x4VNNI(SB), NOSPLIT, $0-64
	MOVQ wd+0(FP), SI
	MOVQ wq+8(FP), DI
	MOVQ xe+16(FP), R8
	MOVQ xu+24(FP), R9
	MOVQ nb+32(FP), DX
	MOVQ eStride+40(FP), R10
	MOVQ uStride+48(FP), R11
	LEAQ (R10)(R10*2), R12
	LEAQ (R11)(R11*2), R13
	CONSTS
	VPXORD Z0, Z0, Z0
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	// R15 walks the next row's quants (the caller's next call), 64 bytes
	// per pair of blocks: prefetched one call ahead.
	MOVQ DX, R15
	SHLQ $5, R15
	ADDQ DI, R15
	XORQ AX, AX
v4loop:
	CMPQ AX, DX
	JGE v4done
	PREFETCHT0 (R15)
	ADDQ $64, R15
	TESTQ $15, AX
	JNZ v4noreload
	GROUPMASK
	VMOVUPS.Z (SI), K2, Z20
	ADDQ $64, SI
v4noreload:
	PAIRMASK
	WLOAD((DI))
	VPERMPS Z20, Z29, Z6
	TOKSTEP((R9), (R8), Y0)
	TOKSTEP((R9)(R11*1), (R8)(R10*1), Y11)
	TOKSTEP((R9)(R11*2), (R8)(R10*2), Y12)
	TOKSTEP((R9)(R13*1), (R8)(R12*1), Y13)
	VPADDD Z30, Z29, Z29
	ADDQ $64, DI
	ADDQ $64, R9
	ADDQ $64, R8
	ADDQ $2, AX
	JMP v4loop
v4done:
	MOVQ out+56(FP), DI
	HSUM(Y0)
	VMOVSS X1, 0(DI)
	HSUM(Y11)
	VMOVSS X1, 4(DI)
	HSUM(Y12)
	VMOVSS X1, 8(DI)
	HSUM(Y13)
	VMOVSS X1, 12(DI)
	VZEROUPPER
	RET

// acc += (wd·xd) * Σ x·w for one token, the even block then the odd one,
// with the weights as the unsigned operand (w XOR 0x80 = w+128) and the
// token's signed quants (Z25): starting the sum at xc = -128·Σx (Z24) leaves
// Σ x·w exactly. Z6 holds the pair's weight scales; padding quants are 0.
#define SROW(wptr, eaddr, acc) \
	VMOVDQU8.Z wptr, K1, Z4; \
	VPXORD Z31, Z4, Z4; \
	VMOVDQA32 Z24, Z9; \
	VPDPBUSD Z25, Z4, Z9; \
	VCVTDQ2PS Z9, Z9; \
	VMULPS eaddr, Z6, Z10; \
	VEXTRACTF64X4 $1, Z9, Y7; \
	VEXTRACTF64X4 $1, Z10, Y15; \
	VFMADD231PS Y9, Y10, acc; \
	VFMADD231PS Y7, Y15, acc

// func dotQ8r4VNNI(wd *float32, wq *int8, xe *float32, xq *int8, xc *int32, nb, rows int, out *float32)
// rows (a multiple of 4) consecutive rows of nb blocks with one token, four
// at a time; row r goes to out[r]. The argument slots for wd, wq, rows and
// out advance with each group of four.
TEXT ·dotQ8r4VNNI(SB), NOSPLIT, $0-64
	MOVQ nb+40(FP), DX
	MOVQ DX, R10
	SHLQ $5, R10                  // row stride of the quants
	LEAQ (R10)(R10*2), R11
	MOVQ DX, R12
	SHLQ $2, R12                  // row stride of the scales
	LEAQ (R12)(R12*2), R13
	CONSTS
r4group:
	MOVQ rows+48(FP), AX
	CMPQ AX, $4
	JLT r4end
	MOVQ wd+0(FP), SI
	MOVQ wq+8(FP), DI
	MOVQ xe+16(FP), R8
	MOVQ xq+24(FP), R9
	VPXORD Z0, Z0, Z0
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	// R15 walks the quants of the next four rows, 256 bytes per pair of
	// blocks, which covers them exactly: prefetching them one group ahead
	// keeps a single core's loads near memory bandwidth.
	LEAQ (DI)(R10*4), R15
	XORQ AX, AX
r4loop:
	CMPQ AX, DX
	JGE r4done
	PREFETCHT0 (R15)
	PREFETCHT0 64(R15)
	PREFETCHT0 128(R15)
	PREFETCHT0 192(R15)
	ADDQ $256, R15
	TESTQ $15, AX
	JNZ r4noreload
	GROUPMASK
	VMOVUPS.Z (SI), K2, Z20
	VMOVUPS.Z (SI)(R12*1), K2, Z21
	VMOVUPS.Z (SI)(R12*2), K2, Z22
	VMOVUPS.Z (SI)(R13*1), K2, Z23
	ADDQ $64, SI
r4noreload:
	PAIRMASK
	VMOVDQU8.Z (R9), K1, Z25
	MOVQ AX, BX
	SHLQ $5, BX
	ADDQ xc+32(FP), BX
	VMOVDQU32 (BX), Z24
	VPERMPS Z20, Z29, Z6
	SROW((DI), (R8), Y0)
	VPERMPS Z21, Z29, Z6
	SROW((DI)(R10*1), (R8), Y11)
	VPERMPS Z22, Z29, Z6
	SROW((DI)(R10*2), (R8), Y12)
	VPERMPS Z23, Z29, Z6
	SROW((DI)(R11*1), (R8), Y13)
	VPADDD Z30, Z29, Z29
	ADDQ $64, DI
	ADDQ $64, R9
	ADDQ $64, R8
	ADDQ $2, AX
	JMP r4loop
r4done:
	MOVQ out+56(FP), DI
	HSUM(Y0)
	VMOVSS X1, 0(DI)
	HSUM(Y11)
	VMOVSS X1, 4(DI)
	HSUM(Y12)
	VMOVSS X1, 8(DI)
	HSUM(Y13)
	VMOVSS X1, 12(DI)
	ADDQ $16, DI
	MOVQ DI, out+56(FP)
	MOVQ wd+0(FP), SI
	LEAQ (SI)(R12*4), SI
	MOVQ SI, wd+0(FP)
	MOVQ wq+8(FP), DI
	LEAQ (DI)(R10*4), DI
	MOVQ DI, wq+8(FP)
	SUBQ $4, rows+48(FP)
	JMP r4group
r4end:
	VZEROUPPER
	RET

// acc += (wd·xd) * Σ x·w for two tokens of one block b: their signed
// quants (32 bytes each) side by side at qaddr, their scales 8 times each
// at eaddr and their lane corrections -128·Σx at caddr (eaddr+64); Z4 holds
// the block's weights XOR 0x80 in both halves, Z6 the block's weight scale.
// One FMA per block per token, in block order.
#define PAIRSTEP(qaddr, eaddr, caddr, acc) \
	VMOVDQU8 qaddr, Z8; \
	VMOVDQU32 caddr, Z9; \
	VPDPBUSD Z8, Z4, Z9; \
	VCVTDQ2PS Z9, Z9; \
	VMULPS eaddr, Z6, Z10; \
	VFMADD231PS Z9, Z10, acc

// X1 = hsum_float_8 of the high half of Zacc.
#define HSUMHI(Zacc) \
	VEXTRACTF64X4 $1, Zacc, Y1; \
	VEXTRACTF128 $1, Y1, X2; \
	VADDPS X1, X2, X1; \
	VMOVHLPS X1, X1, X2; \
	VADDPS X2, X1, X1; \
	VMOVSHDUP X1, X2; \
	VADDSS X2, X1, X1

// func dotQ8x8VNNI(wd *float32, wq *int8, ec2 *uint32, xq2 *int8, nb, stride, rows int, out *float32, outStride int)
// rows consecutive weight rows (from wd, wq) against eight tokens as four
// pairs, pair p's interleaved quants at xq2 + p*stride and its scales and
// corrections at ec2 + 2*p*stride (bytes; 128 per block): a pair per
// 512-bit register, one block at a time, so
// each token accumulates exactly as dotQ8Go does. Row r, token i goes to
// out[i*outStride + r]. One call covers many rows: the per-call cost would
// dominate short rows (the output matrix has 32000 rows of 9 blocks).
TEXT ·dotQ8x8VNNI(SB), NOSPLIT, $0-72
	MOVQ wd+0(FP), SI
	MOVQ wq+8(FP), DI
	MOVQ ec2+16(FP), R11
	MOVQ xq2+24(FP), R14
	MOVQ nb+32(FP), DX
	MOVQ stride+40(FP), R10
	MOVQ rows+48(FP), R13
	MOVQ out+56(FP), BX
	MOVQ outStride+64(FP), CX
	SHLQ $2, CX
	LEAQ (R10)(R10*2), R12
	MOVL $0x80808080, AX
	VPBROADCASTD AX, Z31
	// R15 walks the quants one row ahead, 64 bytes per two blocks.
	MOVQ DX, R15
	SHLQ $5, R15
	ADDQ DI, R15
p8row:
	TESTQ R13, R13
	JLE p8end
	VPXORD Z0, Z0, Z0
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	MOVQ R11, R8
	MOVQ R14, R9
	XORQ AX, AX
p8loop:
	CMPQ AX, DX
	JGE p8done
	TESTQ $1, AX
	JNZ p8nopf
	PREFETCHT0 (R15)
	ADDQ $64, R15
p8nopf:
	VBROADCASTI64X4 (DI), Z4
	VPXORD Z31, Z4, Z4
	VBROADCASTSS (SI), Z6
	PAIRSTEP((R9), (R8), 64(R8), Z0)
	PAIRSTEP((R9)(R10*1), (R8)(R10*2), 64(R8)(R10*2), Z11)
	PAIRSTEP((R9)(R10*2), (R8)(R10*4), 64(R8)(R10*4), Z12)
	PAIRSTEP((R9)(R12*1), (R8)(R12*2), 64(R8)(R12*2), Z13)
	ADDQ $32, DI
	ADDQ $4, SI
	ADDQ $64, R9
	ADDQ $128, R8
	INCQ AX
	JMP p8loop
p8done:
	MOVQ BX, R8
	HSUM(Y0)
	VMOVSS X1, (R8)
	ADDQ CX, R8
	HSUMHI(Z0)
	VMOVSS X1, (R8)
	ADDQ CX, R8
	HSUM(Y11)
	VMOVSS X1, (R8)
	ADDQ CX, R8
	HSUMHI(Z11)
	VMOVSS X1, (R8)
	ADDQ CX, R8
	HSUM(Y12)
	VMOVSS X1, (R8)
	ADDQ CX, R8
	HSUMHI(Z12)
	VMOVSS X1, (R8)
	ADDQ CX, R8
	HSUM(Y13)
	VMOVSS X1, (R8)
	ADDQ CX, R8
	HSUMHI(Z13)
	VMOVSS X1, (R8)
	ADDQ $4, BX
	DECQ R13
	JMP p8row
p8end:
	VZEROUPPER
	RET
