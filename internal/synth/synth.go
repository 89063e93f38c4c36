// Package synth makes random-weight GGUF models of any llama shape, for
// benchmarks and tests: the compute of a real model without shipping one.
// The weights are seeded normals scaled like ../shared/models/synth-15m-*
// (embeddings N(0,1), attention and FFN-in N(0,0.08), FFN-out N(0,0.02),
// output N(0,0.2), norms 1+N(0,0.1)), so the logits are peaked enough for
// greedy decoding to be stable.
package synth

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/llmo/llmo/internal/gguf"
	"github.com/llmo/llmo/internal/tensor"
)

// Shape is a llama model's hyperparameters.
type Shape struct {
	Dim, Layers, Heads, KVHeads, FFN, Vocab, Ctx int
}

// Shapes are the named shapes: stories260K, stories15M and stories110M.
var Shapes = map[string]Shape{
	"260k": {Dim: 64, Layers: 5, Heads: 8, KVHeads: 4, FFN: 172, Vocab: 512, Ctx: 512},
	"15m":  {Dim: 288, Layers: 6, Heads: 6, KVHeads: 6, FFN: 768, Vocab: 32000, Ctx: 256},
	"110m": {Dim: 768, Layers: 12, Heads: 12, KVHeads: 12, FFN: 2048, Vocab: 32000, Ctx: 1024},
}

// Params counts the shape's weights (with a separate output matrix).
func (s Shape) Params() int64 {
	hd := s.Dim / s.Heads
	per := 2*s.Dim + s.Dim*s.Dim*2 + 2*s.Dim*s.KVHeads*hd + 3*s.Dim*s.FFN
	return int64(s.Layers*per + 2*s.Vocab*s.Dim + s.Dim)
}

func (s Shape) validate() error {
	if s.Dim <= 0 || s.Layers <= 0 || s.Heads <= 0 || s.FFN <= 0 || s.Vocab <= 0 || s.Ctx <= 0 {
		return fmt.Errorf("synth: every dimension must be positive: %+v", s)
	}
	if s.KVHeads <= 0 || s.Heads%s.KVHeads != 0 || s.Dim%s.Heads != 0 || (s.Dim/s.Heads)%2 != 0 {
		return fmt.Errorf("synth: heads do not divide the model: %+v", s)
	}
	return nil
}

// Options say how to make a model.
type Options struct {
	Type      gguf.Type // F32, F16 or Q8_0 for the 2-D weights (norms stay F32)
	Seed      uint64
	Tokenizer *gguf.File // copy tokenizer.* metadata from here (nil: a byte-level toy vocabulary)
	Name      string
}

// Build returns a Writer holding a model of shape s.
func Build(s Shape, o Options) (*gguf.Writer, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	switch o.Type {
	case gguf.TypeF32, gguf.TypeF16, gguf.TypeQ8_0:
	default:
		return nil, fmt.Errorf("synth: unsupported weight type %s (want F32, F16 or Q8_0)", o.Type)
	}
	if o.Type == gguf.TypeQ8_0 && (s.Dim%32 != 0 || s.FFN%32 != 0) {
		return nil, fmt.Errorf("synth: Q8_0 needs dim and ffn multiples of 32")
	}
	w := gguf.NewWriter()
	name := o.Name
	if name == "" {
		name = "synth"
	}
	fileType := map[gguf.Type]uint32{gguf.TypeF32: 0, gguf.TypeF16: 1, gguf.TypeQ8_0: 7}[o.Type]
	hd := s.Dim / s.Heads
	w.SetKV("general.architecture", "llama")
	w.SetKV("general.name", name)
	w.SetKV("general.file_type", fileType)
	w.SetKV("general.alignment", uint32(32))
	w.SetKV("llama.context_length", uint32(s.Ctx))
	w.SetKV("llama.embedding_length", uint32(s.Dim))
	w.SetKV("llama.block_count", uint32(s.Layers))
	w.SetKV("llama.feed_forward_length", uint32(s.FFN))
	w.SetKV("llama.attention.head_count", uint32(s.Heads))
	w.SetKV("llama.attention.head_count_kv", uint32(s.KVHeads))
	w.SetKV("llama.rope.dimension_count", uint32(hd))
	w.SetKV("llama.rope.freq_base", float32(10000))
	w.SetKV("llama.attention.layer_norm_rms_epsilon", float32(1e-5))
	w.SetKV("llama.vocab_size", uint32(s.Vocab))
	if err := setTokenizer(w, o.Tokenizer, s.Vocab); err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	add := func(name string, typ gguf.Type, dims []int, std float32, mean float32) error {
		n := 1
		for _, d := range dims {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = mean + std*float32(r.NormFloat64())
		}
		return w.AddTensor(name, typ, dims, Encode(typ, v))
	}
	kv := s.KVHeads * hd
	steps := []spec{{name: "token_embd.weight", dims: []int{s.Dim, s.Vocab}, std: 1}}
	for l := range s.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		steps = append(steps,
			spec{p + "attn_norm.weight", []int{s.Dim}, 0.1, 1, true},
		)
		for _, m := range []struct {
			n    string
			dims []int
			std  float32
		}{
			{"attn_q.weight", []int{s.Dim, s.Dim}, 0.08},
			{"attn_k.weight", []int{s.Dim, kv}, 0.08},
			{"attn_v.weight", []int{s.Dim, kv}, 0.08},
			{"attn_output.weight", []int{s.Dim, s.Dim}, 0.08},
		} {
			steps = append(steps, spec{p + m.n, m.dims, m.std, 0, false})
		}
		steps = append(steps,
			spec{p + "ffn_norm.weight", []int{s.Dim}, 0.1, 1, true},
			spec{p + "ffn_gate.weight", []int{s.Dim, s.FFN}, 0.08, 0, false},
			spec{p + "ffn_down.weight", []int{s.FFN, s.Dim}, 0.02, 0, false},
			spec{p + "ffn_up.weight", []int{s.Dim, s.FFN}, 0.08, 0, false},
		)
	}
	for _, st := range steps {
		typ := o.Type
		if st.norm {
			typ = gguf.TypeF32
		}
		if err := add(st.name, typ, st.dims, st.std, st.mean); err != nil {
			return nil, err
		}
	}
	if err := add("output_norm.weight", gguf.TypeF32, []int{s.Dim}, 0.1, 1); err != nil {
		return nil, err
	}
	if err := add("output.weight", o.Type, []int{s.Dim, s.Vocab}, 0.2, 0); err != nil {
		return nil, err
	}
	return w, nil
}

