// Package gguf reads and writes GGUF model files (versions 2 and 3), the
// container format of llama.cpp and Ollama.
//
// Open memory-maps the file, so tensor data is never copied: each
// Tensor.Data is a view into the mapping, valid until Close. Every count and
// length read from the file is checked against what is left of the file and
// against fixed caps before anything is allocated, so a hostile or truncated
// file gets an error, never a panic, an out-of-bounds read or a huge
// allocation (see FuzzParse).
package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the tensor data alignment when general.alignment is absent.
const DefaultAlignment = 32

// KeyAlignment is the metadata key that sets the tensor data alignment.
const KeyAlignment = "general.alignment"

// Caps on counts read from a file. Each is far above any real model and far
// below what could exhaust memory; every count is also checked against the
// bytes left in the file, which is the tighter bound for small inputs.
const (
	maxTensors   = 1 << 20
	maxKV        = 1 << 20
	maxKeyLen    = 1 << 16
	maxStringLen = 1 << 30
	maxDims      = 4 // GGML_MAX_DIMS
	maxDepth     = 8 // nesting of arrays inside arrays
	maxAlignment = 1 << 20
)

// ErrFormat is wrapped by every error about a malformed or unsupported file.
var ErrFormat = errors.New("gguf: invalid file")

// File is a parsed GGUF file.
type File struct {
	Version    uint32
	Alignment  int
	DataOffset int64 // where tensor data starts; Tensor.Offset is relative to it
	KV         []KV  // metadata in file order
	Tensors    []*Tensor

	kvIndex     map[string]int
	tensorIndex map[string]int
	unmap       func() error
}

// KV is one metadata pair. Value holds uint8, int8, uint16, int16, uint32,
// int32, uint64, int64, float32, float64, bool or string; arrays are
// []uint8, []int8, ..., []float64, []bool, []string, or []any whose elements
// are themselves arrays (nested arrays).
type KV struct {
	Key   string
	Value any
}

// Tensor describes one tensor and views its bytes.
type Tensor struct {
	Name   string
	Dims   []int // ne0 (the contiguous dimension) first
	Type   Type
	Offset int64  // relative to File.DataOffset
	Data   []byte // view into the file; do not modify, valid until Close
}

// NumElements is the product of the dimensions.
func (t *Tensor) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= int64(d)
	}
	return n
}

// Metadata value types in the file.
const (
	vtUint8   uint32 = 0
	vtInt8    uint32 = 1
	vtUint16  uint32 = 2
	vtInt16   uint32 = 3
	vtUint32  uint32 = 4
	vtInt32   uint32 = 5
	vtFloat32 uint32 = 6
	vtBool    uint32 = 7
	vtString  uint32 = 8
	vtArray   uint32 = 9
	vtUint64  uint32 = 10
	vtInt64   uint32 = 11
	vtFloat64 uint32 = 12
)

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)
}

