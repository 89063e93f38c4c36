package gguf

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
)

// Writer builds a GGUF version 3 file: metadata in the order it was set,
// then tensor infos and data, each tensor aligned to general.alignment
// (default 32).
type Writer struct {
	kv      []KV
	kvIndex map[string]int
	tensors []writerTensor
	names   map[string]bool
}

type writerTensor struct {
	name string
	typ  Type
	dims []int
	data []byte
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer {
	return &Writer{kvIndex: map[string]int{}, names: map[string]bool{}}
}

// SetKV sets a metadata value, replacing an earlier value of the same key in
// place. Values take the Go types that File.KV holds; a Go int is written
// as int64 and a uint as uint64, so pass uint32 where llama.cpp expects it
// (counts, lengths, token ids). Unsupported types are reported by WriteTo.
func (w *Writer) SetKV(key string, v any) {
	switch x := v.(type) {
	case int:
		v = int64(x)
	case uint:
		v = uint64(x)
	case []int:
		a := make([]int64, len(x))
		for i, e := range x {
			a[i] = int64(e)
		}
		v = a
	}
	if i, ok := w.kvIndex[key]; ok {
		w.kv[i].Value = v
		return
	}
	w.kvIndex[key] = len(w.kv)
	w.kv = append(w.kv, KV{Key: key, Value: v})
}

// AddTensor appends a tensor. dims are ne0 first; data must hold exactly
// the tensor's bytes. The data is not copied until WriteTo.
func (w *Writer) AddTensor(name string, typ Type, dims []int, data []byte) error {
	if name == "" || len(name) > maxKeyLen {
		return fmt.Errorf("gguf: bad tensor name %q", name)
	}
	if w.names[name] {
		return fmt.Errorf("gguf: duplicate tensor %q", name)
	}
	if len(dims) < 1 || len(dims) > maxDims {
		return fmt.Errorf("gguf: tensor %q has %d dimensions (1..%d allowed)", name, len(dims), maxDims)
	}
	for _, d := range dims {
		if d < 0 {
			return fmt.Errorf("gguf: tensor %q has negative dimension %v", name, dims)
		}
	}
	row, err := typ.RowBytes(dims[0])
	if err != nil {
		return fmt.Errorf("gguf: tensor %q: %w", name, err)
	}
	size := row
	for _, d := range dims[1:] {
		if d != 0 && size > math.MaxInt/d {
			return fmt.Errorf("gguf: tensor %q size overflows", name)
		}
		size *= d
	}
	if len(data) != size {
		return fmt.Errorf("gguf: tensor %q %v %s needs %d bytes, got %d", name, dims, typ, size, len(data))
	}
	w.names[name] = true
	w.tensors = append(w.tensors, writerTensor{name, typ, append([]int(nil), dims...), data})
	return nil
}

func (w *Writer) alignment() (int, error) {
	i, ok := w.kvIndex[KeyAlignment]
	if !ok {
		return DefaultAlignment, nil
	}
	a, ok := toUint(w.kv[i].Value)
	if !ok || a == 0 || a > maxAlignment || a&(a-1) != 0 {
		return 0, fmt.Errorf("gguf: %s = %v is not a power of two up to %d", KeyAlignment, w.kv[i].Value, maxAlignment)
	}
	return int(a), nil
}

// WriteTo writes the file to out.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	align, err := w.alignment()
	if err != nil {
		return 0, err
	}
	var h bytes.Buffer
	le := binary.LittleEndian
	h.WriteString(Magic)
	h.Write(le.AppendUint32(nil, 3))
	h.Write(le.AppendUint64(nil, uint64(len(w.tensors))))
	h.Write(le.AppendUint64(nil, uint64(len(w.kv))))
	for _, kv := range w.kv {
		if err := appendString(&h, kv.Key); err != nil {
			return 0, err
		}
		if err := appendValue(&h, kv.Value, true, 0); err != nil {
			return 0, fmt.Errorf("gguf: metadata %q: %w", kv.Key, err)
		}
	}
	var off int64
	for _, t := range w.tensors {
		_ = appendString(&h, t.name)
		h.Write(le.AppendUint32(nil, uint32(len(t.dims))))
		for _, d := range t.dims {
			h.Write(le.AppendUint64(nil, uint64(d)))
		}
		h.Write(le.AppendUint32(nil, uint32(t.typ)))
		h.Write(le.AppendUint64(nil, uint64(off)))
		off += padded(int64(len(t.data)), align)
	}
	h.Write(make([]byte, padded(int64(h.Len()), align)-int64(h.Len())))

	n, err := out.Write(h.Bytes())
	total := int64(n)
	if err != nil {
		return total, err
	}
	zeros := make([]byte, align)
	for _, t := range w.tensors {
		n, err := out.Write(t.data)
		total += int64(n)
		if err != nil {
			return total, err
		}
		pad := padded(int64(len(t.data)), align) - int64(len(t.data))
		n, err = out.Write(zeros[:pad])
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// WriteFile writes the file atomically: to a temporary file in the same
// directory, synced, then renamed over path.
func (w *Writer) WriteFile(path string) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if _, err = w.WriteTo(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}

func padded(n int64, align int) int64 {
	a := int64(align)
	return (n + a - 1) / a * a
}

func appendString(b *bytes.Buffer, s string) error {
	if len(s) > maxStringLen {
		return errors.New("gguf: string too long")
	}
	b.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(s))))
	b.WriteString(s)
	return nil
}

