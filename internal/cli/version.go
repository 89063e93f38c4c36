package cli

import (
	"context"
	"fmt"
	"runtime"

	"github.com/llmo/llmo/internal/buildinfo"
)

func init() { Register("version", runVersion) }

func runVersion(_ context.Context, env *Env, args []string) error {
	if wantsHelp(args) {
		fmt.Fprintln(env.Stdout, "Usage: llmo version\n\nPrints the llmo version, commit and Go runtime.")
		return nil
	}
	if len(args) > 0 {
		return UsageError{fmt.Errorf("version takes no arguments")}
	}
	commit := buildinfo.Commit()
	if commit == "" {
		commit = "unknown"
	}
	fmt.Fprintf(env.Stdout, "llmo %s (commit %s, %s, %s/%s)\n", buildinfo.Version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