// Parse parses a whole GGUF file held in data. Tensor views point into data.
func Parse(data []byte) (*File, error) {
	r := &reader{b: data}
	if len(data) < 8 {
		return nil, formatErr("file too short (%d bytes) for a GGUF header", len(data))
	}
	if string(data[:4]) != Magic {
		return nil, formatErr("bad magic %q, not a GGUF file", data[:4])
	}
	r.off = 4
	version, _ := r.u32()
	switch version {
	case 2, 3:
	case 1:
		return nil, formatErr("version 1 files are not supported (convert with a current llama.cpp)")
	default:
		if bits.ReverseBytes32(version) <= 3 {
			return nil, formatErr("big-endian GGUF files are not supported")
		}
		return nil, formatErr("unsupported version %d (llmo reads versions 2 and 3)", version)
	}
	f := &File{Version: version, Alignment: DefaultAlignment}

	nTensors, err := r.count("tensor count", maxTensors, 8+4+8+4+8)
	if err != nil {
		return nil, err
	}
	nKV, err := r.count("metadata count", maxKV, 8+4+1)
	if err != nil {
		return nil, err
	}

	f.KV = make([]KV, 0, nKV)
	f.kvIndex = make(map[string]int, nKV)
	for i := 0; i < nKV; i++ {
		key, err := r.str(maxKeyLen)
		if err != nil {
			return nil, fmt.Errorf("metadata %d key: %w", i, err)
		}
		vt, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		v, err := r.value(vt, 0)
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", key, err)
		}
		if _, dup := f.kvIndex[key]; dup {
			return nil, formatErr("duplicate metadata key %q", key)
		}
		f.kvIndex[key] = len(f.KV)
		f.KV = append(f.KV, KV{Key: key, Value: v})
	}
	if v, ok := f.Get(KeyAlignment); ok {
		a, ok := toUint(v)
		if !ok || a == 0 || a > maxAlignment || a&(a-1) != 0 {
			return nil, formatErr("%s = %v is not a power of two up to %d", KeyAlignment, v, maxAlignment)
		}
		f.Alignment = int(a)
	}

	f.Tensors = make([]*Tensor, 0, nTensors)
	f.tensorIndex = make(map[string]int, nTensors)
	sizes := make([]int, 0, nTensors)
	for i := 0; i < nTensors; i++ {
		t, size, err := r.tensorInfo(f.Alignment)
		if err != nil {
			return nil, fmt.Errorf("tensor %d: %w", i, err)
		}
		if _, dup := f.tensorIndex[t.Name]; dup {
			return nil, formatErr("duplicate tensor name %q", t.Name)
		}
		f.tensorIndex[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
		sizes = append(sizes, size)
	}

	// Tensor data starts at the next multiple of the alignment.
	off := int64(r.off)
	if rem := off % int64(f.Alignment); rem != 0 {
		off += int64(f.Alignment) - rem
	}
	f.DataOffset = off
	for i, t := range f.Tensors {
		if sizes[i] == 0 {
			t.Data = data[:0:0]
			continue
		}
		avail := int64(len(data)) - off
		if avail < 0 || t.Offset > avail || int64(sizes[i]) > avail-t.Offset {
			return nil, formatErr("tensor %q data [%d, +%d) lies outside the file (%d bytes of data after offset %d)",
				t.Name, t.Offset, sizes[i], max(avail, 0), off)
		}
		start := off + t.Offset
		t.Data = data[start : start+int64(sizes[i]) : start+int64(sizes[i])]
	}
	return f, nil
}

// Close releases the file mapping. Tensor data views are invalid afterwards.
func (f *File) Close() error {
	if f == nil || f.unmap == nil {
		return nil
	}
	u := f.unmap
	f.unmap = nil
	return u()
}

// Get returns the value of a metadata key.
func (f *File) Get(key string) (any, bool) {
	i, ok := f.kvIndex[key]
	if !ok {
		return nil, false
	}
	return f.KV[i].Value, true
}

// String returns a string value.
func (f *File) String(key string) (string, bool) {
	v, _ := f.Get(key)
	s, ok := v.(string)
	return s, ok
}

// Uint returns an integer value of any width that is not negative.
func (f *File) Uint(key string) (uint64, bool) {
	v, _ := f.Get(key)
	return toUint(v)
}

// Int returns an integer value of any width that fits in an int64.
func (f *File) Int(key string) (int64, bool) {
	v, _ := f.Get(key)
	return toInt(v)
}

// Float returns a float value, or an integer value converted to float64.
func (f *File) Float(key string) (float64, bool) {
	v, _ := f.Get(key)
	switch x := v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	if i, ok := toInt(v); ok {
		return float64(i), true
	}
	if u, ok := toUint(v); ok {
		return float64(u), true
	}
	return 0, false
}

// Bool returns a bool value.
func (f *File) Bool(key string) (bool, bool) {
	v, _ := f.Get(key)
	b, ok := v.(bool)
	return b, ok
}

