// Package cli implements the llmo command line. Each command lives in its own
// file and registers itself in init; a command in the table below that no
// file implements yet says so and exits 2.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/llmo/llmo/internal/config"
	"github.com/llmo/llmo/internal/service"
	"github.com/llmo/llmo/internal/telemetry"
)

// Env is the process environment a command runs in; tests substitute it.
type Env struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader
	Lookup         func(string) (string, bool)
	DotEnv         string // path of .env, or "" for none
}

// OSEnv is the real process environment.
func OSEnv() *Env {
	src := config.OS(nil)
	return &Env{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, Lookup: os.LookupEnv, DotEnv: src.DotEnv}
}

// Source builds a config.Source for args in this environment.
func (e *Env) Source(args []string, usage string) config.Source {
	return config.Source{Args: args, Lookup: e.Lookup, DotEnv: e.DotEnv, Usage: usage, Output: e.Stderr}
}

// Getenv returns an environment variable or "".
func (e *Env) Getenv(k string) string {
	if e.Lookup == nil {
		return ""
	}
	v, _ := e.Lookup(k)
	return v
}

// RunFunc runs a command with its arguments (after the command name).
type RunFunc func(ctx context.Context, env *Env, args []string) error

type command struct {
	name, args, summary string
	run                 RunFunc
}

// commands is the command-line contract of ../DESIGN.md, in help order.
var commands = []*command{
	{name: "serve", args: "TARGET [flags]", summary: "run a service: gateway, model, cache, storage or all (the monolith)"},
	{name: "up", args: "[--port N] [--replicas N] [--model FILE] [--monolith]", summary: "start the local stack: gateway, cache, storage and N model replicas"},
	{name: "run", args: "--model FILE [flags] PROMPT", summary: "generate text locally with the native engine"},
	{name: "bench", args: "--model FILE [flags]", summary: "measure prefill, decode and batched decode speed"},
	{name: "pull", args: "REF", summary: "download a model from the storage service, an OCI registry or Hugging Face"},
	{name: "push", args: "FILE REF", summary: "upload a GGUF model to the storage service or an OCI registry"},
	{name: "models", args: "[--storage URL]", summary: "list the models in the storage service"},
	{name: "status", args: "[--json]", summary: "show the running stack's topology and health"},
	{name: "version", args: "", summary: "print the llmo version"},
	{name: "healthcheck", args: "URL", summary: "exit 0 when URL answers 200 (container health checks)"},
}

// Register installs the implementation of a command from the table.
func Register(name string, run RunFunc) {
	for _, c := range commands {
		if c.name == name {
			c.run = run
			return
		}
	}
	panic("cli: Register of unknown command " + name)
}

// serve targets, implemented by RegisterServe.
var serveTargets = map[string]RunFunc{}
var serveNames = []string{"gateway", "model", "cache", "storage", "all"}

// RegisterServe installs `llmo serve NAME`.
func RegisterServe(name string, run RunFunc) { serveTargets[name] = run }

// UsageError is a bad invocation; Main exits 2 for it.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// ErrNotImplemented is returned by commands that are not built yet.
var ErrNotImplemented = errors.New("not implemented yet")

// Main runs the llmo command line and returns the process exit code.
func Main(ctx context.Context, args []string, env *Env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 && args[0] == "help" {
			return Main(ctx, []string{args[1], "--help"}, env)
		}
		usage(env.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-v" {
		args = []string{"version"}
	}
	var cmd *command
	for _, c := range commands {
		if c.name == args[0] {
			cmd = c
		}
	}
	if cmd == nil {
		fmt.Fprintf(env.Stderr, "llmo: unknown command %q\n\n", args[0])
		usage(env.Stderr)
		return 2
	}
	run := cmd.run
	if cmd.name == "serve" {
		run = serve
	}
	if run == nil {
		if wantsHelp(args[1:]) {
			fmt.Fprintf(env.Stdout, "Usage: llmo %s %s\n\n%s.\n\nThis command is not implemented yet.\n", cmd.name, cmd.args, cmd.summary)
			return 0
		}
		fmt.Fprintf(env.Stderr, "llmo %s: %v\n", cmd.name, ErrNotImplemented)
		return 2
	}
	return exitCode(env, "llmo "+cmd.name, run(ctx, env, args[1:]))
}

func exitCode(env *Env, prefix string, err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, config.ErrHelp):
		return 0
	case errors.Is(err, ErrNotImplemented):
		fmt.Fprintf(env.Stderr, "%s: %v\n", prefix, err)
		return 2
	}
	fmt.Fprintf(env.Stderr, "%s: %v\n", prefix, err)
	var ue UsageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return false
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "llmo: an LLM-serving platform (gateway, model service, cache, storage) in one binary.")
	fmt.Fprintln(w, "\nUsage: llmo COMMAND [flags]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'llmo COMMAND --help' for a command's flags. Every flag also reads from an")
	fmt.Fprintln(w, "environment variable and from ./.env; flags win over the environment, which wins over .env.")
}

func serve(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(env.Stdout, "Usage: llmo serve TARGET [flags]\n\nTargets:")
		for _, n := range serveNames {
			state := ""
			if serveTargets[n] == nil {
				state = " (not implemented yet)"
			}
			fmt.Fprintf(env.Stdout, "  %s%s\n", n, state)
		}
		fmt.Fprintln(env.Stdout, "\nRun 'llmo serve TARGET --help' for its flags.")
		if len(args) == 0 {
			return UsageError{errors.New("missing TARGET")}
		}
		return nil
	}
	known := false
	for _, n := range serveNames {
		known = known || n == args[0]
	}
	if !known {
		names := append([]string{}, serveNames...)
		sort.Strings(names)
		return UsageError{fmt.Errorf("unknown target %q; want one of %s", args[0], strings.Join(names, ", "))}
	}
	run := serveTargets[args[0]]
	if run == nil {
		if wantsHelp(args[1:]) {
			fmt.Fprintf(env.Stdout, "llmo serve %s is not implemented yet.\n", args[0])
			return nil
		}
		return fmt.Errorf("%s: %w", args[0], ErrNotImplemented)
	}
	return run(ctx, env, args[1:])
}

// LoadConfig fills cfg from args and the environment. A bad flag or value is
// a UsageError; --help prints the flags and returns config.ErrHelp.
func LoadConfig(env *Env, name, usage string, cfg any, args []string) ([]string, error) {
	rest, err := config.Load(name, cfg, env.Source(args, usage))
	if err != nil {
		if errors.Is(err, config.ErrHelp) {
			return nil, err
		}
		return nil, UsageError{err}
	}
	return rest, nil
}

// Logger builds the slog logger a service's Common config asks for.
func Logger(env *Env, c service.Common) (*slog.Logger, error) {
	return telemetry.NewLogger(env.Stderr, c.LogFormat, c.LogLevel)
}
