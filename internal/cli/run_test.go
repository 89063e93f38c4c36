package cli_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmo/llmo/internal/chattmpl"
	"github.com/llmo/llmo/internal/gguf"
	"github.com/llmo/llmo/internal/synth"
	"github.com/llmo/llmo/internal/testenv"
	"github.com/llmo/llmo/internal/tokenizer"
)

// TestRunGoldenBinary runs the built binary exactly as the acceptance
// criterion does and compares with ../shared/golden/greedy.jsonl: every
// stories260K line must reproduce ids, text and prompt ids.
func TestRunGoldenBinary(t *testing.T) {
	bin := testenv.Llmo(t)
	model := testenv.Model(t, "stories260K.gguf")
	f, err := os.Open(filepath.Join(testenv.SharedDir(t), "golden", "greedy.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type line struct {
		Model     string  `json:"model"`
		Prompt    string  `json:"prompt"`
		PromptIDs []int   `json:"prompt_ids"`
		IDs       []int   `json:"ids"`
		Text      string  `json:"text"`
		DecodeTok float64 `json:"decode_tok_s"`
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var want line
		if err := json.Unmarshal(sc.Bytes(), &want); err != nil {
			t.Fatal(err)
		}
		if want.Model != "stories260K.gguf" {
			continue
		}
		n++
		cmd := exec.Command(bin, "run", "--model", model, "--raw", "--temperature", "0", "--max-tokens", "64", "--json", want.Prompt)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%q: %v\n%s", want.Prompt, err, stderr.String())
		}
		var got line
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q: output is not JSON: %v\n%s", want.Prompt, err, out)
		}
		if got.Text != want.Text || !equal(got.IDs, want.IDs) || !equal(got.PromptIDs, want.PromptIDs) {
			t.Errorf("%q:\n got %q %v prompt %v\nwant %q %v prompt %v", want.Prompt, got.Text, got.IDs, got.PromptIDs, want.Text, want.IDs, want.PromptIDs)
		}
		if got.DecodeTok <= 0 {
			t.Errorf("%q: decode_tok_s = %g", want.Prompt, got.DecodeTok)
		}
	}
	if n != 6 {
		t.Errorf("checked %d stories260K lines, want 6", n)
	}
}

func TestRunAndBenchCLI(t *testing.T) {
	bin := testenv.Llmo(t)
	model := testenv.Model(t, "stories260K.gguf")
	tests := []struct {
		name     string
		args     []string
		env      []string
		code     int
		stdout   string // substring
		stderr   string // substring
		jsonKeys []string
	}{
		{name: "stream", args: []string{"run", "--model", model, "--temperature", "0", "--max-tokens", "12", "Once upon a time"},
			stdout: ", there was a little girl named Lily"},
		{name: "model from env, seeded sampling", args: []string{"run", "--seed", "5", "--max-tokens", "8", "Lily"},
			env: []string{"MODEL_PATH=" + model}, stdout: ""},
		{name: "no prompt", args: []string{"run", "--model", model}, code: 2, stderr: "PROMPT"},
		{name: "no model", args: []string{"run", "hello"}, code: 2, stderr: "--model is required"},
		{name: "missing file", args: []string{"run", "--model", "/nonexistent.gguf", "hi"}, code: 1, stderr: "not found"},
		{name: "bad flag value", args: []string{"run", "--model", model, "--max-tokens", "x", "hi"}, code: 2, stderr: "max-tokens"},
		{name: "bench json", args: []string{"bench", "--model", model, "--threads", "1", "--prompt-tokens", "16", "--gen-tokens", "8", "--concurrency", "2", "--json"},
			jsonKeys: []string{"prefill_tok_s", "decode_tok_s", "aggregate_tok_s"}},
		{name: "bench text", args: []string{"bench", "--model", model, "--prompt-tokens", "8", "--gen-tokens", "4", "--concurrency", "2"},
			stdout: "aggregate"},
		{name: "bench over context", args: []string{"bench", "--model", model, "--prompt-tokens", "5000"}, code: 2, stderr: "context"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Env = append(os.Environ(), tt.env...)
			cmd.Dir = t.TempDir() // no stray .env
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stdout %q (want %q), stderr %q (want %q)", stdout.String(), tt.stdout, stderr.String(), tt.stderr)
			}
			if tt.code == 0 && tt.stdout == "" && tt.jsonKeys == nil && strings.TrimSpace(stdout.String()) == "" {
				t.Errorf("no output")
			}
			if tt.jsonKeys != nil {
				var m map[string]any
				if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
					t.Fatalf("not JSON: %v: %s", err, stdout.String())
				}
				for _, k := range tt.jsonKeys {
					if v, ok := m[k].(float64); !ok || v <= 0 {
						t.Errorf("%s = %v", k, m[k])
					}
				}
			}
		})
	}
}

func equal(a, b []int) bool {
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

// Without --raw a model's chat template wraps the prompt as a user turn;
// with --raw the prompt is tokenized as it is.
func TestRunChatTemplate(t *testing.T) {
	bin := testenv.Llmo(t)
	w, err := synth.Build(synth.Shape{Dim: 64, Layers: 1, Heads: 4, KVHeads: 4, FFN: 64, Vocab: 300, Ctx: 256}, synth.Options{Type: gguf.TypeF32, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	w.SetKV("tokenizer.chat_template", chattmpl.Builtin("chatml"))
	model := filepath.Join(t.TempDir(), "chat.gguf")
	if err := w.WriteFile(model); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(model)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	promptText := func(args ...string) string {
		out, err := exec.Command(bin, append([]string{"run", "--model", model, "--temperature", "0", "--max-tokens", "2", "--json"}, args...)...).Output()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var got struct {
			PromptIDs []int `json:"prompt_ids"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		// The toy vocabulary has no "▁" piece, so SentencePiece's space
		// marker comes back as its bytes.
		return strings.TrimSpace(strings.ReplaceAll(tok.Decode(got.PromptIDs), "▁", " "))
	}
	if got := promptText("--raw", "hi"); got != "hi" {
		t.Errorf("raw prompt decodes to %q", got)
	}
	got := promptText("hi")
	if !strings.Contains(got, "<|im_start|>user\nhi<|im_end|>") || !strings.HasSuffix(got, "<|im_start|>assistant") {
		t.Errorf("templated prompt decodes to %q", got)
	}
}
