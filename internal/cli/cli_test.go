package cli

import (
	"context"
	"strings"
	"testing"
)

// TestEveryHelp: every command and serve target answers --help with exit 0
// and a usage line, and never starts anything.
func TestEveryHelp(t *testing.T) {
	var names [][]string
	for _, c := range commands {
		names = append(names, []string{c.name})
	}
	for _, target := range serveNames {
		names = append(names, []string{"serve", target})
	}
	for _, n := range names {
		env, out, errb := testEnv(nil)
		code := Main(context.Background(), append(append([]string{}, n...), "--help"), env)
		text := out.String() + errb.String()
		if code != 0 || !strings.Contains(strings.ToLower(text), "usage") {
			t.Errorf("llmo %s --help: exit %d, output %q", strings.Join(n, " "), code, text)
		}
	}
}

func TestVersion(t *testing.T) {
	env, out, _ := testEnv(nil)
	if code := Main(context.Background(), []string{"version"}, env); code != 0 || !strings.HasPrefix(out.String(), "llmo ") {
		t.Fatalf("exit %d, output %q", code, out.String())
	}
}

// TestServeBadConfigNamesKey: a bad flag or environment value stops every
// service with exit 2 and a message naming the key, before anything starts.
func TestServeBadConfigNamesKey(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"serve", "gateway", "--port", "eighty"}, nil, "-port"},
		{[]string{"serve", "gateway"}, map[string]string{"API_PORT": "x"}, "API_PORT"},
		{[]string{"serve", "gateway", "--balancer", "random"}, nil, "--balancer"},
		{[]string{"serve", "model", "--model", "m.gguf", "--max-batch", "0"}, nil, "--max-batch"},
		{[]string{"serve", "model"}, map[string]string{"MODEL_PATH": "m.gguf", "USE_INT8": "maybe"}, "USE_INT8"},
		{[]string{"serve", "cache"}, map[string]string{"CACHE_PORT": "-"}, "CACHE_PORT"},
		{[]string{"serve", "cache", "--redis", "http://x"}, nil, "--redis"},
		{[]string{"serve", "storage", "--max-upload-bytes", "0"}, nil, "--max-upload-bytes"},
		{[]string{"serve", "storage"}, map[string]string{"DRAIN_TIMEOUT": "soon"}, "DRAIN_TIMEOUT"},
		{[]string{"serve", "all"}, map[string]string{"LOG_FORMAT": "xml", "MODEL_PATH": "m.gguf"}, "log-format"},
		{[]string{"serve", "gateway", "--no-such-flag"}, nil, "no-such-flag"},
		{[]string{"up", "--replicas", "99"}, nil, "--replicas"},
	}
	for _, c := range cases {
		env, _, errb := testEnv(c.env)
		code := Main(context.Background(), c.args, env)
		if code != 2 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("llmo %s (env %v): exit %d, stderr %q; want exit 2 naming %q", strings.Join(c.args, " "), c.env, code, errb.String(), c.want)
		}
	}
}

func TestUnknownCommandAndTarget(t *testing.T) {
	env, _, errb := testEnv(nil)
	if code := Main(context.Background(), []string{"frobnicate"}, env); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("exit %d, %q", code, errb.String())
	}
	env, _, errb = testEnv(nil)
	if code := Main(context.Background(), []string{"serve", "toaster"}, env); code != 2 || !strings.Contains(errb.String(), "unknown target") {
		t.Fatalf("exit %d, %q", code, errb.String())
	}
}
