package engine

import (
	"testing"
)

func TestDebugMargins(t *testing.T) {
	lines := readGolden(t)
	for _, name := range []string{"synth-15m-q8_0.gguf", "synth-15m-f16.gguf"} {
		m := loadModel(t, name, Options{Threads: 1, MaxBatch: 1})
		for _, g := range lines {
			if g.Model != name || g.Prompt[0] != 'C' {
				continue
			}
			r := newRunner(m, 1, 256, 128, 1)
			toks := append(encodePrompt(m.Tokenizer(), g.Prompt), g.IDs...)
			np := len(toks) - len(g.IDs)
			for p := 0; p < len(toks)-1; p++ {
				r.b.reset()
				r.b.add(toks[p], 0, p, true)
				r.forward(false)
				if p >= np-1 && p < np+12 {
					lg := r.logits[:m.hp.vocab]
					best := argmax(lg)
					t.Logf("%s pos %d ref %d (%.4f) ours %d (%.4f)", name, p, toks[p+1], lg[toks[p+1]], best, lg[best])
				}
			}
		}
	}
}
