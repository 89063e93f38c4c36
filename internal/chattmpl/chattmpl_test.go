package chattmpl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmo/llmo/api"
)

func msgs(pairs ...string) []api.Message {
	var out []api.Message
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, api.Message{Role: pairs[i], Content: api.Content(pairs[i+1])})
	}
	return out
}

func load(t *testing.T, name string) *Template {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	tm, err := New(string(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return tm
}

// The expected strings are what transformers' apply_chat_template produces
// for these templates (trim_blocks and lstrip_blocks on).
func TestRealTemplates(t *testing.T) {
	conv := msgs("system", "Be brief.", "user", "Hi!", "assistant", "Hello.", "user", "  Who are you?  ")
	cases := []struct {
		file, bos, eos string
		msgs           []api.Message
		genPrompt      bool
		want           string
	}{
		{"qwen2.jinja", "", "<|im_end|>", msgs("user", "Hi!"), true,
			"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"},
		{"qwen2.jinja", "", "<|im_end|>", conv, false,
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\n  Who are you?  <|im_end|>\n"},
		{"smollm2.jinja", "", "<|im_end|>", msgs("user", "Hi!"), true,
			"<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"},
		{"qwen2.5.jinja", "", "<|im_end|>", msgs("user", "Hi!", "assistant", "Yo", "user", "x"), true,
			"<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n"},
		{"qwen2.5.jinja", "", "<|im_end|>", msgs("system", "S", "user", "Q", "tool", "42"), false,
			"<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>user\n<tool_response>\n42\n</tool_response><|im_end|>\n"},
		{"llama3.jinja", "<|begin_of_text|>", "<|eot_id|>", conv, true,
			"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"llama2.jinja", "<s>", "</s>", conv, true,
			"<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi! [/INST] Hello. </s><s>[INST] Who are you? [/INST]"},
		{"llama2.jinja", "<s>", "</s>", msgs("user", "Hi!"), true, "<s>[INST] Hi! [/INST]"},
	}
	for _, c := range cases {
		tm := load(t, c.file)
		got, err := tm.Render(c.msgs, c.genPrompt, c.bos, c.eos)
		if err != nil {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.file, got, c.want)
		}
	}
}

func TestBuiltinsMatchRealTemplates(t *testing.T) {
	conv := msgs("system", "Be brief.", "user", "Hi!", "assistant", "Hello.", "user", "Who?")
	for name, file := range map[string]string{"llama2": "llama2.jinja", "llama3": "llama3.jinja"} {
		b, err := New(Builtin(name))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := load(t, file).Render(conv, true, "<s>", "</s>")
		got, err := b.Render(conv, true, "<s>", "</s>")
		if err != nil || got != want {
			t.Errorf("builtin %s: got %q, %v; want %q", name, got, err, want)
		}
	}
	b, err := New(Builtin("chatml"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := b.Render(msgs("user", "Hi"), true, "", "")
	if want := "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"; got != want {
		t.Errorf("chatml: got %q want %q", got, want)
	}
	if Builtin("nope") != "" {
		t.Error("unknown builtin should be empty")
	}
	for _, n := range BuiltinNames() {
		if Builtin(n) == "" {
			t.Errorf("BuiltinNames lists %q without a source", n)
		}
	}
}

func TestRaiseException(t *testing.T) {
	tm := load(t, "llama2.jinja")
	_, err := tm.Render(msgs("user", "a", "user", "b"), true, "<s>", "</s>")
	var te *TemplateError
	if !errors.As(err, &te) || !strings.Contains(te.Msg, "alternate") {
		t.Fatalf("got %v, want a TemplateError about alternating roles", err)
	}
}

func TestBadTemplates(t *testing.T) {
	for _, src := range []string{"", "   ", "{% for m in messages %}", "{{ 'unterminated }}", "{% endif %}", strings.Repeat("x", MaxSourceBytes+1)} {
		if _, err := New(src); err == nil {
			t.Errorf("New(%.40q) succeeded", src)
		}
	}
}

func TestNoFileSystemAccess(t *testing.T) {
	tm, err := New(`{% include "/etc/passwd" %}`)
	if err != nil {
		return // refused at parse time: fine
	}
	out, err := tm.Render(msgs("user", "x"), true, "", "")
	if err == nil && strings.Contains(out, "root:") {
		t.Fatal("template read a file from disk")
	}
}

// Message contents are data, never template code.
func TestContentIsNotEvaluated(t *testing.T) {
	b, err := New(Builtin("chatml"))
	if err != nil {
		t.Fatal(err)
	}
	evil := "{{ raise_exception('x') }}{% for i in range(10) %}boom{% endfor %}"
	got, err := b.Render(msgs("user", evil), false, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, evil) {
		t.Fatalf("content changed: %q", got)
	}
}

func FuzzRender(f *testing.F) {
	for _, s := range []string{"hello", "{{ x }}", "{% if %}", "\x00\xff", "<|im_end|>", "'\"\\", "{#", "ünïcödé 🙂", strings.Repeat("{", 100)} {
		f.Add(s, "user", true)
	}
	var tmpls []*Template
	for _, file := range []string{"qwen2.jinja", "llama2.jinja", "llama3.jinja", "qwen2.5.jinja", "smollm2.jinja"} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			f.Fatal(err)
		}
		tm, err := New(string(b))
		if err != nil {
			f.Fatal(err)
		}
		tmpls = append(tmpls, tm)
	}
	f.Fuzz(func(t *testing.T, content, role string, gen bool) {
		m := []api.Message{{Role: "system", Content: "sys"}, {Role: role, Content: api.Content(content)}, {Role: "user", Content: api.Content(content)}}
		for _, tm := range tmpls {
			out, err := tm.Render(m, gen, "<s>", "</s>")
			if err != nil {
				var te *TemplateError
				if !errors.As(err, &te) {
					t.Fatalf("render failed with a non-template error: %v", err)
				}
				continue
			}
			if !strings.Contains(out, strings.TrimSpace(content)) {
				t.Fatalf("content %q missing from output %q", content, out)
			}
		}
	})
}
