package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/llmo/llmo/internal/testenv"
)

// hdr builds raw GGUF bytes field by field.
type hdr struct{ bytes.Buffer }

func (h *hdr) u32(v uint32) *hdr  { h.Write(binary.LittleEndian.AppendUint32(nil, v)); return h }
func (h *hdr) u64(v uint64) *hdr  { h.Write(binary.LittleEndian.AppendUint64(nil, v)); return h }
func (h *hdr) str(s string) *hdr  { h.u64(uint64(len(s))); h.WriteString(s); return h }
func (h *hdr) raw(b ...byte) *hdr { h.Write(b); return h }

func head(version uint32, nt, nkv uint64) *hdr {
	h := &hdr{}
	h.WriteString("GGUF")
	return h.u32(version).u64(nt).u64(nkv)
}

// tensorHead is a valid header with one F32 tensor "t" of the given dims at offset off.
func tensorHead(dims []uint64, typ uint32, off uint64) *hdr {
	h := head(3, 1, 0).str("t").u32(uint32(len(dims)))
	for _, d := range dims {
		h.u64(d)
	}
	return h.u32(typ).u64(off)
}

func TestParseHostile(t *testing.T) {
	deep := head(3, 0, 1).str("k").u32(vtArray)
	for i := 0; i < 20; i++ {
		deep.u32(vtArray).u64(1)
	}
	deep.u32(vtUint8).u64(0)
	padTo := func(h *hdr, n int) []byte { b := h.Bytes(); return append(b, make([]byte, max(0, n-len(b)))...) }

	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"magic", []byte("GGML\x03\x00\x00\x00"), "bad magic"},
		{"v1", head(1, 0, 0).Bytes(), "version 1 files are not supported"},
		{"v4", head(4, 0, 0).Bytes(), "unsupported version 4"},
		{"big endian", append([]byte("GGUF"), 0, 0, 0, 3), "big-endian"},
		{"no counts", []byte("GGUF\x03\x00\x00\x00"), "truncated"},
		{"huge tensor count", head(3, 1<<40, 0).Bytes(), "over the limit"},
		{"tensor count vs file", head(3, 1000, 0).Bytes(), "does not fit"},
		{"huge kv count", head(3, 0, math.MaxUint64).Bytes(), "over the limit"},
		{"kv count vs file", head(3, 0, 1000).Bytes(), "does not fit"},
		{"huge key", head(3, 0, 1).u64(1 << 62).raw(make([]byte, 16)...).Bytes(), "over the limit"},
		{"key past end", head(3, 0, 1).u64(100).raw(make([]byte, 16)...).Bytes(), "truncated"},
		{"huge string", head(3, 0, 1).str("k").u32(vtString).u64(1 << 40).Bytes(), "over the limit"},
		{"string past end", head(3, 0, 1).str("k").u32(vtString).u64(1 << 20).Bytes(), "truncated"},
		{"huge array", head(3, 0, 1).str("k").u32(vtArray).u32(vtUint64).u64(1 << 61).Bytes(), "over the limit"},
		{"array vs file", head(3, 0, 1).str("k").u32(vtArray).u32(vtUint64).u64(1 << 20).Bytes(), "does not fit"},
		{"string array vs file", head(3, 0, 1).str("k").u32(vtArray).u32(vtString).u64(1000).raw(make([]byte, 100)...).Bytes(), "does not fit"},
		{"unknown value type", head(3, 0, 1).str("k").u32(13).raw(make([]byte, 8)...).Bytes(), "unknown metadata value type"},
		{"unknown array type", head(3, 0, 1).str("k").u32(vtArray).u32(77).u64(0).Bytes(), "unknown array element type"},
		{"deep nesting", deep.Bytes(), "nested deeper"},
		{"bad bool", head(3, 0, 1).str("k").u32(vtBool).raw(7).Bytes(), "bool value"},
		{"duplicate key", head(3, 0, 2).str("k").u32(vtUint8).raw(1).str("k").u32(vtUint8).raw(2).Bytes(), "duplicate metadata key"},
		{"alignment 0", head(3, 0, 1).str(KeyAlignment).u32(vtUint32).u32(0).Bytes(), "power of two"},
		{"alignment 3", head(3, 0, 1).str(KeyAlignment).u32(vtUint32).u32(3).Bytes(), "power of two"},
		{"alignment string", head(3, 0, 1).str(KeyAlignment).u32(vtString).str("32").Bytes(), "power of two"},
		{"five dims", padTo(tensorHead([]uint64{1, 1, 1, 1, 1}, 0, 0), 256), "dimensions"},
		{"zero dims", padTo(tensorHead(nil, 0, 0), 256), "dimensions"},
		{"negative dim", padTo(tensorHead([]uint64{1 << 63}, 0, 0), 256), "negative"},
		{"dims overflow", padTo(tensorHead([]uint64{1 << 32, 1 << 32}, 0, 0), 256), "overflows"},
		{"size overflow", padTo(tensorHead([]uint64{1 << 61, 2}, 0, 0), 256), "overflow"},
		{"bigger than file", padTo(tensorHead([]uint64{1 << 20}, 0, 0), 256), "more than the whole file"},
		{"unknown type", padTo(tensorHead([]uint64{4}, 99, 0), 256), "unknown type 99"},
		{"bad block multiple", padTo(tensorHead([]uint64{33}, uint32(TypeQ8_0), 0), 256), "not a multiple"},
		{"misaligned offset", padTo(tensorHead([]uint64{4}, 0, 4), 256), "alignment"},
		{"huge offset", padTo(tensorHead([]uint64{4}, 0, 1<<62), 256), "outside the file"},
		{"data past end", padTo(tensorHead([]uint64{40}, 0, 0), 200), "outside the file"},
		{"data just past end", padTo(tensorHead([]uint64{4}, 0, 32), 64+32+15), "outside the file"},
		{"empty name", padTo(head(3, 1, 0).str(" ").u32(1).u64(1).u32(0).u64(0), 128), "empty tensor name"},
		{"duplicate tensor", padTo(head(3, 2, 0).str("t").u32(1).u64(1).u32(0).u64(0).str("t").u32(1).u64(1).u32(0).u64(32), 256), "duplicate tensor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.data)
			if err == nil || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, %v; want an ErrFormat containing %q", f, err, tc.want)
			}
		})
	}
}

