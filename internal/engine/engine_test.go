package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/gguf"
	"github.com/llmo/llmo/internal/synth"
	"github.com/llmo/llmo/internal/testenv"
)

// promptLogits runs prompt through a fresh runner and returns the logits
// after its last token.
func promptLogits(m *Model, prompt []int) []float32 {
	r := newRunner(m, 1, len(prompt), len(prompt), 1)
	for p, tok := range prompt {
		r.b.add(tok, 0, p, p == len(prompt)-1)
	}
	r.forward(false)
	return append([]float32(nil), r.logits[:m.hp.vocab]...)
}

// logitErr is max|a-b| relative to max|a|.
func logitErr(a, b []float32) float64 {
	var d, mx float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
		mx = max(mx, math.Abs(float64(a[i])))
	}
	return d / mx
}

// Q8_0 weights (quantized at load with Options.Int8, or stored Q8_0 in the
// file) give logits within 5% of the float model's largest logit, with the
// same top token. The measured errors are about 1-2%.
func TestQ8LogitsMatchFloat(t *testing.T) {
	tests := []struct {
		name, f32, q8 string
		int8          bool
	}{
		{"stories260K int8 at load", "stories260K.gguf", "stories260K.gguf", true},
		{"synth-15m f16 vs q8_0 file", "synth-15m-f16.gguf", "synth-15m-q8_0.gguf", false},
		{"synth-15m f16 int8 at load", "synth-15m-f16.gguf", "synth-15m-f16.gguf", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if raceEnabled && tt.int8 && tt.f32 != "stories260K.gguf" {
				t.Skip("quantizing 15M weights at load is slow under the race detector; covered without it")
			}
			mf := loadModel(t, tt.f32, Options{Threads: 1, MaxBatch: 1})
			mq := loadModel(t, tt.q8, Options{Threads: 1, MaxBatch: 1, Int8: tt.int8})
			if mq.Info().Quant != "Q8_0" {
				t.Errorf("quant = %q, want Q8_0", mq.Info().Quant)
			}
			prompt := encodePrompt(mf.Tokenizer(), "Once upon a time, there was a little dog")
			lf, lq := promptLogits(mf, prompt), promptLogits(mq, prompt)
			e := logitErr(lf, lq)
			t.Logf("relative max logit error %.4f", e)
			if e > 0.05 {
				t.Errorf("Q8_0 logits differ from float by %.3f of the max logit, want <= 0.05", e)
			}
			if argmax(lf) != argmax(lq) {
				t.Errorf("top token %d (float) vs %d (Q8_0)", argmax(lf), argmax(lq))
			}
		})
	}
}

func TestInt8Info(t *testing.T) {
	m := loadModel(t, "stories260K.gguf", Options{Threads: 1, Int8: true})
	f := loadModel(t, "stories260K.gguf", Options{Threads: 1})
	mi, fi := m.Info(), f.Info()
	if mi.Int8SavedBytes <= 0 || fi.Int8SavedBytes != 0 {
		t.Errorf("Int8SavedBytes = %d with int8, %d without", mi.Int8SavedBytes, fi.Int8SavedBytes)
	}
	if mi.MemoryBytes+mi.Int8SavedBytes != fi.MemoryBytes {
		t.Errorf("memory %d + saved %d != float memory %d", mi.MemoryBytes, mi.Int8SavedBytes, fi.MemoryBytes)
	}
	// ffn_down has 172 columns, not a multiple of 32: it stays F32.
	if k := m.layers[0].down.Kind.String(); k != "F32" {
		t.Errorf("ffn_down kind %s, want F32", k)
	}
	if k := m.layers[0].wq.Kind.String(); k != "Q8_0" {
		t.Errorf("attn_q kind %s, want Q8_0", k)
	}
	if c := loadModel(t, "stories260K.gguf", Options{Threads: 1, CtxLen: 100000}).Info().CtxLen; c != 2048 {
		t.Errorf("CtxLen over the model's: got %d, want the model's 2048", c)
	}
	if c := loadModel(t, "stories260K.gguf", Options{Threads: 1, CtxLen: 300}).Info().CtxLen; c != 300 {
		t.Errorf("CtxLen 300: got %d", c)
	}
	want := Info{Name: "llama", Arch: "llama", Quant: "F32", CtxLen: 2048, VocabSize: 512, EmbedDim: 64, BOS: 1, EOS: 2}
	if fi.Name != want.Name || fi.Arch != want.Arch || fi.Quant != want.Quant || fi.CtxLen != want.CtxLen ||
		fi.VocabSize != want.VocabSize || fi.EmbedDim != want.EmbedDim || fi.BOS != want.BOS || fi.EOS != want.EOS {
		t.Errorf("info %+v, want %+v", fi, want)
	}
	if fi.Params != 292800 {
		t.Errorf("params %d, want 292800", fi.Params)
	}
}

