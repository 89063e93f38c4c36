package proxy

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
)

// randomBytes fills b from math/rand/v2's per-thread ChaCha8 source: trace
// and span ids must be unique and unpredictable enough, not secret, and
// crypto/rand would cost a system call per request.
func randomBytes(b []byte) {
	for i := 0; i < len(b); i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], rand.Uint64())
		copy(b[i:], w[:])
	}
}

// traceparent returns the W3C traceparent to send upstream: the client's
// trace id with a new span id for this hop, or a new trace when the client
// sent none (or a malformed one).
func traceparent(h http.Header) string {
	in := h.Get("Traceparent")
	var span [8]byte
	randomBytes(span[:])
	var out [55]byte // built in place: one allocation, the string
	if validTraceparent(in) {
		copy(out[:], in)
		hex.Encode(out[36:52], span[:])
		return string(out[:])
	}
	var trace [16]byte
	randomBytes(trace[:])
	copy(out[:], "00-")
	hex.Encode(out[3:35], trace[:])
	out[35] = '-'
	hex.Encode(out[36:52], span[:])
	copy(out[52:], "-01")
	return string(out[:])
}

// validTraceparent checks version 00's shape: 00-<32 hex>-<16 hex>-<2 hex>.
func validTraceparent(s string) bool {
	if len(s) != 55 || s[:3] != "00-" || s[35] != '-' || s[52] != '-' {
		return false
	}
	zeroTrace, zeroSpan := true, true
	for i := 3; i < 55; i++ {
		if i == 35 || i == 52 {
			continue
		}
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
		if c != '0' {
			if i < 35 {
				zeroTrace = false
			} else if i < 52 {
				zeroSpan = false
			}
		}
	}
	return !zeroTrace && !zeroSpan
}
