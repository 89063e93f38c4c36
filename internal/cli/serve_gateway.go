package cli

import (
	"context"
	"runtime/debug"

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
	// The gateway's live heap is small and its garbage is per-request
	// headers and buffers: collecting less often buys about 10% throughput
	// for little memory. GOGC set in the environment still wins.
	if env.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	g, err := gateway.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer g.Close()
	return g.ListenAndServe(ctx)
}
