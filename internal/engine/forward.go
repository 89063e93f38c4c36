package engine

import (
	"math"

	"github.com/llmo/llmo/internal/tensor"
)

// ropeTable holds cos/sin of every (position, pair) as ggml computes them:
// theta starts at pos*freq_scale and is multiplied by base^(-2/d) in float32
// from one pair to the next.
type ropeTable struct {
	half     int
	cos, sin []float32 // [pos*half + i]
}

func newRopeTable(hp hparams, ctx int) ropeTable {
	half := hp.ropeDim / 2
	t := ropeTable{half: half, cos: make([]float32, ctx*half), sin: make([]float32, ctx*half)}
	// powf(freq_base, -2.0f/n_dims), the exponent in float32 as in ggml.
	scale := float32(math.Pow(float64(hp.ropeBase), float64(float32(-2)/float32(hp.ropeDim))))
	for p := range ctx {
		theta := float32(p) * hp.ropeFreqScale
		for i := range half {
			t.cos[p*half+i] = float32(math.Cos(float64(theta)))
			t.sin[p*half+i] = float32(math.Sin(float64(theta)))
			theta *= scale
		}
	}
	return t
}

// apply rotates the heads of v (n heads of headDim) at position pos. The
// products are fused as a C compiler contracts ggml's x0*cos - x1*sin and
// x0*sin + x1*cos: fma(x0, cos, -(x1*sin)) and fma(x0, sin, x1*cos).
func (t *ropeTable) apply(v []float32, n, headDim, pos int, neox bool) {
	c := t.cos[pos*t.half : (pos+1)*t.half]
	s := t.sin[pos*t.half : (pos+1)*t.half]
	for h := range n {
		x := v[h*headDim : (h+1)*headDim]
		if neox {
			for i := range t.half {
				x0, x1 := x[i], x[i+t.half]
				x[i] = tensor.FMA32(x0, c[i], -(x1 * s[i]))
				x[i+t.half] = tensor.FMA32(x0, s[i], x1*c[i])
			}
			continue
		}
		for i := range t.half {
			x0, x1 := x[2*i], x[2*i+1]
			x[2*i] = tensor.FMA32(x0, c[i], -(x1 * s[i]))
			x[2*i+1] = tensor.FMA32(x0, s[i], x1*c[i])
		}
	}
}

// batch is the tokens of one forward step: each at a KV slot and position.
// Tokens of one slot appear in position order (a prefill chunk).
type batch struct {
	tok, slot, pos []int
	logits         []bool // this token's logits are wanted
	n              int
	nLogits        int
}

func newBatch(maxT int) batch {
	return batch{tok: make([]int, maxT), slot: make([]int, maxT), pos: make([]int, maxT), logits: make([]bool, maxT)}
}

func (b *batch) reset() { b.n, b.nLogits = 0, 0 }

func (b *batch) add(tok, slot, pos int, logits bool) {
	b.tok[b.n], b.slot[b.n], b.pos[b.n], b.logits[b.n] = tok, slot, pos, logits
	b.n++
	if logits {
		b.nLogits++
	}
}

// runner owns a KV cache and every scratch buffer of the forward pass,
// allocated once so that a step allocates nothing.
type runner struct {
	m      *Model
	pool   *tensor.Pool
	hp     hparams
	slots  int
	ctxLen int
	maxT   int
	b      batch

	// The KV cache holds IEEE half values, as llama.cpp's default F16
	// cache does: half the memory and bandwidth of float32, and the
	// roundings a llama.cpp reference makes.
	kc, vc []uint16 // [layer][slot][pos][kvDim]

	x      []float32 // residual stream, maxT*dim
	in     *tensor.Input
	attIn  *tensor.Input
	ffnIn  *tensor.Input
	outIn  *tensor.Input
	q      []float32
	k, v   []float32
	tmp    []float32
	gate   []float32
	up     []float32
	logits []float32 // [logit row][vocab], rows in batch order of wanted tokens
	hidden []float32 // final-norm hidden states of every token (forward(true))

	jobs [3]tensor.Job
	mm   tensor.MatMul
	att  attnTask
}

