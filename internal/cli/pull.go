package cli

import (
	"context"
	"fmt"

	"github.com/llmo/llmo/internal/artifact"
)

func init() { Register("pull", runPull) }

// runPull is `llmo pull REF`: download, verify and cache a model, then
// print its digest and cached path.
func runPull(ctx context.Context, env *Env, args []string) error {
	var cfg transferConfig
	rest, err := LoadConfig(env, "pull", "llmo pull [--storage URL] [--cache-dir DIR] REF  (REF: NAME:TAG, oci://HOST[:PORT]/REPO:TAG or hf://ORG/REPO/FILE.gguf)", &cfg, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return UsageError{fmt.Errorf("want one REF, got %d arguments", len(rest))}
	}
	o := cfg.options(env)
	o.Refresh = true // an explicit pull asks the registry what the tag is now
	p, d, err := artifact.Resolve(ctx, rest[0], o)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s %s\n", d, p)
	return nil
}
