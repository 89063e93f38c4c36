package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/gguf"
	"github.com/llmo/llmo/internal/tensor"
	"github.com/llmo/llmo/internal/tokenizer"
)

// DefaultCtxLen caps the context length per KV slot when Options.CtxLen is
// 0: the model's own length, at most this.
const DefaultCtxLen = 4096

type layer struct {
	attnNorm, ffnNorm []float32
	wq, wk, wv, wo    *tensor.Matrix
	gate, up, down    *tensor.Matrix
	bq, bk, bv        []float32
}

// Model is a loaded model: weights, tokenizer and the worker pool its
// products run on. It is safe for concurrent use; Close it after every
// Scheduler using it has stopped.
type Model struct {
	file    *gguf.File
	arch    *Arch
	hp      hparams
	opts    Options
	tok     *tokenizer.Tokenizer
	embd    *tensor.Matrix
	outNorm []float32
	output  *tensor.Matrix
	layers  []layer
	pool    *tensor.Pool
	info    Info
	rope    ropeTable

	closeOnce sync.Once
}

// Load opens a GGUF model file. An unknown architecture is an error naming
// it; a malformed file is an errs.Invalid error, never a panic.
func Load(path string, opts Options) (m *Model, err error) {
	defer errs.Wrapf(&err, "load %s", filepath.Base(path))
	f, err := gguf.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errs.Wrap(errs.NotFound, err, "model file not found")
		}
		return nil, errs.Wrap(errs.Invalid, err, "not a readable GGUF file")
	}
	m, err = newModel(f, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	m.info.Name = modelName(f, path)
	return m, nil
}

func modelName(f *gguf.File, path string) string {
	if n, ok := f.String("general.name"); ok && n != "" {
		return n
	}
	return strings.TrimSuffix(filepath.Base(path), ".gguf")
}

func newModel(f *gguf.File, opts Options) (*Model, error) {
	arch, err := lookupArch(f.Arch())
	if err != nil {
		return nil, err
	}
	hp, err := readHparams(f, arch.Name)
	if err != nil {
		return nil, err
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 8
	}
	if opts.MaxBatch > 256 {
		return nil, errs.Param("max_batch", "max batch %d is over 256", opts.MaxBatch)
	}
	switch {
	case opts.CtxLen <= 0:
		// Real models declare contexts of 128K positions; a KV cache that
		// size per slot does not fit in memory, so the default is capped
		// (as llama.cpp and Ollama do) and a caller may ask for more.
		opts.CtxLen = min(hp.ctxLen, DefaultCtxLen)
	case opts.CtxLen > hp.ctxLen:
		opts.CtxLen = hp.ctxLen
	}
	if opts.Threads <= 0 {
		opts.Threads = runtime.GOMAXPROCS(0)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, err, "model tokenizer: %v", err)
	}
	m := &Model{file: f, arch: arch, hp: hp, opts: opts, tok: tok}
	ld := &loader{f: f, int8: opts.Int8}
	m.embd = ld.matrix("token_embd.weight", hp.dim, -1)
	if ld.err != nil {
		return nil, ld.err
	}
	hp.vocab = m.embd.Rows
	m.hp.vocab = hp.vocab
	m.outNorm = ld.vector("output_norm.weight", hp.dim)
	if _, ok := f.Tensor("output.weight"); ok {
		m.output = ld.matrix("output.weight", hp.dim, hp.vocab)
	} else {
		m.output = m.embd // tied embeddings, as in stories260K
	}
	m.layers = make([]layer, hp.layers)
	for i := range m.layers {
		l := &m.layers[i]
		p := fmt.Sprintf("blk.%d.", i)
		l.attnNorm = ld.vector(p+"attn_norm.weight", hp.dim)
		l.ffnNorm = ld.vector(p+"ffn_norm.weight", hp.dim)
		l.wq = ld.matrix(p+"attn_q.weight", hp.dim, hp.qDim())
		l.wk = ld.matrix(p+"attn_k.weight", hp.dim, hp.kvDim())
		l.wv = ld.matrix(p+"attn_v.weight", hp.dim, hp.kvDim())
		l.wo = ld.matrix(p+"attn_output.weight", hp.qDim(), hp.dim)
		l.gate = ld.matrix(p+"ffn_gate.weight", hp.dim, hp.ffn)
		l.up = ld.matrix(p+"ffn_up.weight", hp.dim, hp.ffn)
		l.down = ld.matrix(p+"ffn_down.weight", hp.ffn, hp.dim)
		if arch.QKVBias {
			l.bq = ld.vector(p+"attn_q.bias", hp.qDim())
			l.bk = ld.vector(p+"attn_k.bias", hp.kvDim())
			l.bv = ld.vector(p+"attn_v.bias", hp.kvDim())
		}
		if ld.err != nil {
			return nil, ld.err
		}
	}
	if tok.VocabSize() > hp.vocab {
		return nil, errs.E(errs.Invalid, "tokenizer has %d tokens but the embedding only %d rows", tok.VocabSize(), hp.vocab)
	}
	m.rope = newRopeTable(hp, opts.CtxLen)
	m.pool = tensor.NewPool(opts.Threads)

	// Parameters as stored in the file (a tied output matrix is stored, and
	// counted, once).
	var params int64
	for _, t := range f.Tensors {
		params += t.NumElements()
	}
	tmpl, _ := f.String("tokenizer.chat_template")
	m.info = Info{
		Arch:           arch.Name,
		Quant:          quantName(f, opts.Int8),
		Params:         params,
		CtxLen:         opts.CtxLen,
		VocabSize:      hp.vocab,
		EmbedDim:       hp.dim,
		ChatTemplate:   tmpl,
		BOS:            tok.BOS(),
		EOS:            tok.EOS(),
		MemoryBytes:    ld.bytes + kvBytes(hp, opts),
		Int8SavedBytes: ld.saved,
	}
	return m, nil
}