func newRunner(m *Model, slots, ctxLen, maxT, maxLogits int) *runner {
	hp := m.hp
	r := &runner{m: m, pool: m.pool, hp: hp, slots: slots, ctxLen: ctxLen, maxT: maxT, b: newBatch(maxT)}
	kv := hp.layers * slots * ctxLen * hp.kvDim()
	r.kc, r.vc = make([]uint16, kv), make([]uint16, kv)
	r.x = make([]float32, maxT*hp.dim)
	r.in = tensor.NewInput(maxT, hp.dim)
	r.attIn = tensor.NewInput(maxT, hp.qDim())
	r.ffnIn = tensor.NewInput(maxT, hp.ffn)
	r.outIn = tensor.NewInput(max(maxLogits, 1), hp.dim)
	r.q = make([]float32, maxT*hp.qDim())
	r.k = make([]float32, maxT*hp.kvDim())
	r.v = make([]float32, maxT*hp.kvDim())
	r.tmp = make([]float32, maxT*hp.dim)
	r.gate = make([]float32, maxT*hp.ffn)
	r.up = make([]float32, maxT*hp.ffn)
	r.logits = make([]float32, max(maxLogits, 1)*hp.vocab)
	r.att = attnTask{r: r, scratch: make([][]uint16, m.pool.Threads()), scores: make([][]float32, m.pool.Threads())}
	for i := range r.att.scratch {
		r.att.scratch[i] = make([]uint16, 2*hp.headDim)
		r.att.scores[i] = make([]float32, ctxLen)
	}
	return r
}

func (r *runner) kvOff(layer, slot, pos int) int {
	return ((layer*r.slots+slot)*r.ctxLen + pos) * r.hp.kvDim()
}

// matmul runs up to three products of one input in one pool dispatch.
func (r *runner) matmul(jobs ...tensor.Job) {
	n := copy(r.jobs[:], jobs)
	r.mm.Jobs = r.jobs[:n]
	r.mm.Compute(r.pool)
}

// rmsnorm writes x*w/rms(x) for each of n vectors, as ggml's rms_norm then
// mul: the mean square summed in float64, the scale in float32.
func rmsnorm(dst, x, w []float32, n, dim int, eps float32) {
	for t := range n {
		xs := x[t*dim : (t+1)*dim]
		d := dst[t*dim : (t+1)*dim]
		var sum float64
		for _, v := range xs {
			sum += float64(v * v)
		}
		mean := float32(sum / float64(dim))
		scale := 1 / float32(math.Sqrt(float64(mean+eps)))
		for i, v := range xs {
			d[i] = v * scale * w[i]
		}
	}
}

// forward runs the batch through the model. Logits of the tokens marked in
// the batch land in r.logits in batch order; with hidden, the final-norm
// hidden states of all tokens land in r.hidden.
func (r *runner) forward(hidden bool) {
	m, hp, b := r.m, r.hp, &r.b
	T := b.n
	dim, kvDim, qDim := hp.dim, hp.kvDim(), hp.qDim()
	for t := range T {
		m.embd.Row(r.x[t*dim:(t+1)*dim], b.tok[t])
	}
	for li := range m.layers {
		l := &m.layers[li]
		rmsnorm(r.in.X, r.x, l.attnNorm, T, dim, hp.eps)
		r.in.Set(T)
		r.matmul(
			tensor.Job{W: l.wq, In: r.in, Out: r.q, Bias: l.bq},
			tensor.Job{W: l.wk, In: r.in, Out: r.k, Bias: l.bk},
			tensor.Job{W: l.wv, In: r.in, Out: r.v, Bias: l.bv},
		)
		for t := range T {
			m.rope.apply(r.q[t*qDim:(t+1)*qDim], hp.heads, hp.headDim, b.pos[t], m.arch.RopeNeoX)
			m.rope.apply(r.k[t*kvDim:(t+1)*kvDim], hp.kvHeads, hp.headDim, b.pos[t], m.arch.RopeNeoX)
			o := r.kvOff(li, b.slot[t], b.pos[t])
			tensor.ToHalf(r.kc[o:o+kvDim], r.k[t*kvDim:(t+1)*kvDim])
			tensor.ToHalf(r.vc[o:o+kvDim], r.v[t*kvDim:(t+1)*kvDim])
		}
		r.att.layer = li
		r.att.total = T * hp.heads
		if (b.pos[T-1]+1)*hp.heads*hp.headDim*T > 1<<14 {
			r.pool.Do(&r.att)
		} else {
			r.pool.DoSerial(&r.att)
		}
		r.attIn.Set(T)
		r.matmul(tensor.Job{W: l.wo, In: r.attIn, Out: r.tmp})
		addTo(r.x[:T*dim], r.tmp[:T*dim])

		rmsnorm(r.in.X, r.x, l.ffnNorm, T, dim, hp.eps)
		r.in.Set(T)
		r.matmul(
			tensor.Job{W: l.gate, In: r.in, Out: r.gate},
			tensor.Job{W: l.up, In: r.in, Out: r.up},
		)
		swiglu(r.ffnIn.X[:T*hp.ffn], r.gate[:T*hp.ffn], r.up[:T*hp.ffn])
		r.ffnIn.Set(T)
		r.matmul(tensor.Job{W: l.down, In: r.ffnIn, Out: r.tmp})
		addTo(r.x[:T*dim], r.tmp[:T*dim])
	}
	if hidden {
		if len(r.hidden) < T*dim {
			r.hidden = make([]float32, r.maxT*dim)
		}
		rmsnorm(r.hidden, r.x, m.outNorm, T, dim, hp.eps)
	}
	if b.nLogits == 0 {
		return
	}
	j := 0
	for t := range T {
		if b.logits[t] {
			rmsnorm(r.outIn.X[j*dim:(j+1)*dim], r.x[t*dim:(t+1)*dim], m.outNorm, 1, dim, hp.eps)
			j++
		}
	}
	r.outIn.Set(j)
	r.matmul(tensor.Job{W: m.output, In: r.outIn, Out: r.logits})
}

