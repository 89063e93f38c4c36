package modelsvc

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/llmo/llmo/internal/chattmpl"
	"github.com/llmo/llmo/internal/service"
)

// Config is the model service's configuration (`llmo serve model`).
type Config struct {
	service.Common
	Models          []string      `flag:"model" env:"MODEL_PATH" help:"GGUF file, directory of .gguf files, or artifact ref (NAME:TAG, oci://..., hf://...); repeatable"`
	Int8            bool          `flag:"int8" env:"USE_INT8" help:"quantize F32/F16 weights to Q8_0 at load"`
	Threads         int           `flag:"threads" env:"LLMO_THREADS" default:"0" help:"worker threads for matrix products (0 = all cores)"`
	MaxBatch        int           `flag:"max-batch" env:"MAX_BATCH" default:"8" help:"sequences decoded together per model (KV cache slots)"`
	MaxQueue        int           `flag:"max-queue" env:"MAX_QUEUE" default:"64" help:"requests allowed to wait for a slot; more get 429"`
	CtxLen          int           `flag:"ctx" env:"CTX_LEN" default:"0" help:"context length per sequence (0 = the model's)"`
	Port            int           `flag:"port" env:"MODEL_PORT" default:"8001" help:"HTTP port"`
	ChatTemplate    string        `flag:"chat-template" env:"CHAT_TEMPLATE" help:"chat template override: chatml, llama2, llama3 or a Jinja file"`
	ServedModelName string        `flag:"served-model-name" env:"SERVED_MODEL_NAME" help:"model id clients use (default: file name without .gguf); one model only"`
	RequestTimeout  time.Duration `flag:"request-timeout" env:"REQUEST_TIMEOUT" default:"10m" help:"longest a request may run, queueing included"`
	WedgeTimeout    time.Duration `flag:"wedge-timeout" env:"WEDGE_TIMEOUT" default:"60s" help:"/health fails when the engine makes no progress this long with work waiting"`
	Gateway         string        `flag:"gateway" env:"LLMO_GATEWAY" help:"gateway URL to register with (heartbeats to GATEWAY/admin/replicas)"`
	AdvertiseURL    string        `flag:"advertise-url" env:"ADVERTISE_URL" help:"this replica's URL as the gateway should reach it (default http://HOST:PORT)"`
	HeartbeatTTL    time.Duration `flag:"heartbeat-ttl" env:"HEARTBEAT_TTL" default:"15s" help:"lease asked of the gateway; heartbeats go every third of it"`
	AdminKey        string        `flag:"gateway-admin-key" env:"LLMO_ADMIN_KEY" help:"bearer token for the gateway's admin API"`
	Storage         string        `flag:"storage" env:"LLMO_STORAGE" help:"storage service URL for NAME:TAG model refs"`
	ModelCache      string        `flag:"model-cache" env:"LLMO_MODEL_CACHE" help:"local cache of pulled models (default ~/.cache/llmo/models)"`
	HFBaseURL       string        `flag:"hf-base-url" env:"LLMO_HF_BASE_URL" help:"Hugging Face base URL for hf:// refs"`
	HFToken         string        `flag:"hf-token" env:"HF_TOKEN" help:"Hugging Face token for gated hf:// models"`
}

// Validate checks the configuration at start-up.
func (c *Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if len(c.Models) == 0 {
		return errors.New("--model (or MODEL_PATH) is required")
	}
	switch {
	case c.Threads < 0:
		return errors.New("--threads must not be negative")
	case c.MaxBatch < 1 || c.MaxBatch > 256:
		return fmt.Errorf("--max-batch %d: want 1..256", c.MaxBatch)
	case c.MaxQueue < 0:
		return errors.New("--max-queue must not be negative")
	case c.CtxLen < 0:
		return errors.New("--ctx must not be negative")
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("--port %d: want 0..65535", c.Port)
	case c.RequestTimeout <= 0:
		return errors.New("--request-timeout must be positive")
	case c.WedgeTimeout <= 0:
		return errors.New("--wedge-timeout must be positive")
	}
	if c.ServedModelName != "" && len(c.Models) > 1 {
		return errors.New("--served-model-name applies to a single --model")
	}
	if c.Gateway != "" {
		if err := checkURL(c.Gateway); err != nil {
			return fmt.Errorf("--gateway: %w", err)
		}
		if c.HeartbeatTTL < 3*time.Second {
			return errors.New("--heartbeat-ttl must be at least 3s")
		}
	}
	if c.AdvertiseURL != "" {
		if err := checkURL(c.AdvertiseURL); err != nil {
			return fmt.Errorf("--advertise-url: %w", err)
		}
	}
	if c.ChatTemplate != "" && chattmpl.Builtin(c.ChatTemplate) == "" && !fileExists(c.ChatTemplate) {
		return fmt.Errorf("--chat-template %q is neither a built-in (%v) nor a readable file", c.ChatTemplate, chattmpl.BuiltinNames())
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}