// writeModel writes a synth model after edit changes its writer.
func writeModel(t *testing.T, s synth.Shape, typ gguf.Type, edit func(w *gguf.Writer)) string {
	t.Helper()
	w, err := synth.Build(s, synth.Options{Type: typ, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(w)
	}
	p := filepath.Join(t.TempDir(), "m.gguf")
	if err := w.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	return p
}

var tiny = synth.Shape{Dim: 64, Layers: 2, Heads: 4, KVHeads: 2, FFN: 96, Vocab: 300, Ctx: 64}

func TestLoadErrors(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "garbage.gguf")
	os.WriteFile(garbage, []byte("definitely not a gguf file"), 0o644)
	tests := []struct {
		name string
		path string
		kind errs.Kind
		msg  string
	}{
		{"missing", filepath.Join(t.TempDir(), "nope.gguf"), errs.NotFound, "not found"},
		{"garbage", garbage, errs.Invalid, "GGUF"},
		{"unknown arch", writeModel(t, tiny, gguf.TypeF32, func(w *gguf.Writer) { w.SetKV("general.architecture", "mamba") }), errs.Invalid, `"mamba"`},
		{"missing tensor", writeModel(t, tiny, gguf.TypeF32, func(w *gguf.Writer) { w.SetKV("llama.block_count", uint32(3)) }), errs.Invalid, "blk.2.attn_norm.weight"},
		{"bad heads", writeModel(t, tiny, gguf.TypeF32, func(w *gguf.Writer) { w.SetKV("llama.attention.head_count_kv", uint32(3)) }), errs.Invalid, "KV heads"},
		{"v1 file", testenv.Model(t, "tinyllamas-stories-260k-f32.gguf"), errs.Invalid, "GGUF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Load(tt.path, Options{Threads: 1})
			if err == nil {
				m.Close()
				t.Fatal("Load succeeded")
			}
			if errs.KindOf(err) != tt.kind || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v (kind %v), want kind %v mentioning %q", err, errs.KindOf(err), tt.kind, tt.msg)
			}
		})
	}
}

// requestText runs r and returns its events' ids and text and the final
// event.
func requestText(t testing.TB, s *Scheduler, ctx context.Context, r Request) ([]int, string, Event) {
	t.Helper()
	ch, err := s.Submit(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	var b strings.Builder
	for ev := range ch {
		if ev.Done {
			return ids, b.String(), ev
		}
		ids = append(ids, ev.Token)
		b.WriteString(ev.Text)
	}
	t.Fatal("channel closed without a Done event")
	return nil, "", Event{}
}

// Sequences batched together produce exactly what each produces alone:
// per-token arithmetic does not depend on the batch.
func TestBatchingMatchesSolo(t *testing.T) {
	for _, name := range []string{"stories260K.gguf", "synth-15m-q8_0.gguf"} {
		t.Run(name, func(t *testing.T) {
			if raceEnabled && name != "stories260K.gguf" {
				t.Skip("15M model under the race detector; covered without it")
			}
			// Nine prompts on eight slots: batches of 1 to 8 tokens, so every
			// kernel form (1 and 4 rows, 4 and 8 tokens) takes part.
			m := loadModel(t, name, Options{Threads: 2, MaxBatch: 8})
			s := startScheduler(t, m)
			prompts := []string{"Once upon a time", "The little dog ran to the park and", "Tom had 3 apples and 12 pears.", "She said",
				"A cat", "Lily and Ben", "One day,", "The sun was", "Then she left."}
			solo := make([][]int, len(prompts))
			for i, p := range prompts {
				solo[i], _, _ = requestText(t, s, context.Background(), Request{Prompt: encodePrompt(m.Tokenizer(), p), MaxTokens: 40, IgnoreEOS: true})
			}
			var wg sync.WaitGroup
			got := make([][]int, len(prompts))
			for i, p := range prompts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					time.Sleep(time.Duration(i) * 3 * time.Millisecond) // join a running batch
					got[i], _, _ = requestText(t, s, context.Background(), Request{Prompt: encodePrompt(m.Tokenizer(), p), MaxTokens: 40, IgnoreEOS: true})
				}()
			}
			wg.Wait()
			for i := range prompts {
				if !equalInts(got[i], solo[i]) {
					t.Errorf("%q batched:\n%v\nsolo:\n%v", prompts[i], got[i], solo[i])
				}
			}
			if st := s.Stats(); st.Running != 0 || st.Waiting != 0 || st.Slots != 8 || st.Steps == 0 {
				t.Errorf("stats after the run: %+v", st)
			}
		})
	}
}

