package api

import (
	"encoding/json"
	"time"
)

// This file holds the Ollama API's wire types (https://github.com/ollama/ollama/blob/main/docs/api.md),
// which the gateway translates to and from the OpenAI API.

// OllamaOptions are the model options of an Ollama request. Only the fields
// that map to OpenAI sampling parameters are decoded; Ollama's runner knobs
// (num_ctx, num_gpu, num_thread, mirostat, ...) are accepted and ignored.
type OllamaOptions struct {
	Temperature      *float64   `json:"temperature,omitempty"`
	TopP             *float64   `json:"top_p,omitempty"`
	TopK             *int       `json:"top_k,omitempty"`
	MinP             *float64   `json:"min_p,omitempty"`
	Seed             *int64     `json:"seed,omitempty"`
	NumPredict       *int       `json:"num_predict,omitempty"` // -1 infinite, -2 fill the context
	Stop             StringList `json:"stop,omitempty"`
	RepeatPenalty    *float64   `json:"repeat_penalty,omitempty"`
	PresencePenalty  *float64   `json:"presence_penalty,omitempty"`
	FrequencyPenalty *float64   `json:"frequency_penalty,omitempty"`
	NumCtx           *int       `json:"num_ctx,omitempty"` // ignored: the replica owns its context size
}

// OllamaGenerateRequest is POST /api/generate.
type OllamaGenerateRequest struct {
	Model     string          `json:"model"`
	Prompt    string          `json:"prompt"`
	Suffix    string          `json:"suffix,omitempty"`
	System    string          `json:"system,omitempty"`
	Template  string          `json:"template,omitempty"`
	Context   []int           `json:"context,omitempty"` // deprecated; ignored
	Stream    *bool           `json:"stream,omitempty"`  // default true
	Raw       bool            `json:"raw,omitempty"`
	Format    json.RawMessage `json:"format,omitempty"` // "json" or a JSON schema
	Images    []string        `json:"images,omitempty"`
	KeepAlive json.RawMessage `json:"keep_alive,omitempty"`
	Options   json.RawMessage `json:"options,omitempty"`
	Think     json.RawMessage `json:"think,omitempty"`
}

// OllamaMessage is one chat message.
type OllamaMessage struct {
	Role      string           `json:"role"`
	Content   string           `json:"content"`
	Thinking  string           `json:"thinking,omitempty"`
	Images    []string         `json:"images,omitempty"`
	ToolCalls []OllamaToolCall `json:"tool_calls,omitempty"`
	ToolName  string           `json:"tool_name,omitempty"`
}

// OllamaToolCall is a tool call; unlike OpenAI's, its arguments are an
// object, not a JSON string.
type OllamaToolCall struct {
	Function OllamaToolCallFunction `json:"function"`
}

