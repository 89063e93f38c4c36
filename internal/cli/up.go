package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/llmo/llmo/api"
	"github.com/llmo/llmo/internal/stack"
)

func init() { Register("up", runUp) }

type upConfig struct {
	Port          int      `flag:"port" env:"API_PORT" default:"8000" help:"gateway API port; cache, storage and replicas use the ports after it"`
	Replicas      int      `flag:"replicas" env:"MODEL_REPLICAS" default:"2" help:"number of model replicas"`
	Models        []string `flag:"model" env:"MODEL_PATH" help:"GGUF file or model reference, repeatable (default: first GGUF in ./models or ../shared/models, else a download)"`
	Monolith      bool     `flag:"monolith" env:"LLMO_MONOLITH" help:"run every service in this one process instead of one process per service"`
	DashboardPort int      `flag:"dashboard-port" env:"DASHBOARD_PORT" default:"8080" help:"gateway dashboard port (0 disables)"`
	Int8          bool     `flag:"int8" env:"USE_INT8" help:"quantize F32/F16 weights to Q8_0 at load"`
	Threads       int      `flag:"threads" env:"LLMO_THREADS" default:"0" help:"engine threads per replica (0 = cores / replicas)"`
	Redis         string   `flag:"redis" env:"REDIS_URL" help:"Redis URL for the cache service (default: in-memory)"`
	DataDir       string   `flag:"data-dir" env:"LLMO_DATA_DIR" default:".llmo" help:"where the local storage service keeps artifacts"`
	Extra         []string `flag:"model-arg" help:"extra argument passed to each model replica (repeatable)"`
}

func (c *upConfig) Validate() error {
	if c.Port <= 0 || c.Port > 65535-20 {
		return fmt.Errorf("--port %d out of range", c.Port)
	}
	if c.Replicas < 1 || c.Replicas > 10 {
		return fmt.Errorf("--replicas must be between 1 and 10")
	}
	if c.DashboardPort < 0 || c.DashboardPort > 65535 {
		return fmt.Errorf("--dashboard-port %d out of range", c.DashboardPort)
	}
	return nil
}

// Port layout of the local stack, relative to the gateway's --port.
const (
	cachePortOffset   = 2
	storagePortOffset = 3
	replicaPortOffset = 10
)

// FetchDefaultModel downloads the default model when no local GGUF exists.
// The storage package installs it (it owns Hugging Face import).
var FetchDefaultModel func(ctx context.Context, env *Env) (string, error)

func runUp(ctx context.Context, env *Env, args []string) error {
	var cfg upConfig
	rest, err := LoadConfig(env, "up", "llmo up [--port N] [--replicas N] [--model FILE] [--monolith]", &cfg, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return UsageError{fmt.Errorf("unexpected arguments %q", rest)}
	}
	log, err := Logger(env, defaultCommon())
	if err != nil {
		return err
	}
	models := cfg.Models
	if len(models) == 0 {
		m, err := findModel(ctx, env, "")
		if err != nil {
			return err
		}
		models = []string{m}
	}
	log.Info("models", "models", models)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	threads := cfg.Threads
	if threads == 0 {
		threads = max(1, numCPU()/cfg.Replicas)
	}
	host := "127.0.0.1"
	url := func(port int) string { return fmt.Sprintf("http://%s:%d", host, port) }
	cachePort, storagePort := cfg.Port+cachePortOffset, cfg.Port+storagePortOffset
	modelArgs := func(port int) []string {
		a := []string{"serve", "model", "--port", fmt.Sprint(port), "--threads", fmt.Sprint(threads)}
		for _, m := range models {
			a = append(a, "--model", m)
		}
		if cfg.Int8 {
			a = append(a, "--int8")
		}
		return append(a, cfg.Extra...)
	}
	var replicaURLs []string
	for i := 0; i < cfg.Replicas; i++ {
		replicaURLs = append(replicaURLs, url(cfg.Port+replicaPortOffset+i))
	}
	gwArgs := []string{"serve", "gateway", "--port", fmt.Sprint(cfg.Port), "--cache", url(cachePort), "--storage", url(storagePort),
		"--dashboard-port", fmt.Sprint(cfg.DashboardPort)}
	for _, u := range replicaURLs {
		gwArgs = append(gwArgs, "--replica", u)
	}
	cacheArgs := []string{"serve", "cache", "--port", fmt.Sprint(cachePort)}
	if cfg.Redis != "" {
		cacheArgs = append(cacheArgs, "--redis", cfg.Redis)
	}
	storageArgs := []string{"serve", "storage", "--port", fmt.Sprint(storagePort), "--root", filepath.Join(cfg.DataDir, "storage")}
	authEnv := []string{"LLMO_AUTH=" + envOr(env, "LLMO_AUTH", "off")}

	start := time.Now()
	if cfg.Monolith {
		args := []string{"serve", "all", "--port", fmt.Sprint(cfg.Port), "--threads", fmt.Sprint(numCPU()),
			"--dashboard-port", fmt.Sprint(cfg.DashboardPort), "--root", filepath.Join(cfg.DataDir, "storage")}
		for _, m := range models {
			args = append(args, "--model", m)
		}
		if cfg.Int8 {
			args = append(args, "--int8")
		}
		sup := &stack.Supervisor{Exe: exe, Out: env.Stderr, Log: log, StopTimeout: 35 * time.Second}
		defer sup.Stop()
		if err := sup.StartTier(ctx, stack.Proc{Name: "llmo", Args: args, Env: authEnv, ReadyURL: url(cfg.Port) + "/ready"}); err != nil {
			return err
		}
		printBanner(ctx, env, cfg, url, start, true)
		<-ctx.Done()
		return nil
	}

	sup := &stack.Supervisor{Exe: exe, Out: env.Stderr, Log: log, StopTimeout: 35 * time.Second}
	defer sup.Stop()
	if err := sup.StartTier(ctx,
		stack.Proc{Name: "storage", Args: storageArgs, ReadyURL: url(storagePort) + "/ready", Restart: true},
		stack.Proc{Name: "cache", Args: cacheArgs, ReadyURL: url(cachePort) + "/ready", Restart: true},
	); err != nil {
		return err
	}
	var replicas []stack.Proc
	for i, u := range replicaURLs {
		replicas = append(replicas, stack.Proc{Name: fmt.Sprintf("model-%d", i+1), Args: modelArgs(cfg.Port + replicaPortOffset + i),
			ReadyURL: u + "/ready", Restart: true})
	}
	if err := sup.StartTier(ctx, replicas...); err != nil {
		return err
	}
	if err := sup.StartTier(ctx, stack.Proc{Name: "gateway", Args: gwArgs, Env: authEnv, ReadyURL: url(cfg.Port) + "/ready", Restart: true}); err != nil {
		return err
	}
	printBanner(ctx, env, cfg, url, start, false)
	<-ctx.Done()
	fmt.Fprintln(env.Stderr, "llmo up: stopping...")
	return nil
}

