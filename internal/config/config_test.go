package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type common struct {
	LogFormat string `flag:"log-format" env:"LOG_FORMAT" default:"text" help:"text or json"`
}

type testConfig struct {
	common
	Port     int           `flag:"port" env:"API_PORT" default:"8000" help:"port"`
	Int8     bool          `flag:"int8" env:"USE_INT8" help:"int8"`
	Model    []string      `flag:"model" env:"MODEL_PATH" help:"models"`
	Drain    time.Duration `flag:"drain-timeout" env:"DRAIN_TIMEOUT" default:"30s" help:"drain"`
	Temp     float64       `flag:"temperature" env:"TEMPERATURE" default:"0.8" help:"t"`
	NoEnvVar string        `flag:"only-flag" help:"x"`
}

func (c *testConfig) Validate() error {
	if c.Port < 0 || c.Port > 65535 {
		return errors.New("--port must be in [0, 65535]")
	}
	return nil
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeDotEnv(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedence(t *testing.T) {
	dot := writeDotEnv(t, "API_PORT=7000\nUSE_INT8=true\nLOG_FORMAT=json\nDRAIN_TIMEOUT=5s\n")
	cases := []struct {
		name     string
		args     []string
		env      map[string]string
		dotenv   string
		wantPort int
		wantInt8 bool
		wantLog  string
		wantDr   time.Duration
	}{
		{"defaults", nil, nil, "", 8000, false, "text", 30 * time.Second},
		{".env over defaults", nil, nil, dot, 7000, true, "json", 5 * time.Second},
		{"env over .env", nil, map[string]string{"API_PORT": "7500", "USE_INT8": "false"}, dot, 7500, false, "json", 5 * time.Second},
		{"flag over env", []string{"--port", "9000", "--int8"}, map[string]string{"API_PORT": "7500", "USE_INT8": "false"}, dot, 9000, true, "json", 5 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cfg testConfig
			if _, err := Load("test", &cfg, Source{Args: c.args, Lookup: env(c.env), DotEnv: c.dotenv}); err != nil {
				t.Fatal(err)
			}
			if cfg.Port != c.wantPort || cfg.Int8 != c.wantInt8 || cfg.LogFormat != c.wantLog || cfg.Drain != c.wantDr {
				t.Fatalf("got port=%d int8=%v log=%s drain=%v", cfg.Port, cfg.Int8, cfg.LogFormat, cfg.Drain)
			}
		})
	}
}

func TestRepeatableFlagReplacesEnvList(t *testing.T) {
	var cfg testConfig
	_, err := Load("test", &cfg, Source{Args: []string{"--model", "a.gguf", "--model", "b.gguf"}, Lookup: env(map[string]string{"MODEL_PATH": "x.gguf,y.gguf"})})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Model, ",") != "a.gguf,b.gguf" {
		t.Fatalf("model = %v", cfg.Model)
	}
	cfg = testConfig{}
	if _, err := Load("test", &cfg, Source{Lookup: env(map[string]string{"MODEL_PATH": "x.gguf, y.gguf"})}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Model, ",") != "x.gguf,y.gguf" {
		t.Fatalf("model from env = %v", cfg.Model)
	}
}

func TestStrictErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		env    map[string]string
		dotenv string
		want   string
	}{
		{"bad flag value", []string{"--port", "abc"}, nil, "", "-port"},
		{"unknown flag", []string{"--prot", "1"}, nil, "", "prot"},
		{"bad env int", nil, map[string]string{"API_PORT": "eighty"}, "", "API_PORT"},
		{"bad env bool", nil, map[string]string{"USE_INT8": "yes please"}, "", "USE_INT8"},
		{"bad env duration", nil, map[string]string{"DRAIN_TIMEOUT": "5 parsecs"}, "", "DRAIN_TIMEOUT"},
		{"negative duration", []string{"--drain-timeout", "-1s"}, nil, "", "drain-timeout"},
		{"unknown .env key", nil, nil, "API_PROT=1\n", "API_PROT"},
		{"bad .env value", nil, nil, "API_PORT=x\n", "API_PORT"},
		{"validation", []string{"--port", "70000"}, nil, "", "--port"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := Source{Args: c.args, Lookup: env(c.env)}
			if c.dotenv != "" {
				src.DotEnv = writeDotEnv(t, c.dotenv)
			}
			var cfg testConfig
			_, err := Load("test", &cfg, src)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not name %q", err, c.want)
			}
		})
	}
}

func TestDotEnvAcceptsOtherServicesKeys(t *testing.T) {
	type other struct {
		Redis string `flag:"redis" env:"REDIS_URL"`
	}
	Register(other{})
	var cfg testConfig
	if _, err := Load("test", &cfg, Source{DotEnv: writeDotEnv(t, "REDIS_URL=redis://x\nCOMPOSE_PROJECT_NAME=llmo\n")}); err != nil {
		t.Fatal(err)
	}
}

func TestHelpListsFlagsAndEnv(t *testing.T) {
	var buf bytes.Buffer
	var cfg testConfig
	_, err := Load("test", &cfg, Source{Args: []string{"--help"}, Output: &buf, Usage: "llmo test [flags]"})
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"Usage: llmo test", "--port N", "env API_PORT", "default 8000", "--int8"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestPositionalArgs(t *testing.T) {
	var cfg testConfig
	rest, err := Load("test", &cfg, Source{Args: []string{"--port", "1", "hello", "world"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rest, " ") != "hello world" {
		t.Fatalf("rest = %v", rest)
	}
}
