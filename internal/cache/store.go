// Package cache is llmo's cache service: a namespaced key/value store with
// per-entry TTLs behind a small HTTP API, plus a semantic (vector) index that
// gateway replicas share. Two backends implement Store: Memory (bounded in
// bytes, the default and the monolith's in-process choice) and Redis (shared
// by many gateway replicas). Client is the HTTP client of the service; it
// implements the same interfaces, so the gateway codes against Store and
// SemanticIndex without caring where the cache lives.
package cache

import (
	"context"
	"time"

	"github.com/llmo/llmo/internal/errs"
)

// Store is a namespaced byte cache. A namespace groups keys that are flushed
// together (the gateway uses one per API-key namespace).
type Store interface {
	// Get returns the value and true, or false on a miss.
	Get(ctx context.Context, ns, key string) ([]byte, bool, error)
	// Set stores val for ttl (0 means the backend's default).
	Set(ctx context.Context, ns, key string, val []byte, ttl time.Duration) error
	Delete(ctx context.Context, ns, key string) error
	// Flush removes every key of ns (and ns's semantic index).
	Flush(ctx context.Context, ns string) error
	Stats(ctx context.Context) (Stats, error)
}

// Stats describes a store's contents.
type Stats struct {
	Backend   string `json:"backend"` // "memory", "redis" or "remote"
	Entries   int64  `json:"entries"`
	Bytes     int64  `json:"bytes"`
	MaxBytes  int64  `json:"max_bytes,omitempty"`
	Evictions int64  `json:"evictions"`
	Hits      int64  `json:"hits"`
	Misses    int64  `json:"misses"`
}

// Limits on names and values. Keys in practice are sha256 hex digests.
const (
	MaxNamespaceLen = 128
	MaxKeyLen       = 250
	// DefaultMaxValueBytes is the largest value the service accepts by
	// default (413 above it).
	DefaultMaxValueBytes = 4 << 20
	// DefaultTTL applies when Set is given ttl 0.
	DefaultTTL = 24 * time.Hour
)

// ValidNamespace checks ns: 1..128 bytes of [A-Za-z0-9._-]. Colons are not
// allowed, so "prefix:ns:key" backend keys can never collide.
func ValidNamespace(ns string) error {
	if ns == "" || len(ns) > MaxNamespaceLen {
		return errs.Param("namespace", "namespace must be 1 to %d characters long", MaxNamespaceLen)
	}
	for i := 0; i < len(ns); i++ {
		if !nameByte(ns[i]) {
			return errs.Param("namespace", "namespace %q has a character outside [A-Za-z0-9._-]", ns)
		}
	}
	return nil
}

// ValidKey checks key: 1..250 bytes of [A-Za-z0-9._:-].
func ValidKey(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return errs.Param("key", "key must be 1 to %d characters long", MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if !nameByte(key[i]) && key[i] != ':' {
			return errs.Param("key", "key %q has a character outside [A-Za-z0-9._:-]", key)
		}
	}
	return nil
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

func validNSKey(ns, key string) error {
	if err := ValidNamespace(ns); err != nil {
		return err
	}
	return ValidKey(key)
}
