package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/llmo/llmo/internal/testenv"
	"github.com/llmo/llmo/internal/tokenizer"
)

// golden is one line of ../shared/golden/greedy.jsonl.
type golden struct {
	Model     string `json:"model"`
	Prompt    string `json:"prompt"`
	PromptIDs []int  `json:"prompt_ids"`
	IDs       []int  `json:"ids"`
	Text      string `json:"text"`
}

func readGolden(t *testing.T) []golden {
	t.Helper()
	f, err := os.Open(filepath.Join(testenv.SharedDir(t), "golden", "greedy.jsonl"))
	if err != nil {
		testenv.Missing(t, "golden file: %v", err)
	}
	defer f.Close()
	var out []golden
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var g golden
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatal(err)
		}
		out = append(out, g)
	}
	return out
}

// generate runs one greedy request through a scheduler.
func generate(t testing.TB, s *Scheduler, prompt []int, n int) ([]int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ch, err := s.Submit(ctx, Request{Prompt: prompt, MaxTokens: n})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	var text string
	for ev := range ch {
		if ev.Err != nil {
			t.Fatal(ev.Err)
		}
		if ev.Done {
			break
		}
		ids = append(ids, ev.Token)
		text += ev.Text
	}
	return ids, text
}

func startScheduler(t testing.TB, m *Model) *Scheduler {
	s := NewScheduler(m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func loadModel(t testing.TB, name string, opts Options) *Model {
	t.Helper()
	m, err := Load(testenv.Model(t, name), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func encodePrompt(tok *tokenizer.Tokenizer, prompt string) []int {
	return tok.Encode(prompt, tokenizer.EncodeOptions{AddBOS: true})
}

// charMatch is the share of characters the two texts have in common: the
// length of their longest common subsequence (in runes) over the longer
// length. One dropped or extra character costs one character, not the rest
// of the line.
func charMatch(got, want string) float64 {
	g, w := []rune(got), []rune(want)
	if len(g) == 0 && len(w) == 0 {
		return 1
	}
	prev, cur := make([]int, len(w)+1), make([]int, len(w)+1)
	for i := range g {
		for j := range w {
			switch {
			case g[i] == w[j]:
				cur[j+1] = prev[j] + 1
			case prev[j+1] >= cur[j]:
				cur[j+1] = prev[j+1]
			default:
				cur[j+1] = cur[j]
			}
		}
		prev, cur = cur, prev
	}
	return float64(prev[len(w)]) / float64(max(len(g), len(w)))
}

// goldenBar is what TestGolden requires per model: the average character
// match of free-running greedy text, and the share of reference tokens that
// are our argmax when the reference's own tokens are fed back (teacher
// forcing, which keeps one early near-tie from hiding all later agreement).
//
// The engine repeats llama.cpp's CPU arithmetic (Q8_0 activation quants and
// dot order, F16 KV cache, flash-attention softmax, fused RoPE), so every
// pick agrees, near-ties included (the Q8_0 lines have margins down to
// 0.002). The characters that do not match are the reference dropping a
// valid character after an invalid byte token.
var goldenBar = map[string]struct{ chars, tokens float64 }{
	"stories260K.gguf":    {1, 1},
	"synth-15m-f16.gguf":  {0.99, 1},
	"synth-15m-q8_0.gguf": {0.99, 1},
}

// TestGolden reproduces ../shared/golden/greedy.jsonl: exactly (ids and
// text) for stories260K, and the bars of goldenBar (well above the 95% of
// characters asked for) for the synth-15m models; prompt tokenization is
// exact wherever the golden gives it.
func TestGolden(t *testing.T) {
	lines := readGolden(t)
	byModel := map[string][]golden{}
	var order []string
	for _, g := range lines {
		if byModel[g.Model] == nil {
			order = append(order, g.Model)
		}
		byModel[g.Model] = append(byModel[g.Model], g)
	}
	for _, name := range order {
		t.Run(name, func(t *testing.T) {
			bar, ok := goldenBar[name]
			if !ok {
				t.Fatalf("no bar for %s", name)
			}
			m := loadModel(t, name, Options{Threads: 2, MaxBatch: 2})
			s := startScheduler(t, m)
			var chars float64
			agree, total := 0, 0
			lines := byModel[name]
			if raceEnabled && name != "stories260K.gguf" {
				lines = lines[:2]
			}
			for _, g := range lines {
				prompt := encodePrompt(m.Tokenizer(), g.Prompt)
				if g.PromptIDs != nil {
					if len(prompt) == 0 || prompt[0] != 1 || !equalInts(prompt[1:], g.PromptIDs) {
						t.Errorf("%q: prompt ids %v, want BOS + %v", g.Prompt, prompt, g.PromptIDs)
					}
				}
				ids, text := generate(t, s, prompt, 64)
				match := charMatch(text, g.Text)
				chars += match
				if name == "stories260K.gguf" && (!equalInts(ids, g.IDs) || text != g.Text) {
					t.Errorf("%q:\n got %v %q\nwant %v %q", g.Prompt, ids, text, g.IDs, g.Text)
				}
				if len(g.IDs) == 64 { // lines with dropped ids cannot be fed back
					a := teacherForced(m, prompt, g.IDs)
					agree += a
					total += len(g.IDs)
				}
				t.Logf("%q: %.1f%% of characters match", g.Prompt, 100*match)
			}
			avg := chars / float64(len(lines))
			tok := float64(agree) / float64(total)
			t.Logf("average character match %.2f%%, teacher-forced token agreement %d/%d", 100*avg, agree, total)
			if avg < bar.chars || tok < bar.tokens {
				t.Errorf("character match %.2f%% (want >= %.0f%%), token agreement %.2f%% (want >= %.0f%%)", 100*avg, 100*bar.chars, 100*tok, 100*bar.tokens)
			}
		})
	}
}

// teacherForced feeds prompt then the reference ids one by one and counts
// the positions where our greedy pick is the reference's next id.
func teacherForced(m *Model, prompt, ref []int) int {
	r := newRunner(m, 1, len(prompt)+len(ref), len(prompt), 1)
	for p, tok := range prompt {
		r.b.add(tok, 0, p, p == len(prompt)-1)
	}
	r.forward(false)
	agree := 0
	for i, want := range ref {
		if argmax(r.logits[:m.hp.vocab]) == want {
			agree++
		}
		if i == len(ref)-1 {
			break
		}
		r.b.reset()
		r.b.add(want, 0, len(prompt)+i, true)
		r.forward(false)
	}
	return agree
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
