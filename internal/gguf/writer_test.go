package gguf

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/llmo/llmo/internal/testenv"
)

func TestWriterRoundTrip(t *testing.T) {
	kvs := []KV{
		{"general.architecture", "llama"},
		{"u8", uint8(200)}, {"i8", int8(-5)}, {"u16", uint16(65000)}, {"i16", int16(-300)},
		{"u32", uint32(4294967295)}, {"i32", int32(-7)}, {"u64", uint64(1) << 60}, {"i64", int64(-1) << 60},
		{"f32", float32(1.5)}, {"f64", 2.25}, {"t", true}, {"f", false}, {"s", "héllo\x00world"}, {"empty", ""},
		{"au8", []uint8{1, 2, 3}}, {"ai8", []int8{-1, 2}}, {"au16", []uint16{7}}, {"ai16", []int16{-7}},
		{"au32", []uint32{1, 4294967295}}, {"ai32", []int32{-1, 0, 1}}, {"au64", []uint64{9}}, {"ai64", []int64{-9}},
		{"af32", []float32{0.5, -1}}, {"af64", []float64{3.5}}, {"ab", []bool{true, false, true}},
		{"as", []string{"a", "", "▁b"}}, {"aempty", []string{}},
		{"nested", []any{[]int32{1, 2}, []string{"x"}, []any{[]float32{1}}}},
	}
	w := NewWriter()
	for _, kv := range kvs {
		w.SetKV(kv.Key, kv.Value)
	}
	w.SetKV("general.alignment", uint32(64))
	w.SetKV("u8", uint8(201)) // replaces in place, keeps order
	kvs[1].Value = uint8(201)
	kvs = append(kvs, KV{"general.alignment", uint32(64)})

	f32 := make([]byte, 4*10*3)
	for i := range f32 {
		f32[i] = byte(i)
	}
	q8 := make([]byte, 34*2)
	q8[0] = 0xAB
	if err := w.AddTensor("a", TypeF32, []int{10, 3}, f32); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("b", TypeQ8_0, []int{64}, q8); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("c", TypeF16, []int{1, 1, 1, 3}, []byte{1, 2, 3, 4, 5, 6}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := w.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo = %d, %v (buffer %d)", n, err, buf.Len())
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.KV, kvs) {
		t.Errorf("metadata differs:\n got %#v\nwant %#v", f.KV, kvs)
	}
	if f.Alignment != 64 || f.DataOffset%64 != 0 {
		t.Errorf("alignment %d, data offset %d", f.Alignment, f.DataOffset)
	}
	for _, tc := range []struct {
		name string
		typ  Type
		dims []int
		data []byte
	}{{"a", TypeF32, []int{10, 3}, f32}, {"b", TypeQ8_0, []int{64}, q8}, {"c", TypeF16, []int{1, 1, 1, 3}, []byte{1, 2, 3, 4, 5, 6}}} {
		tn, ok := f.Tensor(tc.name)
		if !ok || tn.Type != tc.typ || !equalInts(tn.Dims, tc.dims) || !bytes.Equal(tn.Data, tc.data) || tn.Offset%64 != 0 {
			t.Errorf("tensor %s = %+v", tc.name, tn)
		}
	}
}

func TestWriterErrors(t *testing.T) {
	w := NewWriter()
	for _, tc := range []struct {
		name string
		typ  Type
		dims []int
		data []byte
		want string
	}{
		{"", TypeF32, []int{1}, make([]byte, 4), "bad tensor name"},
		{"x", TypeF32, []int{2}, make([]byte, 4), "needs 8 bytes"},
		{"x", TypeQ8_0, []int{31}, make([]byte, 34), "not a multiple"},
		{"x", TypeF32, []int{1, 1, 1, 1, 1}, make([]byte, 4), "dimensions"},
		{"x", TypeF32, nil, nil, "dimensions"},
		{"x", TypeF32, []int{-1}, nil, "negative"},
		{"x", Type(99), []int{1}, make([]byte, 4), "unknown tensor type"},
	} {
		if err := w.AddTensor(tc.name, tc.typ, tc.dims, tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AddTensor(%q, %v, %v) = %v, want %q", tc.name, tc.typ, tc.dims, err, tc.want)
		}
	}
	if err := w.AddTensor("x", TypeF32, []int{1}, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("x", TypeF32, []int{1}, make([]byte, 4)); err == nil {
		t.Error("duplicate tensor accepted")
	}
	for _, v := range []any{struct{}{}, []any{1}, map[string]int{}} {
		w := NewWriter()
		w.SetKV("k", v)
		if _, err := w.WriteTo(&bytes.Buffer{}); err == nil {
			t.Errorf("value %T accepted", v)
		}
	}
	w = NewWriter()
	w.SetKV(KeyAlignment, uint32(48))
	if _, err := w.WriteTo(&bytes.Buffer{}); err == nil {
		t.Error("alignment 48 accepted")
	}
}

// Rewriting stories260K.gguf's metadata and tensors reproduces the file
// byte for byte: same layout rules as llama.cpp's writer.
func TestRewriteStories260K(t *testing.T) {
	path := testenv.Model(t, "stories260K.gguf")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := NewWriter()
	for _, kv := range f.KV {
		w.SetKV(kv.Key, kv.Value)
	}
	for _, tn := range f.Tensors {
		if err := w.AddTensor(tn.Name, tn.Type, tn.Dims, tn.Data); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "copy.gguf")
	if err := w.WriteFile(out); err != nil {
		t.Fatal(err)
	}
	g, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if !reflect.DeepEqual(f.KV, g.KV) || len(g.Tensors) != len(f.Tensors) || g.DataOffset != f.DataOffset {
		t.Fatal("metadata or layout differs after rewrite")
	}
	for i, tn := range f.Tensors {
		gt := g.Tensors[i]
		if gt.Name != tn.Name || gt.Offset != tn.Offset || !bytes.Equal(gt.Data, tn.Data) {
			t.Errorf("tensor %s differs", tn.Name)
		}
	}
	a, _ := os.ReadFile(path)
	b, _ := os.ReadFile(out)
	if !bytes.Equal(a, b) {
		t.Errorf("rewritten file differs from the original (%d vs %d bytes)", len(b), len(a))
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Errorf("WriteFile left %d files behind", len(entries))
	}
}

func TestWriteFileBadDir(t *testing.T) {
	w := NewWriter()
	if err := w.WriteFile(filepath.Join(t.TempDir(), "missing", "x.gguf")); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}
