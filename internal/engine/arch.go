package engine

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/gguf"
)

// Arch describes how an architecture differs from the llama block that the
// forward pass implements: which RoPE layout it uses and whether the Q/K/V
// projections carry biases. Architectures register themselves in init.
type Arch struct {
	Name     string
	RopeNeoX bool // rotate (i, i+d/2) pairs; false rotates adjacent (2i, 2i+1) pairs
	QKVBias  bool // attn_{q,k,v}.bias tensors are required
}

var (
	archMu sync.RWMutex
	archs  = map[string]*Arch{}
)

// RegisterArch makes an architecture loadable by its general.architecture.
func RegisterArch(a *Arch) {
	archMu.Lock()
	defer archMu.Unlock()
	if _, dup := archs[a.Name]; dup {
		panic("engine: architecture registered twice: " + a.Name)
	}
	archs[a.Name] = a
}

func lookupArch(name string) (*Arch, error) {
	archMu.RLock()
	defer archMu.RUnlock()
	if a, ok := archs[name]; ok {
		return a, nil
	}
	known := make([]string, 0, len(archs))
	for n := range archs {
		known = append(known, n)
	}
	sort.Strings(known)
	if name == "" {
		return nil, errs.E(errs.Invalid, "model has no general.architecture (supported: %s)", strings.Join(known, ", "))
	}
	return nil, errs.E(errs.Invalid, "unsupported model architecture %q (supported: %s)", name, strings.Join(known, ", "))
}

func init() {
	// llama: llama.cpp's "normal" RoPE; GGUF converters permute Q/K so that
	// adjacent pairs rotate (the layout of Meta's original checkpoints).
	RegisterArch(&Arch{Name: "llama"})
	// qwen2: NeoX RoPE and biases on the Q/K/V projections.
	RegisterArch(&Arch{Name: "qwen2", RopeNeoX: true, QKVBias: true})
}

// hparams are the shape and constants of a model.
type hparams struct {
	dim, layers, heads, kvHeads, headDim, ffn, vocab, ctxLen, ropeDim int
	eps                                                               float32
	ropeBase, ropeFreqScale                                           float32
}

func (h hparams) qDim() int  { return h.heads * h.headDim }
func (h hparams) kvDim() int { return h.kvHeads * h.headDim }

// Limits on values read from the file, so a hostile header cannot make
// the loader allocate absurd buffers before the tensor checks fail.
const (
	maxLayers = 1024
	maxDim    = 1 << 16
	maxHeads  = 1024
	maxCtx    = 1 << 20
)

func readHparams(f *gguf.File, arch string) (hparams, error) {
	var h hparams
	get := func(key string, dst *int, required bool, limit int) error {
		v, ok := f.Uint(arch + "." + key)
		if !ok {
			if required {
				return errs.E(errs.Invalid, "model metadata lacks %s.%s", arch, key)
			}
			return nil
		}
		if v == 0 || v > uint64(limit) {
			return errs.E(errs.Invalid, "model metadata %s.%s = %d is out of range (1..%d)", arch, key, v, limit)
		}
		*dst = int(v)
		return nil
	}
	for _, g := range []struct {
		key      string
		dst      *int
		required bool
		limit    int
	}{
		{"embedding_length", &h.dim, true, maxDim},
		{"block_count", &h.layers, true, maxLayers},
		{"feed_forward_length", &h.ffn, true, 1 << 20},
		{"attention.head_count", &h.heads, true, maxHeads},
		{"attention.head_count_kv", &h.kvHeads, false, maxHeads},
		{"attention.key_length", &h.headDim, false, maxDim},
		{"context_length", &h.ctxLen, false, maxCtx},
		{"rope.dimension_count", &h.ropeDim, false, maxDim},
	} {
		if err := get(g.key, g.dst, g.required, g.limit); err != nil {
			return h, err
		}
	}
	if h.kvHeads == 0 {
		h.kvHeads = h.heads
	}
	if h.headDim == 0 {
		if h.dim%h.heads != 0 {
			return h, errs.E(errs.Invalid, "embedding length %d is not a multiple of %d heads", h.dim, h.heads)
		}
		h.headDim = h.dim / h.heads
	}
	if h.heads%h.kvHeads != 0 {
		return h, errs.E(errs.Invalid, "%d attention heads are not a multiple of %d KV heads", h.heads, h.kvHeads)
	}
	if h.ropeDim == 0 {
		h.ropeDim = h.headDim
	}
	if h.ropeDim > h.headDim || h.ropeDim%2 != 0 {
		return h, errs.E(errs.Invalid, "rope dimension %d does not fit head dimension %d", h.ropeDim, h.headDim)
	}
	if h.ctxLen == 0 {
		h.ctxLen = 2048
	}
	h.eps = 1e-5
	if v, ok := f.Float(arch + ".attention.layer_norm_rms_epsilon"); ok && v > 0 && v < 1 {
		h.eps = float32(v)
	}
	h.ropeBase = 10000
	if v, ok := f.Float(arch + ".rope.freq_base"); ok && v > 0 {
		h.ropeBase = float32(v)
	}
	h.ropeFreqScale = 1
	typ, _ := f.String(arch + ".rope.scaling.type")
	factor, hasFactor := f.Float(arch + ".rope.scaling.factor")
	switch {
	case typ == "linear" || (typ == "" && hasFactor):
		if hasFactor && factor > 0 {
			h.ropeFreqScale = float32(1 / factor)
		}
	case typ == "" || typ == "none":
	default:
		return h, errs.E(errs.Invalid, "unsupported rope scaling type %q", typ)
	}
	if v, ok := f.Float(arch + ".rope.scale_linear"); ok && v > 0 { // older key
		h.ropeFreqScale = float32(1 / v)
	}
	return h, nil
}

func shapeErr(name string, got []int, want ...int) error {
	return errs.E(errs.Invalid, "tensor %s has shape %v, want %v", name, got, fmt.Sprint(want))
}
