package respcache

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"sort"
	"strings"
)

// Canonical re-encodes a JSON document so that documents meaning the same
// thing encode to the same bytes: object keys sorted, no insignificant
// whitespace, strings escaped one way, and numbers normalised exactly (1,
// 1.0, 1e0 and 10e-1 are all "1"; 0.5 and 5e-1 are both "0.5e0"). Numbers are
// compared as exact decimals, never through float64, so two numbers encode
// alike only if they are equal. Duplicate keys keep the last value, as
// encoding/json (and so the model service) does.
func Canonical(doc []byte) ([]byte, error) {
	v, err := decodeJSON(doc)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	writeCanonical(&buf, v)
	return buf.Bytes(), nil
}

// decodeJSON decodes one JSON value with numbers kept as text and nothing
// but whitespace after it.
func decodeJSON(doc []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

func writeCanonical(buf *bytes.Buffer, v any) {
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		if x {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case string:
		writeString(buf, x)
	case json.Number:
		buf.WriteString(normNumber(string(x)))
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeCanonical(buf, e)
		}
		buf.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k)
			buf.WriteByte(':')
			writeCanonical(buf, x[k])
		}
		buf.WriteByte('}')
	default:
		// Only the types above come out of decodeJSON; anything else is a
		// programming error, encoded visibly rather than silently dropped.
		b, _ := json.Marshal(x)
		buf.Write(b)
	}
}

func writeString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // deterministic escaping; invalid UTF-8 becomes U+FFFD
	buf.Write(b)
}

// normNumber normalises a JSON number literal (already validated by the
// decoder) exactly. The value is sign × 0.DIGITS × 10^point with DIGITS free
// of leading and trailing zeros. Integers of up to 21 digits are written
// plainly ("100"); everything else as "0.DIGITSeN" ("0.25e0" for 0.25).
func normNumber(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mant, exp := s, ""
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, exp = s[:i], s[i+1:]
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	point := new(big.Int).SetInt64(int64(len(intPart)))
	if exp != "" {
		e, ok := new(big.Int).SetString(strings.TrimPrefix(exp, "+"), 10)
		if !ok {
			return "null" // unreachable for decoder-validated input
		}
		point.Add(point, e)
	}
	lead := len(digits) - len(strings.TrimLeft(digits, "0"))
	digits = digits[lead:]
	point.Sub(point, big.NewInt(int64(lead)))
	digits = strings.TrimRight(digits, "0")
	if digits == "" {
		return "0" // -0 and 0.000e5 are 0
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	if point.IsInt64() {
		p := point.Int64()
		if p >= int64(len(digits)) && p <= 21 {
			b.WriteString(digits)
			b.WriteString(strings.Repeat("0", int(p)-len(digits)))
			return b.String()
		}
	}
	b.WriteString("0.")
	b.WriteString(digits)
	b.WriteByte('e')
	b.WriteString(point.String())
	return b.String()
}
