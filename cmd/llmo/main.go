// Command llmo is the single binary of the llmo LLM-serving platform.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/llmo/llmo/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.OSEnv())
	stop()
	os.Exit(code)
}
