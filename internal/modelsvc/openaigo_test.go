package modelsvc

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestOpenAIGoClient drives the service with github.com/openai/openai-go,
// the official Go SDK: chat and completions, streamed and not, models,
// embeddings and a typed error.
func TestOpenAIGoClient(t *testing.T) {
	ts := startService(t, "--model", stories(t), "--chat-template", "llama3")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := openai.NewClient(option.WithBaseURL(ts.URL+"/v1/"), option.WithAPIKey("sk-test"), option.WithMaxRetries(0))

	models, err := c.Models.List(ctx)
	if err != nil || len(models.Data) != 1 || models.Data[0].ID != "stories260K" {
		t.Fatalf("models: %v %+v", err, models)
	}

	params := openai.ChatCompletionNewParams{
		Model:       "stories260K",
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Tell a story."), openai.UserMessage("Once upon a time")},
		MaxTokens:   openai.Int(10),
		Temperature: openai.Float(0),
		Logprobs:    openai.Bool(true),
		TopLogprobs: openai.Int(2),
	}
	chat, err := c.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if len(chat.Choices) != 1 || chat.Choices[0].Message.Content == "" || chat.Usage.CompletionTokens != 10 || chat.Choices[0].FinishReason != "length" {
		t.Fatalf("chat: %+v", chat)
	}
	lp := chat.Choices[0].Logprobs.Content
	if len(lp) != 10 || len(lp[0].TopLogprobs) != 2 || lp[0].Logprob > 0 {
		t.Fatalf("logprobs: %+v", lp)
	}
	// Greedy: the best alternative is the token chosen.
	if lp[0].TopLogprobs[0].Token != lp[0].Token && lp[0].TopLogprobs[1].Token != lp[0].Token {
		t.Fatalf("chosen token %q not among top %+v", lp[0].Token, lp[0].TopLogprobs)
	}

	params.Logprobs, params.TopLogprobs = openai.Bool(false), openai.Int(0)
	params.StreamOptions.IncludeUsage = openai.Bool(true)
	stream := c.Chat.Completions.NewStreaming(ctx, params)
	acc := openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != chat.Choices[0].Message.Content {
		t.Fatalf("streamed %q, non-streamed %q", got, chat.Choices[0].Message.Content)
	}
	if acc.Usage.CompletionTokens != 10 {
		t.Fatalf("streamed usage: %+v", acc.Usage)
	}

	comp, err := c.Completions.New(ctx, openai.CompletionNewParams{
		Model:     "stories260K",
		Prompt:    openai.CompletionNewParamsPromptUnion{OfArrayOfStrings: []string{"Once upon a time", "The cat"}},
		MaxTokens: openai.Int(5), Temperature: openai.Float(0), Stop: openai.CompletionNewParamsStopUnion{OfString: openai.String("\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(comp.Choices) != 2 || comp.Choices[0].Text == comp.Choices[1].Text || comp.Usage.PromptTokens < 4 {
		t.Fatalf("completions: %+v", comp)
	}
	cs := c.Completions.NewStreaming(ctx, openai.CompletionNewParams{
		Model: "stories260K", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon a time")},
		MaxTokens: openai.Int(5), Temperature: openai.Float(0),
	})
	var sb strings.Builder
	for cs.Next() {
		for _, ch := range cs.Current().Choices {
			sb.WriteString(ch.Text)
		}
	}
	if err := cs.Err(); err != nil || sb.String() != comp.Choices[0].Text {
		t.Fatalf("streamed completion %q (%v), want %q", sb.String(), err, comp.Choices[0].Text)
	}

	emb, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "stories260K", Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a dog", "a dog", "the moon"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	dot := func(a, b []float64) (s float64) {
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	e0, e1, e2 := emb.Data[0].Embedding, emb.Data[1].Embedding, emb.Data[2].Embedding
	if math.Abs(dot(e0, e0)-1) > 1e-3 || math.Abs(dot(e0, e1)-1) > 1e-3 || dot(e0, e2) > 0.9999 {
		t.Fatalf("embeddings: |e0|²=%v e0·e1=%v e0·e2=%v", dot(e0, e0), dot(e0, e1), dot(e0, e2))
	}

	_, err = c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "missing", Messages: params.Messages})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" || apiErr.Param != "model" {
		t.Fatalf("unknown model: %v", err)
	}
}
