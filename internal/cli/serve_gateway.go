package cli

import (
	"context"

	"github.com/llmo/llmo/internal/gateway"
)

func init() { RegisterServe("gateway", runServeGateway) }

func runServeGateway(ctx context.Context, env *Env, args []string) error {
	var cfg gateway.Config
	if _, err := LoadConfig(env, "llmo serve gateway", "llmo serve gateway [--port N] --replica URL [--replica URL ...] [--cache URL] [--storage URL] [--config FILE]", &cfg, args); err != nil {
		return err
	}
	log, err := Logger(env, cfg.Common)
	if err != nil {
		return err
	}
	g, err := gateway.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer g.Close()
	return g.ListenAndServe(ctx)
}