// kvBytes is the KV cache: keys and values, 2 bytes (half) each.
func kvBytes(hp hparams, o Options) int64 {
	return 2 * 2 * int64(hp.layers) * int64(o.MaxBatch) * int64(o.CtxLen) * int64(hp.kvDim())
}

// quantName names the weights' dominant type, as `ollama show` does.
func quantName(f *gguf.File, int8 bool) string {
	counts := map[gguf.Type]int64{}
	for _, t := range f.Tensors {
		if len(t.Dims) >= 2 {
			counts[t.Type] += t.NumElements()
		}
	}
	var best gguf.Type
	var n int64 = -1
	for t, c := range counts {
		if c > n || (c == n && t < best) {
			best, n = t, c
		}
	}
	name := best.String()
	if int8 && (best == gguf.TypeF32 || best == gguf.TypeF16 || best == gguf.TypeBF16) {
		return "Q8_0"
	}
	return name
}

// Close stops the worker pool and unmaps the file.
func (m *Model) Close() error {
	var err error
	m.closeOnce.Do(func() {
		m.pool.Close()
		err = m.file.Close()
	})
	return err
}

// Info describes the model.
func (m *Model) Info() Info { return m.info }

// Tokenizer is the model's tokenizer.
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// Embed returns the mean-pooled, L2-normalised final hidden states (after
// the output norm) of ids.
func (m *Model) Embed(ctx context.Context, ids []int) ([]float32, error) {
	if len(ids) == 0 {
		return nil, errs.Param("input", "input is empty")
	}
	if len(ids) > m.opts.CtxLen {
		return nil, errs.Param("input", "input has %d tokens, over the context length %d", len(ids), m.opts.CtxLen)
	}
	for _, id := range ids {
		if id < 0 || id >= m.hp.vocab {
			return nil, errs.Param("input", "token id %d is out of range", id)
		}
	}
	maxT := min(len(ids), 256)
	r := newRunner(m, 1, len(ids), maxT, 1)
	r.pool = m.pool
	sum := make([]float64, m.hp.dim)
	for start := 0; start < len(ids); start += maxT {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(maxT, len(ids)-start)
		r.b.reset()
		for i := range n {
			r.b.add(ids[start+i], 0, start+i, false)
		}
		r.forward(true)
		for i := range n {
			h := r.hidden[i*m.hp.dim : (i+1)*m.hp.dim]
			for j, v := range h {
				sum[j] += float64(v)
			}
		}
	}
	out := make([]float32, m.hp.dim)
	var norm float64
	for j := range sum {
		sum[j] /= float64(len(ids))
		norm += sum[j] * sum[j]
	}
	if norm == 0 {
		return out, nil
	}
	inv := 1 / math.Sqrt(norm)
	for j := range out {
		out[j] = float32(sum[j] * inv)
	}
	return out, nil
}

// loader converts GGUF tensors to tensor.Matrix values, remembering the
// first error so that the caller checks once per block.
type loader struct {
	f     *gguf.File
	int8  bool
	err   error
	bytes int64 // weight bytes held in memory
	saved int64 // bytes saved by int8
}

