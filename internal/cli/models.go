package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/llmo/llmo/internal/artifact"
	"github.com/llmo/llmo/internal/config"
)

type modelsConfig struct {
	Storage string `flag:"storage" env:"LLMO_STORAGE" default:"http://127.0.0.1:8003" help:"storage service URL"`
	JSON    bool   `flag:"json" help:"print the storage service's JSON"`
}

func init() {
	config.Register(modelsConfig{})
	Register("models", runModels)
}

// runModels is `llmo models`: the models in the storage service with their
// metadata.
func runModels(ctx context.Context, env *Env, args []string) error {
	var cfg modelsConfig
	rest, err := LoadConfig(env, "models", "llmo models [--storage URL] [--json]", &cfg, args)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return UsageError{fmt.Errorf("models takes no arguments")}
	}
	list, err := (&artifact.Client{Base: cfg.Storage}).Models(ctx)
	if err != nil {
		return err
	}
	if cfg.JSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tARCH\tPARAMS\tQUANT\tCTX\tTOKENIZER\tSIZE\tDIGEST")
	for _, m := range list.Models {
		arch, params, quant, ctxLen, tok := "?", "?", "?", "?", "?"
		if c := m.Config; c != nil {
			arch, params, quant, ctxLen, tok = c.Architecture, human(c.Parameters, 1000, ""), c.Quantization, fmt.Sprint(c.ContextLength), c.Tokenizer
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, arch, params, quant, ctxLen, tok,
			human(m.Size, 1024, "B"), strings.TrimPrefix(m.BlobDigest, "sha256:")[:min(12, len(strings.TrimPrefix(m.BlobDigest, "sha256:")))])
	}
	return tw.Flush()
}

// human prints n with a K/M/G suffix in the given base.
func human(n int64, base float64, unit string) string {
	v := float64(n)
	for _, s := range []string{"", "K", "M", "G", "T"} {
		if v < base || s == "T" {
			if s == "" {
				return fmt.Sprintf("%d%s", n, unit)
			}
			return fmt.Sprintf("%.1f%s%s", v, s, unit)
		}
		v /= base
	}
	return fmt.Sprint(n)
}
