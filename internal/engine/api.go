// Package engine is llmo's native inference engine: it loads a GGUF model,
// runs the transformer forward pass on the CPU with the kernels of
// internal/tensor, and serves many sequences at once through one continuous
// batching scheduler.
//
// The model service codes against the types in this file (CONTRACTS.md).
package engine

import "time"

// Options configure Load.
type Options struct {
	Threads  int  // worker goroutines for matrix products; 0 = GOMAXPROCS
	Int8     bool // quantize F32/F16/BF16 2-D weights to Q8_0 at load
	MaxBatch int  // KV cache slots (concurrent sequences); 0 = 8
	CtxLen   int  // positions per slot; 0 = the model's context length, at most DefaultCtxLen (4096)
}

// Info describes a loaded model.
type Info struct {
	Name, Arch, Quant string
	Params            int64
	CtxLen            int
	VocabSize         int
	EmbedDim          int
	ChatTemplate      string
	BOS, EOS          int
	MemoryBytes       int64 // weights and KV cache held in memory
	Int8SavedBytes    int64 // bytes saved by Options.Int8 (0 without it)
}

// Sampling selects the next token from the logits.
type Sampling struct {
	Temperature                                          float64 // 0 = greedy
	TopK                                                 int
	TopP, MinP                                           float64
	RepetitionPenalty, PresencePenalty, FrequencyPenalty float64
	Seed                                                 int64
	HasSeed                                              bool
}

// Request is one sequence to generate.
type Request struct {
	Prompt      []int
	MaxTokens   int // 0 = until the context is full
	Sampling    Sampling
	Stop        []string
	TopLogprobs int // 0 = none
	Logprobs    bool
	IgnoreEOS   bool // keep generating past end-of-generation tokens (benchmarks)
}

// TokenProb is one alternative token with its log-probability.
type TokenProb struct {
	Token   int
	Text    string
	Logprob float32
}

// Event is one generated token, or the end of the sequence (Done).
type Event struct {
	Token            int
	Text             string // UTF-8-safe; stop strings withheld until ruled out
	Logprob          float32
	Top              []TokenProb
	Done             bool
	FinishReason     string // "stop" | "length" (when Done and Err == nil)
	Err              error
	PromptTokens     int
	CompletionTokens int
}

// Stats is a snapshot of the scheduler.
type Stats struct {
	Running, Waiting, Slots int
	KVUsage                 float64 // fraction of KV positions in use
	LastStep                time.Time
	Steps                   uint64
}
