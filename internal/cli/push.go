package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/llmo/llmo/internal/artifact"
	"github.com/llmo/llmo/internal/config"
)

// transferConfig is shared by push, pull and models.
type transferConfig struct {
	Storage   string `flag:"storage" env:"LLMO_STORAGE" help:"storage service URL for NAME:TAG references, such as http://127.0.0.1:8003"`
	Token     string `flag:"token" env:"STORAGE_PUSH_TOKEN" help:"bearer token the storage service requires for pushes"`
	CacheDir  string `flag:"cache-dir" env:"LLMO_MODEL_CACHE" help:"local model cache by digest (default ~/.cache/llmo/models)"`
	HFBaseURL string `flag:"hf-base-url" env:"LLMO_HF_BASE_URL" default:"https://huggingface.co" help:"Hugging Face base URL for hf:// references"`
	HFToken   string `flag:"hf-token" env:"HF_TOKEN" help:"Hugging Face access token (sent to the hub only)"`
	Progress  bool   `flag:"progress" env:"LLMO_PROGRESS" help:"show progress bars even when stderr is not a terminal"`
}

func init() {
	config.Register(transferConfig{})
	Register("push", runPush)
}

func (c *transferConfig) options(env *Env) artifact.ResolveOptions {
	return artifact.ResolveOptions{
		StorageURL: c.Storage, CacheDir: c.CacheDir, HFBaseURL: c.HFBaseURL,
		Token: c.Token, HFToken: c.HFToken, Progress: progressWriter(env, c.Progress),
	}
}

// progressWriter is stderr when it is a terminal (or --progress), else nil:
// bars in logs and pipes are noise.
func progressWriter(env *Env, force bool) io.Writer {
	if force {
		return env.Stderr
	}
	if f, ok := env.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return env.Stderr
	}
	return nil
}

// runPush is `llmo push FILE REF`.
func runPush(ctx context.Context, env *Env, args []string) error {
	var cfg transferConfig
	rest, err := LoadConfig(env, "push", "llmo push [--storage URL] [--token T] FILE REF  (REF: oci://HOST[:PORT]/REPO:TAG or NAME:TAG)", &cfg, args)
	if err != nil {
		return err
	}
	if len(rest) != 2 {
		return UsageError{fmt.Errorf("want FILE REF, got %d arguments", len(rest))}
	}
	d, err := artifact.Push(ctx, rest[0], rest[1], cfg.options(env))
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "pushed %s %s\n", rest[1], d)
	return nil
}
