package cli

import (
	"context"
	"fmt"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/llmo/llmo/internal/config"
	"github.com/llmo/llmo/internal/gateway"
	"github.com/llmo/llmo/internal/modelsvc"
	"github.com/llmo/llmo/internal/service"
	"github.com/llmo/llmo/internal/storage"
)

func init() { RegisterServe("all", serveAll) }

// allConfig is the monolith's configuration: the few knobs that matter on
// one machine. Every service keeps its own full config, read from the
// environment as usual; these flags override it.
type allConfig struct {
	service.Common
	Port          int      `flag:"port" env:"API_PORT" default:"8000" help:"gateway API port; storage uses port+3 and the model service port+10, on loopback"`
	DashboardPort int      `flag:"dashboard-port" env:"DASHBOARD_PORT" default:"8080" help:"dashboard port (0 disables)"`
	Models        []string `flag:"model" env:"MODEL_PATH" help:"GGUF file, directory or artifact ref (repeatable)"`
	Int8          bool     `flag:"int8" env:"USE_INT8" help:"quantize F32/F16 weights to Q8_0 at load"`
	Threads       int      `flag:"threads" env:"LLMO_THREADS" default:"0" help:"engine threads (0 = all cores)"`
	Root          string   `flag:"root" env:"STORAGE_ROOT" help:"storage directory (default ~/.local/share/llmo/storage)"`
	Cache         string   `flag:"cache" env:"LLMO_CACHE_URL" default:"memory" help:"response cache: memory (in-process), redis://..., a cache service URL, or empty for none"`
}

func (c *allConfig) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if c.Port <= 0 || c.Port > 65535-10 {
		return fmt.Errorf("--port %d out of range", c.Port)
	}
	if len(c.Models) == 0 {
		return fmt.Errorf("--model (or MODEL_PATH) is required")
	}
	return nil
}

const serveAllUsage = "llmo serve all --model FILE [--port N] [--dashboard-port N] [--int8] [--threads N] [--root DIR] [--cache memory|URL]"

// serveAll runs gateway, model service, storage and the response cache in
// one process: the monolith. The code and APIs are those of the
// microservices; only the network boundary moves (loopback inside one
// process, and the cache becomes an in-process store).
func serveAll(ctx context.Context, env *Env, args []string) error {
	var cfg allConfig
	rest, err := LoadConfig(env, "llmo serve all", serveAllUsage, &cfg, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return UsageError{fmt.Errorf("serve all takes no positional arguments, got %q", rest)}
	}
	log, err := Logger(env, cfg.Common)
	if err != nil {
		return err
	}
	storagePort, modelPort := cfg.Port+storagePortOffset, cfg.Port+replicaPortOffset
	loop := func(port int) string { return fmt.Sprintf("http://127.0.0.1:%d", port) }

	sub := func(name string, dst any, args ...string) error {
		// Each service reads its full config the usual way; the monolith's
		// flags are passed as that service's flags.
		_, err := config.Load(name, dst, env.Source(args, ""))
		if err != nil {
			return UsageError{fmt.Errorf("monolith %s config: %w", name, err)}
		}
		return nil
	}

	var sc storage.Config
	sargs := []string{"--port", fmt.Sprint(storagePort)}
	if cfg.Root != "" {
		sargs = append(sargs, "--root", cfg.Root)
	}
	if err := sub("storage", &sc, sargs...); err != nil {
		return err
	}
	margs := []string{"--port", fmt.Sprint(modelPort), "--threads", fmt.Sprint(cfg.Threads), "--storage", loop(storagePort)}
	for _, m := range cfg.Models {
		if abs, err := filepath.Abs(m); err == nil && fileExists(m) {
			m = abs
		}
		margs = append(margs, "--model", m)
	}
	if cfg.Int8 {
		margs = append(margs, "--int8")
	}
	var mc modelsvc.Config
	if err := sub("model", &mc, margs...); err != nil {
		return err
	}
	var gc gateway.Config
	if err := sub("gateway", &gc, "--port", fmt.Sprint(cfg.Port), "--dashboard-port", fmt.Sprint(cfg.DashboardPort),
		"--replica", loop(modelPort), "--storage", loop(storagePort), "--cache", cfg.Cache); err != nil {
		return err
	}
	// One shared Common (logging, timeouts, TLS) for every part; only the
	// gateway faces clients, so only it gets TLS.
	sc.Common, mc.Common, gc.Common = cfg.Common, cfg.Common, cfg.Common
	sc.Host, mc.Host = "127.0.0.1", "127.0.0.1"
	sc.TLSCert, sc.TLSKey, mc.TLSCert, mc.TLSKey = "", "", "", ""

	st, err := storage.New(ctx, sc, log)
	if err != nil {
		return err
	}
	ms, err := modelsvc.New(ctx, mc, log)
	if err != nil {
		return err
	}
	defer ms.Close()
	gw, err := gateway.New(ctx, gc, log)
	if err != nil {
		return err
	}
	defer gw.Close()
	log.Info("monolith", "api", loop(cfg.Port), "model", loop(modelPort), "storage", loop(storagePort), "cache", cfg.Cache)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return st.Server().ListenAndServe(gctx, storagePort) })
	g.Go(func() error { return ms.Server().ListenAndServe(gctx, modelPort) })
	g.Go(func() error { return gw.ListenAndServe(gctx) })
	return g.Wait()
}