// A long prompt is fed in chunks over several steps while other sequences
// decode and finish around it; every sequence still gets its own logits.
func TestChunkedPrefillWithDecoders(t *testing.T) {
	m := loadModel(t, "stories260K.gguf", Options{Threads: 1, MaxBatch: 3})
	s := startScheduler(t, m)
	long := encodePrompt(m.Tokenizer(), strings.Repeat("Once upon a time, there was a little girl named Lily. ", 20))
	if len(long) <= 2*prefillChunk {
		t.Fatalf("prompt of %d tokens does not need 3 chunks", len(long))
	}
	short := encodePrompt(m.Tokenizer(), "The little dog")
	soloLong, _, _ := requestText(t, s, context.Background(), Request{Prompt: long, MaxTokens: 20, IgnoreEOS: true})
	soloShort, _, _ := requestText(t, s, context.Background(), Request{Prompt: short, MaxTokens: 30, IgnoreEOS: true})
	var wg sync.WaitGroup
	var gotLong, gotShort []int
	wg.Add(2)
	go func() {
		defer wg.Done()
		gotLong, _, _ = requestText(t, s, context.Background(), Request{Prompt: long, MaxTokens: 20, IgnoreEOS: true})
	}()
	go func() {
		defer wg.Done()
		gotShort, _, _ = requestText(t, s, context.Background(), Request{Prompt: short, MaxTokens: 30, IgnoreEOS: true})
	}()
	wg.Wait()
	if !equalInts(gotLong, soloLong) || !equalInts(gotShort, soloShort) {
		t.Errorf("batched output differs from solo:\nlong  %v\nsolo  %v\nshort %v\nsolo  %v", gotLong, soloLong, gotShort, soloShort)
	}
}

func TestSubmitValidation(t *testing.T) {
	m := loadModel(t, "stories260K.gguf", Options{Threads: 1, MaxBatch: 1, CtxLen: 64})
	s := startScheduler(t, m)
	long := make([]int, 64)
	for i := range long {
		long[i] = 300
	}
	tests := []struct {
		name  string
		req   Request
		param string
	}{
		{"empty prompt", Request{MaxTokens: 5}, "prompt"},
		{"prompt fills context", Request{Prompt: long}, "prompt"},
		{"overflow", Request{Prompt: long[:60], MaxTokens: 5}, "max_tokens"},
		{"negative max", Request{Prompt: long[:3], MaxTokens: -1}, "max_tokens"},
		{"bad token", Request{Prompt: []int{1, 512}}, "prompt"},
		{"negative token", Request{Prompt: []int{-1}}, "prompt"},
		{"temperature", Request{Prompt: long[:3], Sampling: Sampling{Temperature: -1}}, "temperature"},
		{"top_p", Request{Prompt: long[:3], Sampling: Sampling{TopP: 2}}, "top_p"},
		{"top_logprobs", Request{Prompt: long[:3], TopLogprobs: 21}, "top_logprobs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Submit(context.Background(), tt.req)
			var e *errs.Error
			if !errors.As(err, &e) || e.Kind != errs.Invalid || e.Param != tt.param {
				t.Errorf("err = %v, want an Invalid error for param %q", err, tt.param)
			}
		})
	}
	// Exactly filling the context is fine, and generation stops at it.
	ids, _, last := requestText(t, s, context.Background(), Request{Prompt: long[:60], MaxTokens: 4, IgnoreEOS: true})
	if len(ids) != 4 || last.FinishReason != "length" || last.Err != nil {
		t.Errorf("got %d tokens, final %+v", len(ids), last)
	}
	// MaxTokens 0 means "until the context is full".
	ids, _, last = requestText(t, s, context.Background(), Request{Prompt: long[:50], IgnoreEOS: true})
	if len(ids) != 14 || last.FinishReason != "length" {
		t.Errorf("max_tokens 0: got %d tokens (want 14), final %+v", len(ids), last)
	}
}

