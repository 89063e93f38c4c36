package tensor

import "math"

// Input is a batch of T activation vectors of Cols values (row-major in X),
// prepared once for every matrix that reads it: quantized to Q8_0 for Q8
// weights and rounded to float16 for HalfInput weights. Its buffers are
// allocated once, for the largest batch, and reused.
type Input struct {
	T, Cols int
	X       []float32
	q       Q8Blocks
	half    []float32
	hasQ    bool
	hasHalf bool
	// For the VNNI kernels: u = quants XOR 0x80 (unsigned), xe = each
	// block's scale repeated 8 times. Vector t's are at u[t*ePer*4:] and
	// xe[t*ePer:] (ePer = 8 per block, blocks rounded up to even), so one
	// byte stride serves both; an odd last block is followed by zeros.
	u    []int8
	xe   []float32
	xc   []int32 // -128 × each 4-quant lane's sum, laid out as xe
	ePer int
	// For the 8-token VNNI kernel: tokens in pairs, each block's signed
	// quants of the two side by side (64 bytes) in q2, and in ec2 their
	// scales 8 times each (16 float32 bits) then their lane corrections xc
	// (16 int32); pair p at q2[p*nb*64:] and ec2[p*nb*32:].
	q2  []int8
	ec2 []uint32
}

// NewInput allocates an Input for up to maxT vectors of cols values.
func NewInput(maxT, cols int) *Input {
	in := &Input{Cols: cols, X: make([]float32, maxT*cols)}
	if cols%QK == 0 {
		nb := cols / QK
		in.q = Q8Blocks{D: make([]float32, maxT*nb), Qs: make([]int8, maxT*cols)}
		if useVNNI {
			in.ePer = (nb + 1) &^ 1 * 8
			in.u = make([]int8, maxT*in.ePer*4)
			in.xe = make([]float32, maxT*in.ePer+16)
			in.xc = make([]int32, maxT*in.ePer+16)
			if maxT >= 8 {
				in.q2 = make([]int8, maxT/2*nb*64)
				in.ec2 = make([]uint32, maxT/2*nb*32)
			}
		}
	}
	in.half = make([]float32, maxT*cols)
	return in
}

// Set marks the first t vectors of X as the current batch and drops the
// derived forms; call it after writing X.
func (in *Input) Set(t int) {
	in.T = t
	in.hasQ, in.hasHalf = false, false
}

func (in *Input) prepare(m *Matrix) {
	switch {
	case m.Kind == Q8 && !in.hasQ:
		if !useVNNI {
			QuantizeQ8(in.q, in.X[:in.T*in.Cols])
		} else {
			nb := in.Cols / QK
			for t := range in.T {
				e := in.xe[t*in.ePer : (t+1)*in.ePer]
				c := in.xc[t*in.ePer : (t+1)*in.ePer]
				quantizeQ8(Q8Blocks{D: in.q.D[t*nb:], Qs: in.q.Qs[t*in.Cols:]}, in.X[t*in.Cols:(t+1)*in.Cols],
					in.u[t*in.ePer*4:], e, c)
				clear(e[nb*8:])
				clear(c[nb*8:])
			}
			for t := 0; t < in.T&^7; t += 2 { // only the 8-token kernel reads these
				q2 := in.q2[t/2*nb*64 : (t/2+1)*nb*64]
				ec := in.ec2[t/2*nb*32 : (t/2+1)*nb*32]
				for b := range nb {
					for k := range 2 {
						copy(q2[b*64+k*32:b*64+k*32+32], in.q.Qs[(t+k)*in.Cols+b*32:])
						d := math.Float32bits(in.q.D[(t+k)*nb+b])
						for l := range 8 {
							ec[b*32+k*8+l] = d
							ec[b*32+16+k*8+l] = uint32(in.xc[(t+k)*in.ePer+b*8+l])
						}
					}
				}
			}
		}
		in.hasQ = true
	case m.Kind == F32 && m.HalfInput && !in.hasHalf:
		copy(in.half, in.X[:in.T*in.Cols])
		RoundF16(in.half[:in.T*in.Cols])
		in.hasHalf = true
	}
}

// Job is one product Out[t*W.Rows+r] = W[r]·In[t] (+ Bias[r]).
type Job struct {
	W    *Matrix
	In   *Input
	Out  []float32
	Bias []float32
	// OutStride is the distance between output vectors (0 = W.Rows).
	OutStride int
}

// MatMul runs jobs together, splitting all their rows across the pool: one
// wake-up of the workers for, say, the Q, K and V projections. It allocates
// nothing; pass a slice that lives as long as the caller.
type MatMul struct {
	Jobs  []Job
	total int
	chunk int // rows per chunk, a multiple of 4
}

// Compute runs the jobs on p.
func (mm *MatMul) Compute(p *Pool) {
	mm.total = 0
	work := 0
	for i := range mm.Jobs {
		j := &mm.Jobs[i]
		j.In.prepare(j.W)
		mm.total += j.W.Rows
		work += j.W.Rows * j.W.Cols * j.In.T
	}
	if work < 1<<15 || p.Threads() == 1 {
		mm.chunk = mm.total
		p.DoSerial(mm)
		return
	}
	// About four chunks per thread: enough to rebalance when a thread is
	// slow, few enough that claiming costs nothing.
	mm.chunk = max(16, (mm.total/(4*p.Threads())+3)&^3)
	p.Do(mm)
}

// Chunks implements Task.
func (mm *MatMul) Chunks() int { return (mm.total + mm.chunk - 1) / mm.chunk }