func addTo(x, y []float32) {
	y = y[:len(x)]
	for i := range x {
		x[i] += y[i]
	}
}

// swiglu writes silu(g)*u.
func swiglu(dst, g, u []float32) {
	u = u[:len(g)]
	dst = dst[:len(g)]
	for i, v := range g {
		dst[i] = v / (1 + float32(math.Exp(float64(-v)))) * u[i]
	}
}

// attnTask computes attention for (token, head) pairs of one layer, split
// across the pool: each token attends to positions 0..pos of its slot.
type attnTask struct {
	r       *runner
	layer   int
	total   int
	scratch [][]uint16  // per worker: q and the accumulator, headDim each
	scores  [][]float32 // per worker: one query's scores, ctxLen
}

// attnChunk is how many (token, head) pairs one chunk of attention covers.
const attnChunk = 4

// Chunks implements tensor.Task.
func (a *attnTask) Chunks() int { return (a.total + attnChunk - 1) / attnChunk }

// RunChunk implements tensor.Task.
func (a *attnTask) RunChunk(c, worker int) {
	r := a.r
	hp := r.hp
	hd, kvDim, qDim := hp.headDim, hp.kvDim(), hp.qDim()
	group := hp.heads / hp.kvHeads
	// 1/sqrtf(head_dim) in float32, as llama.cpp computes kq_scale.
	scale := 1 / float32(math.Sqrt(float64(float32(hd))))
	lo, hi := c*attnChunk, min((c+1)*attnChunk, a.total)
	q16, acc := a.scratch[worker][:hd], a.scratch[worker][hd:2*hd]
	for i := lo; i < hi; i++ {
		t, h := i/hp.heads, i%hp.heads
		pos, slot := r.b.pos[t], r.b.slot[t]
		tensor.ToHalf(q16, r.q[t*qDim+h*hd:t*qDim+(h+1)*hd])
		base := r.kvOff(a.layer, slot, 0) + (h/group)*hd
		out := r.attIn.X[t*qDim+h*hd : t*qDim+(h+1)*hd]
		attend(out, q16, acc, r.kc[base:], r.vc[base:], kvDim, pos, scale, a.scores[worker])
	}
}

// attend computes one head's attention output for one token as ggml's CPU
// flash attention does: q (in half) against the keys at positions 0..pos
// (k and v start at position 0 of this head, kvDim apart), an online
// softmax whose running sum is updated by FMA, and the values accumulated
// in half precision (acc, headDim long) before the final division.
func attend(out []float32, q, acc, k, v []uint16, kvDim, pos int, scale float32, scores []float32) {
	hd := len(q)
	clear(acc)
	// The scores first: they are independent, so they compute side by side.
	scores = scores[:pos+1]
	tensor.DotHalfRows(scores, k, kvDim, q)
	m := float32(math.Inf(-1))
	var sum float32
	for p, s := range scores {
		o := p * kvDim
		s *= scale
		ms, vs := float32(1), float32(1)
		if s > m {
			ms = tensor.Expf(m - s)
			m = s
			tensor.ScaleHalf(acc, ms)
		} else {
			vs = tensor.Expf(s - m)
		}
		tensor.MadHalf(acc, v[o:o+hd], vs)
		if ms == 1 {
			sum += vs // = fma(sum, 1, vs): one rounding either way
		} else {
			sum = tensor.FMA32(sum, ms, vs)
		}
	}
	inv := 1 / sum
	for d, h := range acc {
		out[d] = tensor.F16ToF32(h) * inv
	}
}