// valueType is the GGUF value type of a Go value, or false.
func valueType(v any) (uint32, bool) {
	switch v.(type) {
	case uint8:
		return vtUint8, true
	case int8:
		return vtInt8, true
	case uint16:
		return vtUint16, true
	case int16:
		return vtInt16, true
	case uint32:
		return vtUint32, true
	case int32:
		return vtInt32, true
	case uint64:
		return vtUint64, true
	case int64:
		return vtInt64, true
	case float32:
		return vtFloat32, true
	case float64:
		return vtFloat64, true
	case bool:
		return vtBool, true
	case string:
		return vtString, true
	case []uint8, []int8, []uint16, []int16, []uint32, []int32, []uint64, []int64,
		[]float32, []float64, []bool, []string, []any:
		return vtArray, true
	}
	return 0, false
}

func appendValue(b *bytes.Buffer, v any, withType bool, depth int) error {
	vt, ok := valueType(v)
	if !ok {
		return fmt.Errorf("unsupported value type %T", v)
	}
	le := binary.LittleEndian
	if withType {
		b.Write(le.AppendUint32(nil, vt))
	}
	switch x := v.(type) {
	case uint8:
		b.WriteByte(x)
	case int8:
		b.WriteByte(byte(x))
	case uint16:
		b.Write(le.AppendUint16(nil, x))
	case int16:
		b.Write(le.AppendUint16(nil, uint16(x)))
	case uint32:
		b.Write(le.AppendUint32(nil, x))
	case int32:
		b.Write(le.AppendUint32(nil, uint32(x)))
	case uint64:
		b.Write(le.AppendUint64(nil, x))
	case int64:
		b.Write(le.AppendUint64(nil, uint64(x)))
	case float32:
		b.Write(le.AppendUint32(nil, math.Float32bits(x)))
	case float64:
		b.Write(le.AppendUint64(nil, math.Float64bits(x)))
	case bool:
		if x {
			b.WriteByte(1)
		} else {
			b.WriteByte(0)
		}
	case string:
		return appendString(b, x)
	default:
		if depth >= maxDepth {
			return fmt.Errorf("arrays nested deeper than %d", maxDepth)
		}
		return appendArray(b, v, depth+1)
	}
	return nil
}

func appendArray(b *bytes.Buffer, v any, depth int) error {
	le := binary.LittleEndian
	header := func(et uint32, n int) {
		b.Write(le.AppendUint32(nil, et))
		b.Write(le.AppendUint64(nil, uint64(n)))
	}
	each := func(et uint32, n int, at func(i int) any) error {
		header(et, n)
		for i := 0; i < n; i++ {
			if err := appendValue(b, at(i), false, depth); err != nil {
				return err
			}
		}
		return nil
	}
	switch x := v.(type) {
	case []uint8:
		header(vtUint8, len(x))
		b.Write(x)
		return nil
	case []int8:
		return each(vtInt8, len(x), func(i int) any { return x[i] })
	case []uint16:
		return each(vtUint16, len(x), func(i int) any { return x[i] })
	case []int16:
		return each(vtInt16, len(x), func(i int) any { return x[i] })
	case []uint32:
		return each(vtUint32, len(x), func(i int) any { return x[i] })
	case []int32:
		return each(vtInt32, len(x), func(i int) any { return x[i] })
	case []uint64:
		return each(vtUint64, len(x), func(i int) any { return x[i] })
	case []int64:
		return each(vtInt64, len(x), func(i int) any { return x[i] })
	case []float32:
		return each(vtFloat32, len(x), func(i int) any { return x[i] })
	case []float64:
		return each(vtFloat64, len(x), func(i int) any { return x[i] })
	case []bool:
		return each(vtBool, len(x), func(i int) any { return x[i] })
	case []string:
		return each(vtString, len(x), func(i int) any { return x[i] })
	case []any:
		// Arrays of arrays: every element must itself be an array.
		for i, e := range x {
			if vt, ok := valueType(e); !ok || vt != vtArray {
				return fmt.Errorf("element %d of []any is %T; only nested arrays are supported", i, e)
			}
		}
		return each(vtArray, len(x), func(i int) any { return x[i] })
	}
	return fmt.Errorf("unsupported array type %T", v)
}
