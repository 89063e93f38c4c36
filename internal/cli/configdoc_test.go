package cli

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/llmo/llmo/internal/cache"
	"github.com/llmo/llmo/internal/config"
	"github.com/llmo/llmo/internal/gateway"
	"github.com/llmo/llmo/internal/modelsvc"
	"github.com/llmo/llmo/internal/storage"
	"github.com/llmo/llmo/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the README's generated environment table")

type namedConfig struct {
	cmd string
	cfg any
}

func allConfigs() []namedConfig {
	return []namedConfig{
		{"serve gateway", gateway.Config{}}, {"serve model", modelsvc.Config{}}, {"serve cache", cache.Config{}},
		{"serve storage", storage.Config{}}, {"serve all", allConfig{}}, {"up", upConfig{}}, {"run", runConfig{}},
		{"bench", benchConfig{}}, {"status", statusConfig{}}, {"push/pull", transferConfig{}}, {"models", modelsConfig{}},
	}
}

// TestEnvKeysConsistent: one environment key means one thing everywhere.
// `llmo up` passes its environment to its children, so a key that is an int
// in one command and a URL list in another breaks them.
func TestEnvKeysConsistent(t *testing.T) {
	types := map[string]string{}
	where := map[string]string{}
	for _, nc := range allConfigs() {
		for _, f := range config.Describe(nc.cfg) {
			if f.Env == "" {
				continue
			}
			// A single string is a valid one-element list, so string and
			// []string may share a key.
			if prev, ok := types[f.Env]; ok && strings.TrimPrefix(prev, "[]") != strings.TrimPrefix(f.Type, "[]") {
				t.Errorf("%s is %s in %s but %s in %s", f.Env, prev, where[f.Env], f.Type, nc.cmd)
			}
			types[f.Env], where[f.Env] = f.Type, nc.cmd
		}
	}
}

const tableStart, tableEnd = "<!-- env-table-start -->", "<!-- env-table-end -->"

func envTable() string {
	type row struct{ env, flag, cmds, def, help string }
	rows := map[string]*row{}
	for _, nc := range allConfigs() {
		for _, f := range config.Describe(nc.cfg) {
			if f.Env == "" {
				continue
			}
			r, ok := rows[f.Env]
			if !ok {
				r = &row{env: f.Env, help: f.Help, def: f.Default}
				if f.Flag != "" {
					r.flag = "--" + f.Flag
				}
				rows[f.Env] = r
			}
			if !strings.Contains(r.cmds, nc.cmd) {
				if r.cmds != "" {
					r.cmds += ", "
				}
				r.cmds += nc.cmd
			}
		}
	}
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(tableStart + "\n| variable | flag | used by | default | meaning |\n|---|---|---|---|---|\n")
	for _, k := range keys {
		r := rows[k]
		def := r.def
		if def != "" {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s |\n", r.env, r.flag, r.cmds, def, strings.ReplaceAll(r.help, "|", "\\|"))
	}
	b.WriteString(tableEnd)
	return b.String()
}

// TestREADMEDocumentsEveryVariable keeps the README's environment table in
// step with the code (regenerate with `go test ./internal/cli -run README -update`).
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	path := filepath.Join(testenv.RepoRoot(), "README.md")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	i, j := strings.Index(s, tableStart), strings.Index(s, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %s ... %s markers", tableStart, tableEnd)
	}
	want := envTable()
	got := s[i : j+len(tableEnd)]
	if got != want {
		if *update {
			if err := os.WriteFile(path, []byte(s[:i]+want+s[j+len(tableEnd):]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatal("README.md's environment table is stale: run go test ./internal/cli -run README -update")
	}
}

// TestEnvExampleIsAccepted loads .env.example the way every command loads
// .env: strictly. Every key in it, commented out or not, must be known.
func TestEnvExampleIsAccepted(t *testing.T) {
	for _, nc := range allConfigs() {
		config.Register(nc.cfg)
	}
	path := filepath.Join(testenv.RepoRoot(), ".env.example")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	known := map[string]bool{}
	for _, k := range config.KnownKeys() {
		known[k] = true
	}
	re := regexp.MustCompile(`^#?\s*([A-Z][A-Z0-9_]*)=`)
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n++
		if !known[m[1]] && !strings.HasPrefix(m[1], "COMPOSE_") {
			t.Errorf(".env.example sets %s, which no llmo command knows", m[1])
		}
	}
	if n < 10 {
		t.Fatalf("only %d keys found in .env.example", n)
	}
	// And the uncommented part really loads.
	var cfg upConfig
	if _, err := config.Load("up", &cfg, config.Source{DotEnv: path}); err != nil {
		t.Fatalf("loading .env.example: %v", err)
	}
}