// RunChunk implements Task: chunk c computes rows [c*chunk, (c+1)*chunk) of
// the concatenated jobs.
func (mm *MatMul) RunChunk(c, _ int) {
	lo, hi := c*mm.chunk, min((c+1)*mm.chunk, mm.total)
	base := 0
	for i := range mm.Jobs {
		j := &mm.Jobs[i]
		r0, r1 := max(lo-base, 0), min(hi-base, j.W.Rows)
		if r0 < r1 {
			j.rows(r0, r1)
		}
		base += j.W.Rows
		if base >= hi {
			break
		}
	}
}

func (j *Job) rows(r0, r1 int) {
	w, in := j.W, j.In
	stride := j.OutStride
	if stride == 0 {
		stride = w.Rows
	}
	cols := w.Cols
	switch w.Kind {
	case Q8:
		nb := cols / QK
		if useVNNI {
			j.rowsVNNI(r0, r1)
			return
		}
		var o4 [4]float32
		bias := func(r int) float32 {
			if j.Bias == nil {
				return 0
			}
			return j.Bias[r]
		}
		t := 0
		if in.T >= 4 {
			// Four activation vectors per pass share each weight block load.
			for r := r0; r < r1; r++ {
				wd := w.Q8.D[r*nb : (r+1)*nb]
				wq := w.Q8.Qs[r*cols : (r+1)*cols]
				b := bias(r)
				for t = 0; t+4 <= in.T; t += 4 {
					dotQ8x4(wd, wq, in.q.D[t*nb:], in.q.Qs[t*cols:], nb, &o4)
					for i, v := range o4 {
						j.Out[(t+i)*stride+r] = v + b
					}
				}
			}
		}
		for ; t < in.T; t++ {
			// Four weight rows per pass: independent FMA chains.
			xd := in.q.D[t*nb : (t+1)*nb]
			xq := in.q.Qs[t*cols : (t+1)*cols]
			out := j.Out[t*stride:]
			r := r0
			for ; r+4 <= r1; r += 4 {
				dotQ8r4(w.Q8.D[r*nb:(r+4)*nb], w.Q8.Qs[r*cols:(r+4)*cols], xd, xq, &o4)
				for i, v := range o4 {
					out[r+i] = v + bias(r+i)
				}
			}
			for ; r < r1; r++ {
				out[r] = dotQ8(w.Q8.D[r*nb:(r+1)*nb], w.Q8.Qs[r*cols:(r+1)*cols], xd, xq) + bias(r)
			}
		}
	case F32:
		x := in.X
		if w.HalfInput {
			x = in.half
		}
		for r := r0; r < r1; r++ {
			wr := w.F32[r*cols : (r+1)*cols]
			var bias float32
			if j.Bias != nil {
				bias = j.Bias[r]
			}
			for t := range in.T {
				j.Out[t*stride+r] = dotF32(wr, x[t*cols:(t+1)*cols]) + bias
			}
		}
	}
}

// addBias adds Bias[r] to out[r] for r0 <= r < r1 (nothing without a bias).
func (j *Job) addBias(out []float32, r0, r1 int) {
	if j.Bias == nil {
		return
	}
	out = out[:r1]
	for r := r0; r < r1; r++ {
		out[r] += j.Bias[r]
	}
}

// rowsVNNI is rows for Q8 weights with the AVX-512 VNNI kernels.
func (j *Job) rowsVNNI(r0, r1 int) {
	w, in := j.W, j.In
	stride := j.OutStride
	if stride == 0 {
		stride = w.Rows
	}
	cols := w.Cols
	nb := cols / QK
	vs := in.ePer * 4 // bytes between vectors in u and xe
	_, _ = w.Q8.D[r1*nb-1], w.Q8.Qs[r1*cols-1]
	_, _ = in.xe[in.T*in.ePer-1], in.u[in.T*vs-1]
	var o4 [4]float32
	t := 0
	// Eight activation vectors per pass share each weight load, over the
	// whole row range in one call; then four; then one at a time.
	for ; t+8 <= in.T; t += 8 {
		_ = j.Out[(t+7)*stride+r1-1]
		dotQ8x8VNNI(&w.Q8.D[r0*nb], &w.Q8.Qs[r0*cols], &in.ec2[t/2*nb*32], &in.q2[t/2*nb*64], nb, nb*64, r1-r0, &j.Out[t*stride+r0], stride)
		for i := t; i < t+8; i++ {
			j.addBias(j.Out[i*stride:], r0, r1)
		}
	}
	if in.T-t >= 4 {
		for r := r0; r < r1; r++ {
			var b float32
			if j.Bias != nil {
				b = j.Bias[r]
			}
			dotQ8x4VNNI(&w.Q8.D[r*nb], &w.Q8.Qs[r*cols], &in.xe[t*in.ePer], &in.u[t*vs], nb, vs, vs, &o4)
			for i, v := range o4 {
				j.Out[(t+i)*stride+r] = v + b
			}
		}
		t += 4
	}
	for ; t < in.T; t++ {
		xe, xu := &in.xe[t*in.ePer], &in.u[t*vs]
		out := j.Out[t*stride:]
		r := r0
		if n4 := (r1 - r0) &^ 3; n4 > 0 {
			_ = out[r0+n4-1]
			dotQ8r4VNNI(&w.Q8.D[r0*nb], &w.Q8.Qs[r0*cols], xe, &in.q.Qs[t*cols], &in.xc[t*in.ePer], nb, n4, &out[r0])
			r = r0 + n4
			j.addBias(out, r0, r)
		}
		for ; r < r1; r++ {
			v := dotQ8VNNI(&w.Q8.D[r*nb], &w.Q8.Qs[r*cols], xe, xu, nb)
			if j.Bias != nil {
				v += j.Bias[r]
			}
			out[r] = v
		}
	}
}
