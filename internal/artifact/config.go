package artifact

import (
	"fmt"
	"os"
	"sort"

	"github.com/llmo/llmo/internal/artifact/modelfmt"
	"github.com/llmo/llmo/internal/gguf"
)

// llama.cpp's general.file_type values (enum llama_ftype) for the names
// people know models by.
var fileTypes = map[uint64]string{
	0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
	10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
	16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 32: "BF16",
}

// ConfigFromGGUF reads the model config blob's fields from a GGUF header.
func ConfigFromGGUF(path string) (*modelfmt.Config, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	return configFrom(f, st.Size()), nil
}

func configFrom(f *gguf.File, size int64) *modelfmt.Config {
	arch := f.Arch()
	c := &modelfmt.Config{Format: "gguf", Architecture: arch, Size: size}
	c.Name, _ = f.String("general.name")
	for _, t := range f.Tensors {
		c.Parameters += t.NumElements()
	}
	if n, ok := f.Uint(arch + ".context_length"); ok {
		c.ContextLength = int64(n)
	}
	c.Tokenizer, _ = f.String("tokenizer.ggml.model")
	c.ChatTemplate, _ = f.String("tokenizer.chat_template")
	if ft, ok := f.Uint("general.file_type"); ok {
		c.FileType = int64(ft)
		c.Quantization = fileTypes[ft]
	}
	if c.Quantization == "" {
		c.Quantization = dominantType(f)
	}
	return c
}

// dominantType names the tensor type holding the most elements, for files
// without a known general.file_type.
func dominantType(f *gguf.File) string {
	count := map[string]int64{}
	for _, t := range f.Tensors {
		count[t.Type.String()] += t.NumElements()
	}
	names := make([]string, 0, len(count))
	for n := range count {
		names = append(names, n)
	}
	sort.Strings(names)
	best := ""
	for _, n := range names {
		if best == "" || count[n] > count[best] {
			best = n
		}
	}
	if best == "" {
		return "unknown"
	}
	return fmt.Sprint(best)
}
