package cli

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

func init() { Register("healthcheck", runHealthcheck) }

// runHealthcheck is the container HEALTHCHECK: distroless images have no
// curl, so the binary probes a URL itself and exits 0 only on a 200.
func runHealthcheck(ctx context.Context, env *Env, args []string) error {
	if wantsHelp(args) {
		fmt.Fprintln(env.Stdout, "Usage: llmo healthcheck URL\n\nExits 0 when URL answers 200 within 3s (for container health checks).")
		return nil
	}
	if len(args) != 1 {
		return UsageError{fmt.Errorf("want exactly one URL")}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return UsageError{fmt.Errorf("bad URL %q: %w", args[0], err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d", args[0], resp.StatusCode)
	}
	return nil
}
