package cli

import (
	"context"
	"fmt"

	"github.com/llmo/llmo/internal/modelsvc"
)

func init() { RegisterServe("model", serveModel) }

const serveModelUsage = "llmo serve model --model FILE|DIR|NAME:TAG [--model ...] [--port N] [--int8] [--threads N] [--max-batch N] [--max-queue N] [--ctx N] [--chat-template NAME|FILE]"

// serveModel runs `llmo serve model`: it loads the models, serves the
// OpenAI API until SIGTERM, drains and exits.
func serveModel(ctx context.Context, env *Env, args []string) error {
	var cfg modelsvc.Config
	rest, err := LoadConfig(env, "llmo serve model", serveModelUsage, &cfg, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return UsageError{fmt.Errorf("serve model takes no positional arguments, got %q (use --model)", rest)}
	}
	log, err := Logger(env, cfg.Common)
	if err != nil {
		return err
	}
	svc, err := modelsvc.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	return svc.Server().ListenAndServe(ctx, cfg.Port)
}