// A cancelled sequence leaves at once and frees its slot; a reader that
// never reads does not block others.
func TestCancelAndSlowReader(t *testing.T) {
	m := loadModel(t, "stories260K.gguf", Options{Threads: 1, MaxBatch: 2})
	s := startScheduler(t, m)
	prompt := encodePrompt(m.Tokenizer(), "Once upon a time")

	// A request nobody reads: it must not stall the loop.
	_, err := s.Submit(context.Background(), Request{Prompt: prompt, MaxTokens: 500, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := s.Submit(ctx, Request{Prompt: prompt, MaxTokens: 1000, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Done || ev.Err != nil {
		t.Fatalf("first event %+v", ev)
	}
	cancel()
	var last Event
	for ev := range ch {
		last = ev
	}
	if !last.Done || errs.KindOf(last.Err) != errs.Canceled {
		t.Errorf("last event after cancel: %+v", last)
	}
	if last.CompletionTokens >= 1000 {
		t.Errorf("cancelled sequence ran to the end")
	}
	// The freed slot takes a new sequence while the unread one still runs.
	_, text, fin := requestText(t, s, context.Background(), Request{Prompt: prompt, MaxTokens: 8})
	if fin.Err != nil || text == "" {
		t.Errorf("request after cancel: %q %+v", text, fin)
	}
}

// A scheduler that stops ends its sequences with Unavailable and refuses
// new ones.
func TestSchedulerStop(t *testing.T) {
	m := loadModel(t, "stories260K.gguf", Options{Threads: 1, MaxBatch: 1})
	s := NewScheduler(m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	ch, err := s.Submit(context.Background(), Request{Prompt: []int{1, 403}, MaxTokens: 1500, IgnoreEOS: true})
	if err != nil {
		t.Fatal(err)
	}
	<-ch
	cancel()
	<-done
	var last Event
	for ev := range ch {
		last = ev
	}
	if errs.KindOf(last.Err) != errs.Unavailable {
		t.Errorf("last event %+v, want Unavailable", last)
	}
	if _, err := s.Submit(context.Background(), Request{Prompt: []int{1}}); errs.KindOf(err) != errs.Unavailable {
		t.Errorf("submit after stop: %v", err)
	}
}

// stories260K continues "Once upon a time" with ", there was a little girl
// named Lily. She loved to play outside in the park. ..." (greedy).
func TestStopStrings(t *testing.T) {
	m := loadModel(t, "stories260K.gguf", Options{Threads: 1, MaxBatch: 1})
	s := startScheduler(t, m)
	prompt := encodePrompt(m.Tokenizer(), "Once upon a time")
	tests := []struct {
		stop   []string
		want   string
		reason string
	}{
		{[]string{"Lily"}, ", there was a little girl named ", "stop"},
		{[]string{"park.", "girl"}, ", there was a little ", "stop"},
		{[]string{"Lilx"}, ", there was a little girl named Lily. She loved to play", "length"},
		{[]string{"named Lily. She loved"}, ", there was a little girl ", "stop"},
		{[]string{"play", "Lily. She"}, ", there was a little girl named ", "stop"},
	}
	for _, tt := range tests {
		n := 16
		_, text, last := requestText(t, s, context.Background(), Request{Prompt: prompt, MaxTokens: n, Stop: tt.stop})
		if text != tt.want || last.FinishReason != tt.reason {
			t.Errorf("stop %q: %q (%s), want %q (%s)", tt.stop, text, last.FinishReason, tt.want, tt.reason)
		}
	}
}

func TestPartialStop(t *testing.T) {
	tests := []struct {
		text  string
		stops []string
		keep  int
	}{
		{"hello wor", []string{"world"}, 3},
		{"hello", []string{"world"}, 0},
		{"abc", []string{"c", "bcd"}, 2},
		{"xx", []string{"x"}, 0}, // a full match is findStop's job
	}
	for _, tt := range tests {
		if got := partialStop(tt.text, tt.stops); got != tt.keep {
			t.Errorf("partialStop(%q, %q) = %d, want %d", tt.text, tt.stops, got, tt.keep)
		}
	}
}

func TestSeededSampling(t *testing.T) {
	m := loadModel(t, "stories260K.gguf", Options{Threads: 1, MaxBatch: 3})
	s := startScheduler(t, m)
	prompt := encodePrompt(m.Tokenizer(), "Once upon a time")
	run := func(seed int64) []int {
		ids, _, _ := requestText(t, s, context.Background(), Request{Prompt: prompt, MaxTokens: 48, IgnoreEOS: true,
			Sampling: Sampling{Temperature: 1.2, TopK: 40, TopP: 0.95, MinP: 0.01, RepetitionPenalty: 1.1, Seed: seed, HasSeed: true}})
		return ids
	}
	a, b, c := run(42), run(42), run(7)
	if !equalInts(a, b) {
		t.Errorf("same seed, different tokens:\n%v\n%v", a, b)
	}
	if equalInts(a, c) {
		t.Errorf("different seeds gave the same 48 tokens")
	}
}

func TestSampler(t *testing.T) {
	logits := func() []float32 { return []float32{1, 3, 2, 0.5, 2.9} }
	tests := []struct {
		name    string
		cfg     Sampling
		history []int
		allowed []int // tokens the sampler may return
	}{
		{"greedy", Sampling{}, nil, []int{1}},
		{"top-k 1", Sampling{Temperature: 1, TopK: 1}, nil, []int{1}},
		{"top-k 2", Sampling{Temperature: 5, TopK: 2}, nil, []int{1, 4}},
		{"top-p tiny", Sampling{Temperature: 1, TopP: 0.01}, nil, []int{1}},
		{"min-p", Sampling{Temperature: 5, MinP: 0.5}, nil, []int{1, 4, 2}},
		{"repetition penalty", Sampling{RepetitionPenalty: 2}, []int{1}, []int{4}},
		{"presence penalty", Sampling{PresencePenalty: 0.5}, []int{1}, []int{4}},
		{"frequency penalty", Sampling{FrequencyPenalty: 0.6}, []int{1, 1, 4, 4, 4}, []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSampler(5)
			s.reset(tt.cfg, 1)
			for _, h := range tt.history {
				s.accept(h)
			}
			seen := map[int]bool{}
			for range 200 {
				seen[s.sample(logits())] = true
			}
			for tok := range seen {
				ok := false
				for _, a := range tt.allowed {
					ok = ok || a == tok
				}
				if !ok {
					t.Errorf("sampled %d, allowed %v", tok, tt.allowed)
				}
			}
			if tt.cfg.Temperature > 1 && len(seen) < 2 {
				t.Errorf("high temperature sampled only %v", seen)
			}
		})
	}
	// The penalty window forgets tokens older than 64.
	s := newSampler(5)
	s.reset(Sampling{RepetitionPenalty: 100}, 1)
	s.accept(1)
	for range penaltyWindow {
		s.accept(0)
	}
	if got := s.sample(logits()); got != 1 {
		t.Errorf("token 1 still penalized after leaving the window: got %d", got)
	}
}

func TestLogprobs(t *testing.T) {
	m := loadModel(t, "stories260K.gguf", Options{Threads: 1, MaxBatch: 1})
	s := startScheduler(t, m)
	ch, err := s.Submit(context.Background(), Request{Prompt: encodePrompt(m.Tokenizer(), "Once upon a time"), MaxTokens: 3, Logprobs: true, TopLogprobs: 3})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range ch {
		if ev.Done {
			break
		}
		if len(ev.Top) != 3 || ev.Top[0].Token != ev.Token || ev.Top[0].Logprob != ev.Logprob || ev.Logprob > 0 ||
			ev.Top[1].Logprob > ev.Top[0].Logprob || ev.Top[0].Text == "" {
			t.Errorf("event %+v", ev)
		}
	}
}

func TestEmbed(t *testing.T) {
	m := loadModel(t, "stories260K.gguf", Options{Threads: 1})
	tok := m.Tokenizer()
	emb := func(s string) []float32 {
		v, err := m.Embed(context.Background(), encodePrompt(tok, s))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a, a2, b := emb("The cat sat on the mat."), emb("The cat sat on the mat."), emb("Lily liked to play in the park with a ball.")
	var na, dot float64
	for i := range a {
		na += float64(a[i] * a[i])
		dot += float64(a[i] * b[i])
		if a[i] != a2[i] {
			t.Fatal("embedding is not deterministic")
		}
	}
	if len(a) != 64 || math.Abs(na-1) > 1e-4 {
		t.Errorf("len %d, norm² %g", len(a), na)
	}
	if dot > 0.9999 {
		t.Errorf("different texts embed identically (cos %g)", dot)
	}
	if _, err := m.Embed(context.Background(), nil); errs.KindOf(err) != errs.Invalid {
		t.Errorf("empty input: %v", err)
	}
	if _, err := m.Embed(context.Background(), []int{1, 99999}); errs.KindOf(err) != errs.Invalid {
		t.Errorf("bad token: %v", err)
	}
}

// qwen2 = llama with Q/K/V biases and NeoX RoPE. A qwen2 file whose Q/K rows
// are permuted so that NeoX pairs (i, i+d/2) hold what llama's adjacent
// pairs (2i, 2i+1) held, with zero biases, computes the llama model's
// logits; a nonzero bias changes them.
func TestQwen2(t *testing.T) {
	llamaPath := writeModel(t, tiny, gguf.TypeF32, nil)
	f, err := gguf.Open(llamaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hd := tiny.Dim / tiny.Heads
	build := func(bias float32) string {
		w := gguf.NewWriter()
		for _, kv := range f.KV {
			key := kv.Key
			if rest, ok := strings.CutPrefix(key, "llama."); ok {
				key = "qwen2." + rest
			}
			w.SetKV(key, kv.Value)
		}
		w.SetKV("general.architecture", "qwen2")
		for _, tn := range f.Tensors {
			data := tn.Data
			if strings.HasSuffix(tn.Name, "attn_q.weight") || strings.HasSuffix(tn.Name, "attn_k.weight") {
				data = permuteNeoX(tn.Data, tn.Dims[0], tn.Dims[1], hd)
			}
			if err := w.AddTensor(tn.Name, tn.Type, tn.Dims, data); err != nil {
				t.Fatal(err)
			}
			if n, ok := strings.CutSuffix(tn.Name, "attn_q.weight"); ok {
				for _, b := range []struct {
					name string
					n    int
				}{{"attn_q.bias", tiny.Dim}, {"attn_k.bias", tiny.KVHeads * hd}, {"attn_v.bias", tiny.KVHeads * hd}} {
					v := make([]float32, b.n)
					for i := range v {
						v[i] = bias
					}
					w.AddTensor(n+b.name, gguf.TypeF32, []int{b.n}, synth.Encode(gguf.TypeF32, v))
				}
			}
		}
		p := filepath.Join(t.TempDir(), fmt.Sprintf("qwen2-%g.gguf", bias))
		if err := w.WriteFile(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	load := func(p string) *Model {
		m, err := Load(p, Options{Threads: 1, MaxBatch: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	ml, mq, mb := load(llamaPath), load(build(0)), load(build(0.5))
	if mq.Info().Arch != "qwen2" {
		t.Fatalf("arch %q", mq.Info().Arch)
	}
	prompt := []int{1, 299, 298, 297, 290, 280, 270}
	ll, lq, lb := promptLogits(ml, prompt), promptLogits(mq, prompt), promptLogits(mb, prompt)
	if e := logitErr(ll, lq); e > 1e-4 {
		t.Errorf("qwen2 (permuted, zero bias) vs llama: relative error %g", e)
	}
	if e := logitErr(ll, lb); e < 1e-3 {
		t.Errorf("a 0.5 bias changed the logits by only %g", e)
	}
}

// permuteNeoX reorders the rows of an F32 [cols, rows] matrix within each
// head: row 2i -> i, row 2i+1 -> i+hd/2.
func permuteNeoX(data []byte, cols, rows, hd int) []byte {
	out := make([]byte, len(data))
	rb := cols * 4
	for r := range rows {
		h, i := r/hd, r%hd
		dst := h*hd + i/2
		if i%2 == 1 {
			dst += hd / 2
		}
		copy(out[dst*rb:(dst+1)*rb], data[r*rb:(r+1)*rb])
	}
	return out
}

// A model declaring a huge context gets DefaultCtxLen positions per slot
// unless the caller asks for more.
func TestDefaultCtxLenCap(t *testing.T) {
	big := tiny
	big.Ctx = 100000
	p := writeModel(t, big, gguf.TypeF32, nil)
	for _, tt := range []struct{ ask, want int }{{0, DefaultCtxLen}, {8192, 8192}, {200000, 100000}} {
		m, err := Load(p, Options{Threads: 1, MaxBatch: 1, CtxLen: tt.ask})
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Info().CtxLen; got != tt.want {
			t.Errorf("CtxLen %d: got %d, want %d", tt.ask, got, tt.want)
		}
		m.Close()
	}
}
