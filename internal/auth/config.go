package auth

import (
	"fmt"
	"strings"
)

// Config is the auth layer's configuration. The gateway embeds it in its own
// Config, so every field is a flag and an environment variable. The keys
// themselves are read from the environment or a file, never from flags, so
// they do not show up in `ps`.
type Config struct {
	Mode             string `flag:"auth" env:"LLMO_AUTH" default:"on" help:"API key auth: on, or off for local use (everyone is the anonymous principal)"`
	KeysFile         string `flag:"api-keys-file" env:"API_KEYS_FILE" help:"YAML or JSON file of API keys with per-key models and quotas (see docs/auth.md)"`
	Keys             string `env:"LLMO_API_KEYS" help:"API keys as name:key[:model|model...] entries separated by commas or whitespace"`
	AdminKey         string `env:"LLMO_ADMIN_KEY" help:"key that guards /admin/* endpoints"`
	DefaultRPM       int    `flag:"key-rpm" env:"LLMO_KEY_RPM" default:"0" help:"requests/minute for keys that set none (0 = unlimited)"`
	DefaultTPM       int    `flag:"key-tpm" env:"LLMO_KEY_TPM" default:"0" help:"tokens/minute for keys that set none (0 = unlimited)"`
	DefaultMaxTokens int    `flag:"quota-default-max-tokens" env:"LLMO_QUOTA_DEFAULT_MAX_TOKENS" default:"1024" help:"completion tokens reserved against tokens/minute when a request sets no max_tokens"`
}

// Enabled reports whether keys are checked. An empty Mode means on: only an
// explicit "off" opens the gateway.
func (c *Config) Enabled() bool {
	return !strings.EqualFold(strings.TrimSpace(c.Mode), "off")
}

// Validate checks the values that do not need the key file.
func (c *Config) Validate() error {
	switch strings.ToLower(strings.TrimSpace(c.Mode)) {
	case "", "on", "off", "true", "false":
	default:
		return fmt.Errorf("--auth %q: want on or off", c.Mode)
	}
	if strings.EqualFold(strings.TrimSpace(c.Mode), "false") {
		c.Mode = "off"
	}
	if c.DefaultRPM < 0 || c.DefaultTPM < 0 {
		return fmt.Errorf("--key-rpm and --key-tpm must not be negative")
	}
	if c.DefaultMaxTokens < 1 {
		return fmt.Errorf("--quota-default-max-tokens must be at least 1")
	}
	return nil
}