// spec is one tensor to generate.
type spec struct {
	name      string
	dims      []int
	std, mean float32
	norm      bool // a norm weight: always F32
}

// Encode converts v to GGUF bytes of type typ (F32, F16 or Q8_0).
func Encode(typ gguf.Type, v []float32) []byte {
	switch typ {
	case gguf.TypeF16:
		b := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(b[2*i:], tensor.F32ToF16(x))
		}
		return b
	case gguf.TypeQ8_0:
		nb := len(v) / tensor.QK
		q := tensor.Q8Blocks{D: make([]float32, nb), Qs: make([]int8, len(v))}
		tensor.QuantizeQ8(q, v)
		b := make([]byte, 0, nb*34)
		for i := range nb {
			b = binary.LittleEndian.AppendUint16(b, tensor.F32ToF16(q.D[i]))
			for _, x := range q.Qs[i*tensor.QK : (i+1)*tensor.QK] {
				b = append(b, byte(x))
			}
		}
		return b
	}
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func setTokenizer(w *gguf.Writer, src *gguf.File, vocab int) error {
	if src != nil {
		n := 0
		for _, kv := range src.KV {
			if strings.HasPrefix(kv.Key, "tokenizer.") {
				w.SetKV(kv.Key, kv.Value)
				n++
			}
		}
		toks, _ := src.Strings("tokenizer.ggml.tokens")
		if n == 0 || len(toks) != vocab {
			return fmt.Errorf("synth: tokenizer source has %d tokens, the shape wants %d", len(toks), vocab)
		}
		return nil
	}
	// A toy SentencePiece vocabulary: <unk> <s> </s>, the 256 byte tokens,
	// then filler pieces.
	if vocab < 259 {
		return fmt.Errorf("synth: vocabulary of %d is under 259 (3 control + 256 byte tokens)", vocab)
	}
	toks := make([]string, vocab)
	scores := make([]float32, vocab)
	types := make([]int32, vocab)
	toks[0], toks[1], toks[2] = "<unk>", "<s>", "</s>"
	types[0], types[1], types[2] = 2, 3, 3
	for i := range 256 {
		toks[3+i] = fmt.Sprintf("<0x%02X>", i)
		types[3+i] = 6
	}
	for i := 259; i < vocab; i++ {
		toks[i] = fmt.Sprintf("▁t%d", i)
		scores[i] = -float32(i)
		types[i] = 1
	}
	w.SetKV("tokenizer.ggml.model", "llama")
	w.SetKV("tokenizer.ggml.tokens", toks)
	w.SetKV("tokenizer.ggml.scores", scores)
	w.SetKV("tokenizer.ggml.token_type", types)
	w.SetKV("tokenizer.ggml.bos_token_id", uint32(1))
	w.SetKV("tokenizer.ggml.eos_token_id", uint32(2))
	w.SetKV("tokenizer.ggml.unknown_token_id", uint32(0))
	w.SetKV("tokenizer.ggml.add_bos_token", true)
	return nil
}