// A well-formed tiny file parses, and the boundary cases next to the hostile
// ones above are accepted.
func TestParseBoundaries(t *testing.T) {
	b := tensorHead([]uint64{4}, 0, 0).Bytes()
	b = append(b, make([]byte, 64+16-len(b))...) // data offset 64, 16 bytes of data
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.DataOffset != 64 || len(f.Tensors[0].Data) != 16 {
		t.Fatalf("data offset %d, %d bytes", f.DataOffset, len(f.Tensors[0].Data))
	}
	v2 := head(2, 0, 1).str("k").u32(vtString).str("v").Bytes()
	if f, err := Parse(v2); err != nil || f.Version != 2 {
		t.Fatalf("v2: %v", err)
	}
	zero := padTo32(tensorHead([]uint64{0, 7}, 0, 0).Bytes())
	if f, err := Parse(zero); err != nil || len(f.Tensors[0].Data) != 0 || f.Tensors[0].NumElements() != 0 {
		t.Fatalf("empty tensor: %v", err)
	}
}

func padTo32(b []byte) []byte { return append(b, make([]byte, (32-len(b)%32)%32)...) }

// Every prefix of a real file is refused cleanly (the full file parses).
func TestParseTruncatedReal(t *testing.T) {
	for _, name := range []string{"stories260K.gguf", "synth-15m-q8_0.gguf"} {
		data, err := os.ReadFile(testenv.Model(t, name))
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		// Every prefix of the first 512 bytes, then evenly spaced cuts
		// through the metadata and tensor table.
		limit := int(f.DataOffset) + 64
		samples := 300
		if len(data) > 1<<22 {
			samples = 40 // big vocabulary: each parse is costly
		}
		var cuts []int
		for n := 0; n < 512; n++ {
			cuts = append(cuts, n)
		}
		for i := 0; i <= samples; i++ {
			cuts = append(cuts, 512+i*(limit-512)/samples)
		}
		for _, n := range cuts {
			if _, err := Parse(data[:n]); err == nil {
				t.Fatalf("%s truncated to %d bytes parsed", name, n)
			}
		}
		if _, err := Parse(data[:len(data)-1]); err == nil {
			t.Fatalf("%s minus its last byte parsed", name)
		}
	}
}
