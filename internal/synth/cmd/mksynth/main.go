// Command mksynth writes a random-weight llama GGUF model of a named or
// custom shape, for benchmarks:
//
//	go run ./internal/synth/cmd/mksynth -shape 110m -type q8_0 -o /tmp/s110m.gguf
//
// With -tokenizer FILE.gguf the tokenizer metadata is copied from that model
// (its vocabulary size must match); by default it is taken from
// ../shared/models/synth-15m-q8_0.gguf when the vocabulary is 32000.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/llmo/llmo/internal/gguf"
	"github.com/llmo/llmo/internal/synth"
	"github.com/llmo/llmo/internal/testenv"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mksynth:", err)
		os.Exit(1)
	}
}

func run() error {
	shape := flag.String("shape", "110m", "260k, 15m or 110m")
	typ := flag.String("type", "q8_0", "f32, f16 or q8_0")
	out := flag.String("o", "", "output file")
	tok := flag.String("tokenizer", "", "GGUF model to copy the tokenizer from")
	seed := flag.Uint64("seed", 1, "weight seed")
	flag.Parse()
	s, ok := synth.Shapes[strings.ToLower(*shape)]
	if !ok || *out == "" {
		flag.Usage()
		return fmt.Errorf("need -o and a known -shape")
	}
	t, ok := map[string]gguf.Type{"f32": gguf.TypeF32, "f16": gguf.TypeF16, "q8_0": gguf.TypeQ8_0}[strings.ToLower(*typ)]
	if !ok {
		return fmt.Errorf("unknown -type %q", *typ)
	}
	o := synth.Options{Type: t, Seed: *seed, Name: "synth-" + *shape}
	if *tok == "" && s.Vocab == 32000 {
		*tok = filepath.Join(testenv.RepoRoot(), "..", "shared", "models", "synth-15m-q8_0.gguf")
	}
	if *tok != "" {
		f, err := gguf.Open(*tok)
		if err != nil {
			return err
		}
		defer f.Close()
		o.Tokenizer = f
	}
	w, err := synth.Build(s, o)
	if err != nil {
		return err
	}
	if err := w.WriteFile(*out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s: %s shape, %s, %.1fM parameters\n", *out, *shape, t, float64(s.Params())/1e6)
	return nil
}