// Strings returns a string array.
func (f *File) Strings(key string) ([]string, bool) {
	v, _ := f.Get(key)
	s, ok := v.([]string)
	return s, ok
}

// Float32s returns a float array as float32s (float64 arrays are converted).
func (f *File) Float32s(key string) ([]float32, bool) {
	v, _ := f.Get(key)
	switch x := v.(type) {
	case []float32:
		return x, true
	case []float64:
		out := make([]float32, len(x))
		for i, e := range x {
			out[i] = float32(e)
		}
		return out, true
	}
	return nil, false
}

// Int32s returns an integer array as int32s. Arrays of other integer types
// are converted when every element fits.
func (f *File) Int32s(key string) ([]int32, bool) {
	v, _ := f.Get(key)
	if x, ok := v.([]int32); ok {
		return x, true
	}
	return convertInts[int32](v)
}

func convertInts[T int32](v any) ([]T, bool) {
	conv := func(n int, at func(int) (int64, bool)) ([]T, bool) {
		out := make([]T, n)
		for i := range out {
			e, ok := at(i)
			if !ok || e < math.MinInt32 || e > math.MaxInt32 {
				return nil, false
			}
			out[i] = T(e)
		}
		return out, true
	}
	switch x := v.(type) {
	case []uint8:
		return conv(len(x), func(i int) (int64, bool) { return int64(x[i]), true })
	case []int8:
		return conv(len(x), func(i int) (int64, bool) { return int64(x[i]), true })
	case []uint16:
		return conv(len(x), func(i int) (int64, bool) { return int64(x[i]), true })
	case []int16:
		return conv(len(x), func(i int) (int64, bool) { return int64(x[i]), true })
	case []uint32:
		return conv(len(x), func(i int) (int64, bool) { return int64(x[i]), true })
	case []int64:
		return conv(len(x), func(i int) (int64, bool) { return x[i], true })
	case []uint64:
		return conv(len(x), func(i int) (int64, bool) { return int64(x[i]), x[i] <= math.MaxInt64 })
	}
	return nil, false
}

// Arch is general.architecture ("llama", "qwen2", ...), or "".
func (f *File) Arch() string {
	s, _ := f.String("general.architecture")
	return s
}

// Tensor looks a tensor up by name.
func (f *File) Tensor(name string) (*Tensor, bool) {
	i, ok := f.tensorIndex[name]
	if !ok {
		return nil, false
	}
	return f.Tensors[i], true
}

func toUint(v any) (uint64, bool) {
	switch x := v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), x <= math.MaxInt64
	}
	return 0, false
}

// reader is a bounds-checked little-endian cursor over the file.
type reader struct {
	b   []byte
	off int
}

func (r *reader) left() int { return len(r.b) - r.off }