func (ld *loader) tensor(name string) *gguf.Tensor {
	if ld.err != nil {
		return nil
	}
	t, ok := ld.f.Tensor(name)
	if !ok {
		ld.err = errs.E(errs.Invalid, "model lacks tensor %s", name)
		return nil
	}
	return t
}

// floats returns the tensor's n values as float32: a view of the mapped
// file for aligned F32 data, a converted copy otherwise.
func (ld *loader) floats(t *gguf.Tensor, n int) []float32 {
	need, err := t.Type.RowBytes(n)
	if err != nil || len(t.Data) < need {
		ld.err = errs.E(errs.Invalid, "tensor %s: %d bytes of data for %d %s values", t.Name, len(t.Data), n, t.Type)
		return nil
	}
	switch t.Type {
	case gguf.TypeF32:
		if uintptr(unsafe.Pointer(unsafe.SliceData(t.Data)))%4 == 0 {
			return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(t.Data))), n)
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
		return out
	case gguf.TypeF16:
		out := make([]float32, n)
		for i := range out {
			out[i] = tensor.F16ToF32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
		return out
	case gguf.TypeBF16:
		out := make([]float32, n)
		for i := range out {
			out[i] = tensor.BF16ToF32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
		return out
	case gguf.TypeQ4_0, gguf.TypeQ4_K, gguf.TypeQ6_K:
		out := make([]float32, n)
		if err := tensor.Dequantize(out, t.Data[:need], uint32(t.Type)); err != nil {
			ld.err = errs.Wrap(errs.Invalid, err, "tensor %s", t.Name)
			return nil
		}
		return out
	}
	ld.err = errs.E(errs.Invalid, "tensor %s has unsupported type %s", t.Name, t.Type)
	return nil
}

// vector loads a 1-D tensor of n values.
func (ld *loader) vector(name string, n int) []float32 {
	t := ld.tensor(name)
	if t == nil {
		return nil
	}
	if t.NumElements() != int64(n) {
		ld.err = shapeErr(name, t.Dims, n)
		return nil
	}
	v := ld.floats(t, n)
	ld.bytes += int64(len(v)) * 4
	return v
}

// matrix loads a 2-D weight of rows x cols (GGUF dims [cols, rows]); rows
// < 0 accepts any row count.
func (ld *loader) matrix(name string, cols, rows int) *tensor.Matrix {
	t := ld.tensor(name)
	if t == nil {
		return nil
	}
	dims := t.Dims
	for len(dims) > 2 && dims[len(dims)-1] == 1 {
		dims = dims[:len(dims)-1]
	}
	if len(dims) != 2 || dims[0] != cols || (rows >= 0 && dims[1] != rows) || dims[1] <= 0 {
		ld.err = shapeErr(name, t.Dims, cols, rows)
		return nil
	}
	rows = dims[1]
	n := rows * cols
	if t.Type == gguf.TypeQ8_0 {
		need, err := t.Type.RowBytes(n)
		if err != nil || len(t.Data) < need || cols%tensor.QK != 0 {
			ld.err = errs.E(errs.Invalid, "tensor %s: bad Q8_0 data", name)
			return nil
		}
		m := &tensor.Matrix{Kind: tensor.Q8, Rows: rows, Cols: cols,
			Q8: tensor.Q8Blocks{D: make([]float32, n/tensor.QK), Qs: make([]int8, n)}}
		tensor.ParseQ8_0(m.Q8, t.Data[:need])
		ld.bytes += m.Bytes()
		return m
	}
	v := ld.floats(t, n)
	if v == nil {
		return nil
	}
	m := tensor.NewF32(rows, cols, v)
	// llama.cpp multiplies F16 weights with F16-rounded activations; doing
	// the same keeps greedy output closest to it.
	m.HalfInput = t.Type == gguf.TypeF16
	// Q4_0/Q4_K/Q6_K weights are widened at load and re-quantized to Q8_0 so
	// that they run on the integer kernels (a little more memory than the
	// file, far less than F32).
	requant := t.Type == gguf.TypeQ4_0 || t.Type == gguf.TypeQ4_K || t.Type == gguf.TypeQ6_K
	if (ld.int8 || requant) && cols%tensor.QK == 0 {
		q, err := tensor.QuantizeMatrix(m)
		if err == nil {
			if !requant {
				ld.saved += m.Bytes() - q.Bytes()
			}
			m = q
		}
	}
	ld.bytes += m.Bytes()
	return m
}
