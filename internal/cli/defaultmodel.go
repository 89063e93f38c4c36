package cli

import (
	"context"
	"fmt"

	"github.com/llmo/llmo/internal/artifact"
)

// The default model for `llmo up` when no local GGUF exists: SmolLM2-135M-
// Instruct, Q8_0 (llama architecture, GPT-2 BPE tokenizer, chat template,
// Apache-2.0). The sha256 is pinned; a download that does not match it is
// refused.
const (
	defaultModelRef    = "hf://Mungert/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-q8_0.gguf"
	defaultModelDigest = "sha256:bc64cce8e1c11e4ed870633b557e04af718249c817c4cf8a6784116144ec3e28"
)

func init() { FetchDefaultModel = fetchDefaultModel }

func fetchDefaultModel(ctx context.Context, env *Env) (string, error) {
	path, digest, err := artifact.Resolve(ctx, defaultModelRef, artifact.ResolveOptions{
		CacheDir:  env.Getenv("LLMO_MODEL_CACHE"),
		HFBaseURL: env.Getenv("LLMO_HF_BASE_URL"),
		HFToken:   env.Getenv("HF_TOKEN"),
		Progress:  env.Stderr,
	})
	if err != nil {
		return "", err
	}
	if digest != defaultModelDigest {
		return "", fmt.Errorf("%s has digest %s, want the pinned %s; refusing it", defaultModelRef, digest, defaultModelDigest)
	}
	return path, nil
}
