package engine

import "testing"

func TestDebugText(t *testing.T) {
	lines := readGolden(t)
	for _, name := range []string{"synth-15m-f16.gguf", "synth-15m-q8_0.gguf"} {
		m := loadModel(t, name, Options{Threads: 2, MaxBatch: 2})
		s := startScheduler(t, m)
		for _, g := range lines {
			if g.Model != name || (g.Prompt != "Once upon a time" && g.Prompt[0] != 'C') {
				continue
			}
			ids, text := generate(t, s, encodePrompt(m.Tokenizer(), g.Prompt), 64)
			t.Logf("%s\n%v\n%q\n%q", name, ids, text, g.Text)
		}
	}
}
