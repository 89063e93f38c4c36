// Package chattmpl renders chat messages into a prompt with a model's Jinja
// chat template (tokenizer.chat_template in GGUF, the same text as Hugging
// Face's tokenizer_config.json), using gonja, a Jinja engine for Go.
//
// Templates are parsed once and rendered per request. They run with the
// settings transformers uses (trim_blocks and lstrip_blocks on), the
// variables messages, add_generation_prompt, bos_token and eos_token, and the
// function raise_exception. Templates never touch the file system: include
// and import only see the template itself.
package chattmpl

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nikolalohinski/gonja/v2"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"

	"github.com/llmo/llmo/api"
)

// MaxSourceBytes caps a template's size; real ones are a few kilobytes.
const MaxSourceBytes = 256 << 10

// Template is a parsed chat template. It is safe for concurrent use.
type Template struct {
	src  string
	tmpl *exec.Template
}

// TemplateError is a failure raised while rendering, such as the
// template's own raise_exception (for example "roles must alternate"). It is
// the client's fault when the template rejects the conversation.
type TemplateError struct{ Msg string }

func (e *TemplateError) Error() string { return e.Msg }

const rootName = "/chat_template"

// New parses src.
func New(src string) (*Template, error) {
	if strings.TrimSpace(src) == "" {
		return nil, errors.New("chat template is empty")
	}
	if len(src) > MaxSourceBytes {
		return nil, fmt.Errorf("chat template is %d bytes; the limit is %d", len(src), MaxSourceBytes)
	}
	loader, err := loaders.NewMemoryLoader(map[string]string{rootName: src})
	if err != nil {
		return nil, err
	}
	cfg := config.New()
	cfg.TrimBlocks = true      // as transformers' ImmutableSandboxedEnvironment
	cfg.LeftStripBlocks = true // idem
	t, err := parse(cfg, loader)
	if err != nil {
		return nil, fmt.Errorf("parsing chat template: %w", err)
	}
	return &Template{src: src, tmpl: t}, nil
}

// parse guards against panics in the parser on odd input.
func parse(cfg *config.Config, loader loaders.Loader) (t *exec.Template, err error) {
	defer func() {
		if p := recover(); p != nil {
			t, err = nil, fmt.Errorf("template parser failed: %v", p)
		}
	}()
	return exec.NewTemplate(rootName, cfg, loader, environment)
}

// environment is gonja's default one plus the globals HF templates expect.
var environment = &exec.Environment{
	Context: gonja.DefaultContext.Inherit().Update(exec.NewContext(map[string]any{
		"strftime_now": strftimeNow,
	})),
	Filters:           gonja.DefaultEnvironment.Filters,
	Tests:             gonja.DefaultEnvironment.Tests,
	ControlStructures: gonja.DefaultEnvironment.ControlStructures,
	Methods:           gonja.DefaultEnvironment.Methods,
}

func strftimeNow(format string) string {
	// Enough of strftime for the dates templates print ("%d %b %Y").
	r := strings.NewReplacer("%d", "02", "%b", "Jan", "%B", "January", "%Y", "2006", "%m", "01", "%y", "06", "%H", "15", "%M", "04", "%S", "05")
	return time.Now().Format(r.Replace(format))
}

// Source is the template text.
func (t *Template) Source() string { return t.src }

// Render renders msgs into a prompt string. bos and eos are the model's
// special-token texts; addGenerationPrompt opens an assistant turn.
func (t *Template) Render(msgs []api.Message, addGenerationPrompt bool, bos, eos string) (out string, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = "", fmt.Errorf("chat template failed: %v", p)
		}
	}()
	list := make([]map[string]any, len(msgs))
	for i, m := range msgs {
		mm := map[string]any{"role": m.Role, "content": string(m.Content)}
		if m.Name != "" {
			mm["name"] = m.Name
		}
		if m.ToolCallID != "" {
			mm["tool_call_id"] = m.ToolCallID
		}
		list[i] = mm
	}
	// gonja flattens errors from functions into strings, so the message a
	// template raises is recorded here to keep it apart from engine failures.
	var raised *TemplateError
	ctx := exec.NewContext(map[string]any{
		"raise_exception": func(msg string) (string, error) {
			if raised == nil {
				raised = &TemplateError{Msg: msg}
			}
			return "", raised
		},
		"messages":              list,
		"add_generation_prompt": addGenerationPrompt,
		"bos_token":             bos,
		"eos_token":             eos,
	})
	s, err := t.tmpl.ExecuteToString(ctx)
	if err != nil {
		if raised != nil {
			return "", raised
		}
		return "", fmt.Errorf("chat template failed: %w", err)
	}
	return s, nil
}

// Builtin returns the source of a built-in template: "chatml", "llama2" or
// "llama3". It returns "" for other names.
func Builtin(name string) string { return builtins[name] }

// BuiltinNames lists the built-in templates.
func BuiltinNames() []string { return []string{"chatml", "llama2", "llama3"} }

var builtins = map[string]string{
	// ChatML, as used by Qwen2 and SmolLM2 (without their default system prompt).
	"chatml": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
	// Meta's Llama-2-chat template.
	"llama2": "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
	// Meta's Llama-3-Instruct template.
	"llama3": "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
}
