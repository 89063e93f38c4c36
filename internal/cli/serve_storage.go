package cli

import (
	"context"

	"github.com/llmo/llmo/internal/storage"
)

func init() { RegisterServe("storage", runServeStorage) }

// runServeStorage is `llmo serve storage`: the OCI registry for models.
func runServeStorage(ctx context.Context, env *Env, args []string) error {
	var cfg storage.Config
	if _, err := LoadConfig(env, "serve storage", "llmo serve storage [--port N] [--root DIR] [--s3-endpoint URL --s3-bucket B ...]", &cfg, args); err != nil {
		return err
	}
	log, err := Logger(env, cfg.Common)
	if err != nil {
		return err
	}
	s, err := storage.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	return s.Server().ListenAndServe(ctx, cfg.Port)
}
