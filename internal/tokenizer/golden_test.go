package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/llmo/llmo/internal/gguf"
	"github.com/llmo/llmo/internal/testenv"
)

func load(t testing.TB, model string) *Tokenizer {
	t.Helper()
	f, err := gguf.Open(testenv.Model(t, model))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type goldenLine struct {
	Model     string `json:"model"`
	Prompt    string `json:"prompt"`
	PromptIDs []int  `json:"prompt_ids"`
	IDs       []int  `json:"ids"`
	Text      string `json:"text"`
}

func readGolden(t *testing.T) []goldenLine {
	fh, err := os.Open(filepath.Join(testenv.SharedDir(t), "golden", "greedy.jsonl"))
	if err != nil {
		testenv.Missing(t, "golden file: %v", err)
	}
	defer fh.Close()
	var lines []goldenLine
	sc := bufio.NewScanner(fh)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var g goldenLine
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, g)
	}
	if len(lines) == 0 {
		t.Fatal("empty golden file")
	}
	return lines
}

// The encoder reproduces the reference engine's prompt ids, and decoding the
// reference continuation gives the reference text.
func TestGolden(t *testing.T) {
	toks := map[string]*Tokenizer{}
	checked := 0
	for _, g := range readGolden(t) {
		tok := toks[g.Model]
		if tok == nil {
			tok = load(t, g.Model)
			toks[g.Model] = tok
		}
		if g.PromptIDs != nil {
			got := tok.Encode(g.Prompt, EncodeOptions{})
			if !slices.Equal(got, g.PromptIDs) {
				t.Errorf("%s %q:\n got %v\nwant %v", g.Model, g.Prompt, got, g.PromptIDs)
			}
			withBOS := tok.Encode(g.Prompt, EncodeOptions{AddBOS: true})
			if len(withBOS) != len(got)+1 || withBOS[0] != 1 {
				t.Errorf("%s %q: AddBOS gave %v", g.Model, g.Prompt, withBOS[:min(3, len(withBOS))])
			}
			checked++
		}
		if g.Model == "stories260K.gguf" {
			if got := tok.Decode(g.IDs); got != g.Text {
				t.Errorf("%s %q: Decode = %q, want %q", g.Model, g.Prompt, got, g.Text)
			}
			d := tok.NewDecoder()
			var s string
			for _, id := range g.IDs {
				s += d.Add(id)
			}
			if s += d.Flush(); s != g.Text {
				t.Errorf("%s %q: streaming decode = %q, want %q", g.Model, g.Prompt, s, g.Text)
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d prompts checked", checked)
	}
}