// waitModels polls the gateway until it lists a model: the gateway can be
// ready before it has found a healthy replica.
func waitModels(ctx context.Context, base string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for firstModel(base).ID == "MODEL" && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func printBanner(ctx context.Context, env *Env, cfg upConfig, url func(int) string, start time.Time, monolith bool) {
	waitModels(ctx, url(cfg.Port))
	took := time.Since(start)
	mode := fmt.Sprintf("microservices, %d model replica(s)", cfg.Replicas)
	if monolith {
		mode = "monolith"
	}
	w := env.Stdout
	fmt.Fprintf(w, "\nllmo is up (%s) in %.1fs\n\n", mode, took.Seconds())
	fmt.Fprintf(w, "  API (OpenAI + Ollama)  %s\n", url(cfg.Port))
	if cfg.DashboardPort > 0 {
		fmt.Fprintf(w, "  dashboard              %s\n", url(cfg.DashboardPort))
	}
	if !monolith {
		fmt.Fprintf(w, "  cache service          %s\n", url(cfg.Port+cachePortOffset))
		fmt.Fprintf(w, "  storage service        %s\n", url(cfg.Port+storagePortOffset))
		for i := 0; i < cfg.Replicas; i++ {
			fmt.Fprintf(w, "  model replica %d        %s\n", i+1, url(cfg.Port+replicaPortOffset+i))
		}
	}
	m := firstModel(url(cfg.Port))
	fmt.Fprintf(w, "\nTry it:\n  curl %s/v1/completions -H 'Content-Type: application/json' \\\n", url(cfg.Port))
	fmt.Fprintf(w, "    -d '{\"model\":\"%s\",\"prompt\":\"Once upon a time\",\"max_tokens\":32}'\n", m.ID)
	if m.ChatTemplate {
		fmt.Fprintf(w, "  curl %s/v1/chat/completions -H 'Content-Type: application/json' \\\n", url(cfg.Port))
		fmt.Fprintf(w, "    -d '{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}],\"max_tokens\":32}'\n", m.ID)
	} else {
		fmt.Fprintf(w, "  (%s has no chat template, so use /v1/completions; chat needs a chat model or --model-arg=--chat-template=chatml)\n", m.ID)
	}
	fmt.Fprintln(w, "\nPress Ctrl-C to stop.")
}

func envOr(env *Env, k, def string) string {
	if v := env.Getenv(k); v != "" {
		return v
	}
	return def
}

// findModel picks the model for the local stack: the flag or MODEL_PATH, else
// the first GGUF file in ./models or ../shared/models, else the default
// download.
func findModel(ctx context.Context, env *Env, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	for _, dir := range []string{"models", filepath.Join("..", "shared", "models")} {
		matches, _ := filepath.Glob(filepath.Join(dir, "*.gguf"))
		sort.Strings(matches)
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() {
				abs, _ := filepath.Abs(m)
				return abs, nil
			}
		}
	}
	if FetchDefaultModel == nil {
		return "", errors.New("no model found: set MODEL_PATH or --model, or put a .gguf file in ./models")
	}
	fmt.Fprintln(env.Stderr, "llmo up: no local GGUF model found in ./models or ../shared/models; downloading the default model (needs internet)")
	p, err := FetchDefaultModel(ctx, env)
	if err != nil {
		return "", fmt.Errorf("downloading the default model: %w (set MODEL_PATH to use a local file)", err)
	}
	return p, nil
}

// firstModel asks the gateway for its models and returns the first, for the
// banner's curl lines.
func firstModel(base string) api.Model {
	unknown := api.Model{ID: "MODEL"}
	cl := &http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Get(base + "/v1/models")
	if err != nil {
		return unknown
	}
	defer resp.Body.Close()
	var list api.ModelList
	if json.NewDecoder(resp.Body).Decode(&list) != nil || len(list.Data) == 0 {
		return unknown
	}
	return list.Data[0]
}
