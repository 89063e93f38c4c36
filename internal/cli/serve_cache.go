package cli

import (
	"context"
	"fmt"

	"github.com/llmo/llmo/internal/cache"
)

func init() { RegisterServe("cache", serveCache) }

// serveCache runs `llmo serve cache [--port N] [--redis URL] [--max-bytes N]`.
func serveCache(ctx context.Context, env *Env, args []string) error {
	var cfg cache.Config
	rest, err := LoadConfig(env, "llmo serve cache", "llmo serve cache [--port N] [--redis URL] [--max-bytes N]", &cfg, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return UsageError{fmt.Errorf("serve cache takes no arguments, got %q", rest)}
	}
	log, err := Logger(env, cfg.Common)
	if err != nil {
		return err
	}
	return cache.Run(ctx, cfg, log)
}