// OllamaToolCallFunction names the function and its arguments.
type OllamaToolCallFunction struct {
	Index     int             `json:"index,omitempty"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
}

// OllamaChatRequest is POST /api/chat.
type OllamaChatRequest struct {
	Model     string          `json:"model"`
	Messages  []OllamaMessage `json:"messages"`
	Tools     json.RawMessage `json:"tools,omitempty"`
	Stream    *bool           `json:"stream,omitempty"` // default true
	Format    json.RawMessage `json:"format,omitempty"`
	KeepAlive json.RawMessage `json:"keep_alive,omitempty"`
	Options   json.RawMessage `json:"options,omitempty"`
	Think     json.RawMessage `json:"think,omitempty"`
}

// OllamaMetrics are the timing and token counts on a final response (the
// responses embed a pointer, so that lines before the last omit them).
// Durations are in nanoseconds, as Ollama sends them.
type OllamaMetrics struct {
	TotalDuration      int64 `json:"total_duration"`
	LoadDuration       int64 `json:"load_duration"`
	PromptEvalCount    int   `json:"prompt_eval_count"`
	PromptEvalDuration int64 `json:"prompt_eval_duration"`
	EvalCount          int   `json:"eval_count"`
	EvalDuration       int64 `json:"eval_duration"`
}

// OllamaGenerateResponse is one line of /api/generate's answer (or the
// whole answer when not streamed).
type OllamaGenerateResponse struct {
	Model      string    `json:"model"`
	CreatedAt  time.Time `json:"created_at"`
	Response   string    `json:"response"`
	Done       bool      `json:"done"`
	DoneReason string    `json:"done_reason,omitempty"`
	Context    []int     `json:"context,omitempty"`
	*OllamaMetrics
}

// OllamaChatResponse is one line of /api/chat's answer.
type OllamaChatResponse struct {
	Model      string        `json:"model"`
	CreatedAt  time.Time     `json:"created_at"`
	Message    OllamaMessage `json:"message"`
	Done       bool          `json:"done"`
	DoneReason string        `json:"done_reason,omitempty"`
	*OllamaMetrics
}

// OllamaEmbedRequest is POST /api/embed. Input is a string or an array of
// strings.
type OllamaEmbedRequest struct {
	Model      string          `json:"model"`
	Input      StringList      `json:"input"`
	Truncate   *bool           `json:"truncate,omitempty"`
	Dimensions *int            `json:"dimensions,omitempty"`
	KeepAlive  json.RawMessage `json:"keep_alive,omitempty"`
	Options    json.RawMessage `json:"options,omitempty"`
}

// OllamaEmbedResponse is /api/embed's answer.
type OllamaEmbedResponse struct {
	Model           string      `json:"model"`
	Embeddings      [][]float32 `json:"embeddings"`
	TotalDuration   int64       `json:"total_duration,omitempty"`
	LoadDuration    int64       `json:"load_duration,omitempty"`
	PromptEvalCount int         `json:"prompt_eval_count,omitempty"`
}

// OllamaEmbeddingsRequest is the legacy POST /api/embeddings.
type OllamaEmbeddingsRequest struct {
	Model     string          `json:"model"`
	Prompt    string          `json:"prompt"`
	KeepAlive json.RawMessage `json:"keep_alive,omitempty"`
	Options   json.RawMessage `json:"options,omitempty"`
}

// OllamaEmbeddingsResponse is the legacy /api/embeddings answer.
type OllamaEmbeddingsResponse struct {
	Embedding []float32 `json:"embedding"`
}

// OllamaModelDetails describes a model's format and size.
type OllamaModelDetails struct {
	ParentModel       string   `json:"parent_model"`
	Format            string   `json:"format"`
	Family            string   `json:"family"`
	Families          []string `json:"families"`
	ParameterSize     string   `json:"parameter_size"`
	QuantizationLevel string   `json:"quantization_level"`
}

// OllamaModel is one entry of GET /api/tags.
type OllamaModel struct {
	Name       string             `json:"name"`
	Model      string             `json:"model"`
	ModifiedAt time.Time          `json:"modified_at"`
	Size       int64              `json:"size"`
	Digest     string             `json:"digest"`
	Details    OllamaModelDetails `json:"details"`
}

// OllamaTagsResponse is GET /api/tags' answer.
type OllamaTagsResponse struct {
	Models []OllamaModel `json:"models"`
}

// OllamaRunningModel is one entry of GET /api/ps.
type OllamaRunningModel struct {
	Name          string             `json:"name"`
	Model         string             `json:"model"`
	Size          int64              `json:"size"`
	Digest        string             `json:"digest"`
	Details       OllamaModelDetails `json:"details"`
	ExpiresAt     time.Time          `json:"expires_at"`
	SizeVRAM      int64              `json:"size_vram"`
	ContextLength int                `json:"context_length,omitempty"`
}

// OllamaPsResponse is GET /api/ps' answer.
type OllamaPsResponse struct {
	Models []OllamaRunningModel `json:"models"`
}

// OllamaShowRequest is POST /api/show; "name" is the older spelling of
// "model".
type OllamaShowRequest struct {
	Model   string `json:"model"`
	Name    string `json:"name"`
	Verbose bool   `json:"verbose,omitempty"`
}

// OllamaShowResponse is POST /api/show's answer.
type OllamaShowResponse struct {
	License      string             `json:"license,omitempty"`
	Modelfile    string             `json:"modelfile"`
	Parameters   string             `json:"parameters"`
	Template     string             `json:"template"`
	Details      OllamaModelDetails `json:"details"`
	ModelInfo    map[string]any     `json:"model_info"`
	Capabilities []string           `json:"capabilities"`
	ModifiedAt   time.Time          `json:"modified_at"`
}

// OllamaVersionResponse is GET /api/version's answer.
type OllamaVersionResponse struct {
	Version string `json:"version"`
}
