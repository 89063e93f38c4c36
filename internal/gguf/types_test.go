package gguf

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestTypeTable(t *testing.T) {
	for _, tc := range []struct {
		typ          Type
		name         string
		block, bytes int
	}{
		{TypeF32, "F32", 1, 4}, {TypeF16, "F16", 1, 2}, {TypeBF16, "BF16", 1, 2},
		{TypeQ4_0, "Q4_0", 32, 18}, {TypeQ4_1, "Q4_1", 32, 20}, {TypeQ5_0, "Q5_0", 32, 22}, {TypeQ5_1, "Q5_1", 32, 24},
		{TypeQ8_0, "Q8_0", 32, 34}, {TypeQ8_1, "Q8_1", 32, 36},
		{TypeQ2_K, "Q2_K", 256, 84}, {TypeQ3_K, "Q3_K", 256, 110}, {TypeQ4_K, "Q4_K", 256, 144},
		{TypeQ5_K, "Q5_K", 256, 176}, {TypeQ6_K, "Q6_K", 256, 210}, {TypeQ8_K, "Q8_K", 256, 292},
	} {
		if tc.typ.String() != tc.name || tc.typ.BlockSize() != tc.block || tc.typ.BlockBytes() != tc.bytes {
			t.Errorf("%d: %s %d %d, want %s %d %d", tc.typ, tc.typ, tc.typ.BlockSize(), tc.typ.BlockBytes(), tc.name, tc.block, tc.bytes)
		}
		if n, err := tc.typ.RowBytes(tc.block * 3); err != nil || n != tc.bytes*3 {
			t.Errorf("%s RowBytes(3 blocks) = %d, %v", tc.name, n, err)
		}
	}
	// The numbers are the file format's.
	for typ, want := range map[Type]uint32{TypeQ5_0: 6, TypeQ2_K: 10, TypeQ8_K: 15, TypeBF16: 30} {
		if uint32(typ) != want {
			t.Errorf("%s = %d, want %d", typ, typ, want)
		}
	}
	if Type(4).String() != "type(4)" || Type(4).Known() || Type(4).BlockSize() != 0 {
		t.Error("removed type 4 (Q4_2) should be unknown")
	}
	for _, tc := range []struct {
		typ Type
		n   int
	}{{TypeQ8_0, 33}, {TypeQ4_K, 255}, {TypeF32, -1}, {Type(99), 32}} {
		if _, err := tc.typ.RowBytes(tc.n); err == nil {
			t.Errorf("%s RowBytes(%d) accepted", tc.typ, tc.n)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.gguf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrFormat) {
		t.Errorf("directory: %v", err)
	}
	empty := filepath.Join(dir, "empty.gguf")
	os.WriteFile(empty, nil, 0o644)
	if _, err := Open(empty); !errors.Is(err, ErrFormat) {
		t.Errorf("empty file: %v", err)
	}
	junk := filepath.Join(dir, "junk.gguf")
	os.WriteFile(junk, []byte("not a gguf file at all"), 0o644)
	if _, err := Open(junk); !errors.Is(err, ErrFormat) {
		t.Errorf("junk file: %v", err)
	}
}