func (r *reader) take(n int) ([]byte, error) {
	if n < 0 || n > r.left() {
		return nil, formatErr("truncated at offset %d: need %d bytes, %d left", r.off, n, r.left())
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p, nil
}

func (r *reader) u8() (uint8, error) {
	p, err := r.take(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func (r *reader) u16() (uint16, error) {
	p, err := r.take(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(p), nil
}

func (r *reader) u32() (uint32, error) {
	p, err := r.take(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(p), nil
}

func (r *reader) u64() (uint64, error) {
	p, err := r.take(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(p), nil
}

// count reads a uint64 count of items that each take at least minSize bytes
// of the rest of the file, and refuses counts the file cannot hold.
func (r *reader) count(what string, limit int, minSize int) (int, error) {
	n, err := r.u64()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if n > uint64(limit) {
		return 0, formatErr("%s %d is over the limit %d", what, n, limit)
	}
	if minSize > 0 && n > uint64(r.left()/minSize) {
		return 0, formatErr("%s %d does not fit in the %d bytes left", what, n, r.left())
	}
	return int(n), nil
}

func (r *reader) str(limit int) (string, error) {
	n, err := r.u64()
	if err != nil {
		return "", err
	}
	if n > uint64(limit) {
		return "", formatErr("string length %d is over the limit %d", n, limit)
	}
	p, err := r.take(int(n))
	if err != nil {
		return "", err
	}
	return string(p), nil
}

// strings reads n strings into one backing allocation: a vocabulary of
// 150k tokens costs three allocations rather than 150k.
func (r *reader) strings(n int) ([]string, error) {
	ends := make([]int, n)
	start, total := r.off, 0
	for i := range ends {
		l, err := r.u64()
		if err != nil {
			return nil, fmt.Errorf("array element %d: %w", i, err)
		}
		if l > maxStringLen {
			return nil, formatErr("array element %d: string length %d is over the limit %d", i, l, maxStringLen)
		}
		if _, err := r.take(int(l)); err != nil {
			return nil, fmt.Errorf("array element %d: %w", i, err)
		}
		total += int(l)
		ends[i] = total
	}
	var b strings.Builder
	b.Grow(total)
	for off := start; off < r.off; {
		l := int(binary.LittleEndian.Uint64(r.b[off:]))
		b.Write(r.b[off+8 : off+8+l])
		off += 8 + l
	}
	all := b.String()
	out := make([]string, n)
	prev := 0
	for i, e := range ends {
		out[i] = all[prev:e]
		prev = e
	}
	return out, nil
}

func (r *reader) value(vt uint32, depth int) (any, error) {
	switch vt {
	case vtUint8:
		return r.u8()
	case vtInt8:
		v, err := r.u8()
		return int8(v), err
	case vtUint16:
		return r.u16()
	case vtInt16:
		v, err := r.u16()
		return int16(v), err
	case vtUint32:
		return r.u32()
	case vtInt32:
		v, err := r.u32()
		return int32(v), err
	case vtUint64:
		return r.u64()
	case vtInt64:
		v, err := r.u64()
		return int64(v), err
	case vtFloat32:
		v, err := r.u32()
		return math.Float32frombits(v), err
	case vtFloat64:
		v, err := r.u64()
		return math.Float64frombits(v), err
	case vtBool:
		v, err := r.u8()
		if err == nil && v > 1 {
			return nil, formatErr("bool value %d", v)
		}
		return v == 1, err
	case vtString:
		return r.str(maxStringLen)
	case vtArray:
		if depth >= maxDepth {
			return nil, formatErr("arrays nested deeper than %d", maxDepth)
		}
		return r.array(depth + 1)
	}
	return nil, formatErr("unknown metadata value type %d", vt)
}

// elemSize is the encoded size of a fixed-size value type, or the minimum
// size of a variable one.
func elemSize(vt uint32) int {
	switch vt {
	case vtUint8, vtInt8, vtBool:
		return 1
	case vtUint16, vtInt16:
		return 2
	case vtUint32, vtInt32, vtFloat32:
		return 4
	case vtUint64, vtInt64, vtFloat64, vtString:
		return 8
	case vtArray:
		return 12
	}
	return 0
}

func readFixed[T any](r *reader, n, size int, conv func([]byte) T) ([]T, error) {
	p, err := r.take(n * size) // count() already bounded n*size by the bytes left
	if err != nil {
		return nil, err
	}
	out := make([]T, n)
	for i := range out {
		out[i] = conv(p[i*size:])
	}
	return out, nil
}

func (r *reader) array(depth int) (any, error) {
	et, err := r.u32()
	if err != nil {
		return nil, err
	}
	size := elemSize(et)
	if size == 0 {
		return nil, formatErr("unknown array element type %d", et)
	}
	n, err := r.count("array length", math.MaxInt32, size)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	switch et {
	case vtUint8:
		return readFixed(r, n, 1, func(p []byte) uint8 { return p[0] })
	case vtInt8:
		return readFixed(r, n, 1, func(p []byte) int8 { return int8(p[0]) })
	case vtBool:
		out, err := readFixed(r, n, 1, func(p []byte) uint8 { return p[0] })
		if err != nil {
			return nil, err
		}
		bs := make([]bool, n)
		for i, v := range out {
			if v > 1 {
				return nil, formatErr("bool value %d", v)
			}
			bs[i] = v == 1
		}
		return bs, nil
	case vtUint16:
		return readFixed(r, n, 2, func(p []byte) uint16 { return le.Uint16(p) })
	case vtInt16:
		return readFixed(r, n, 2, func(p []byte) int16 { return int16(le.Uint16(p)) })
	case vtUint32:
		return readFixed(r, n, 4, func(p []byte) uint32 { return le.Uint32(p) })
	case vtInt32:
		return readFixed(r, n, 4, func(p []byte) int32 { return int32(le.Uint32(p)) })
	case vtFloat32:
		return readFixed(r, n, 4, func(p []byte) float32 { return math.Float32frombits(le.Uint32(p)) })
	case vtUint64:
		return readFixed(r, n, 8, func(p []byte) uint64 { return le.Uint64(p) })
	case vtInt64:
		return readFixed(r, n, 8, func(p []byte) int64 { return int64(le.Uint64(p)) })
	case vtFloat64:
		return readFixed(r, n, 8, func(p []byte) float64 { return math.Float64frombits(le.Uint64(p)) })
	case vtString:
		return r.strings(n)
	default: // vtArray
		if depth >= maxDepth && n > 0 {
			return nil, formatErr("arrays nested deeper than %d", maxDepth)
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = r.array(depth + 1); err != nil {
				return nil, fmt.Errorf("array element %d: %w", i, err)
			}
		}
		return out, nil
	}
}

func (r *reader) tensorInfo(alignment int) (*Tensor, int, error) {
	name, err := r.str(maxKeyLen)
	if err != nil {
		return nil, 0, fmt.Errorf("name: %w", err)
	}
	if strings.TrimSpace(name) == "" {
		return nil, 0, formatErr("empty tensor name")
	}
	nd, err := r.u32()
	if err != nil {
		return nil, 0, err
	}
	if nd < 1 || nd > maxDims {
		return nil, 0, formatErr("tensor %q has %d dimensions (1..%d allowed)", name, nd, maxDims)
	}
	dims := make([]int, nd)
	total := uint64(1)
	for i := range dims {
		d, err := r.u64()
		if err != nil {
			return nil, 0, err
		}
		if d > math.MaxInt64 {
			return nil, 0, formatErr("tensor %q dimension %d is negative", name, i)
		}
		hi, lo := bits.Mul64(total, d)
		if hi != 0 || lo > math.MaxInt64 {
			return nil, 0, formatErr("tensor %q element count overflows", name)
		}
		total = lo
		dims[i] = int(d)
	}
	tv, err := r.u32()
	if err != nil {
		return nil, 0, err
	}
	typ := Type(tv)
	if !typ.Known() {
		return nil, 0, formatErr("tensor %q has unknown type %d", name, tv)
	}
	off, err := r.u64()
	if err != nil {
		return nil, 0, err
	}
	if off > math.MaxInt64 || off%uint64(alignment) != 0 {
		return nil, 0, formatErr("tensor %q offset %d is not a multiple of the alignment %d", name, off, alignment)
	}
	row, err := typ.RowBytes(dims[0])
	if err != nil {
		return nil, 0, formatErr("tensor %q: %v", name, err)
	}
	size := uint64(row)
	for _, d := range dims[1:] {
		hi, lo := bits.Mul64(size, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return nil, 0, formatErr("tensor %q size overflows", name)
		}
		size = lo
	}
	// size fits in int64; the caller checks it against the file.
	if size > uint64(len(r.b)) {
		return nil, 0, formatErr("tensor %q needs %d bytes, more than the whole file", name, size)
	}
	return &Tensor{Name: name, Dims: dims, Type: typ, Offset: int64(off)}, int(size), nil
}
