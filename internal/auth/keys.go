package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Limits on untrusted key-file input: a key file is configuration, but a
// typo (or a hostile file in a shared volume) must not exhaust memory.
const (
	maxKeys       = 10000
	maxKeyFile    = 4 << 20
	maxNameLen    = 128
	minKeyLen     = 8
	maxKeyLen     = 512
	maxModelsEach = 1000
)

// KeySpec is one API key as written in a key file. Either Key (the secret,
// hashed as soon as it is read) or SHA256 (its hex digest, so that the file
// need not hold the secret) must be set.
type KeySpec struct {
	Name              string   `json:"name" yaml:"name"`
	Key               string   `json:"key,omitempty" yaml:"key,omitempty"`
	SHA256            string   `json:"sha256,omitempty" yaml:"sha256,omitempty"`
	Models            []string `json:"models,omitempty" yaml:"models,omitempty"`
	RequestsPerMinute *int     `json:"requests_per_minute,omitempty" yaml:"requests_per_minute,omitempty"`
	TokensPerMinute   *int     `json:"tokens_per_minute,omitempty" yaml:"tokens_per_minute,omitempty"`
	SemanticCache     bool     `json:"semantic_cache,omitempty" yaml:"semantic_cache,omitempty"`
	Namespace         string   `json:"namespace,omitempty" yaml:"namespace,omitempty"`
	Admin             bool     `json:"admin,omitempty" yaml:"admin,omitempty"`
}

// KeysFile is the key file's top level.
type KeysFile struct {
	Keys []KeySpec `json:"keys" yaml:"keys"`
}

// Key is a configured API key with its secret replaced by a hash.
type Key struct {
	Name          string
	Hash          [sha256.Size]byte
	Models        []string // empty = all
	RPM, TPM      int      // 0 = unlimited
	SemanticCache bool
	Namespace     string
	Admin         bool
}

// Allows reports whether the key may use model.
func (k *Key) Allows(model string) bool {
	return len(k.Models) == 0 || slices.Contains(k.Models, model)
}

// hashKey is the stored form of a secret.
func hashKey(secret string) [sha256.Size]byte { return sha256.Sum256([]byte(secret)) }

// match returns the key whose hash equals sha256(secret), comparing every
// key in constant time so that the timing tells nothing about which keys
// exist or how much of a guess was right.
func match(keys []*Key, secret string) *Key {
	h := hashKey(secret)
	var found *Key
	for _, k := range keys {
		if subtle.ConstantTimeCompare(k.Hash[:], h[:]) == 1 {
			found = k
		}
	}
	return found
}

// ParseKeysFile decodes a key file strictly: unknown fields, trailing data,
// duplicate names or hashes and malformed entries are errors. Files named
// *.json are decoded as JSON; anything else as YAML.
func ParseKeysFile(name string, data []byte, defRPM, defTPM int) ([]*Key, error) {
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("key file is %d bytes; the limit is %d", len(data), maxKeyFile)
	}
	var f KeysFile
	if strings.EqualFold(filepath.Ext(name), ".json") {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("decoding JSON key file: %w", err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("decoding JSON key file: trailing data after the top-level object")
		}
	} else {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("key file is empty")
			}
			return nil, fmt.Errorf("decoding YAML key file: %w", err)
		}
		var extra any
		if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("decoding YAML key file: only one document is allowed")
		}
	}
	if len(f.Keys) > maxKeys {
		return nil, fmt.Errorf("key file has %d keys; the limit is %d", len(f.Keys), maxKeys)
	}
	out := make([]*Key, 0, len(f.Keys))
	for i, s := range f.Keys {
		k, err := s.compile(defRPM, defTPM)
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		out = append(out, k)
	}
	return out, nil
}

func (s *KeySpec) compile(defRPM, defTPM int) (*Key, error) {
	if err := checkName(s.Name); err != nil {
		return nil, err
	}
	k := &Key{Name: s.Name, SemanticCache: s.SemanticCache, Namespace: s.Namespace, Admin: s.Admin, RPM: defRPM, TPM: defTPM}
	switch {
	case s.Key != "" && s.SHA256 != "":
		return nil, fmt.Errorf("key %q: set key or sha256, not both", s.Name)
	case s.Key != "":
		if err := checkSecret(s.Key); err != nil {
			return nil, fmt.Errorf("key %q: %w", s.Name, err)
		}
		k.Hash = hashKey(s.Key)
	case s.SHA256 != "":
		b, err := hex.DecodeString(strings.TrimPrefix(s.SHA256, "sha256:"))
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("key %q: sha256 must be 64 hex digits", s.Name)
		}
		copy(k.Hash[:], b)
	default:
		return nil, fmt.Errorf("key %q: set key or sha256", s.Name)
	}
	if len(s.Models) > maxModelsEach {
		return nil, fmt.Errorf("key %q: more than %d models", s.Name, maxModelsEach)
	}
	for _, m := range s.Models {
		if strings.TrimSpace(m) == "" {
			return nil, fmt.Errorf("key %q: empty model name", s.Name)
		}
	}
	k.Models = slices.Clone(s.Models)
	if s.RequestsPerMinute != nil {
		if *s.RequestsPerMinute < 0 {
			return nil, fmt.Errorf("key %q: requests_per_minute must not be negative", s.Name)
		}
		k.RPM = *s.RequestsPerMinute
	}
	if s.TokensPerMinute != nil {
		if *s.TokensPerMinute < 0 {
			return nil, fmt.Errorf("key %q: tokens_per_minute must not be negative", s.Name)
		}
		k.TPM = *s.TokensPerMinute
	}
	if k.Namespace == "" {
		k.Namespace = k.Name
	} else if err := checkName(k.Namespace); err != nil {
		return nil, fmt.Errorf("key %q: namespace: %w", s.Name, err)
	}
	return k, nil
}

// ParseKeysEnv decodes LLMO_API_KEYS: entries separated by commas or
// whitespace, each name:key or name:key:models where models is a
// |-separated list (model names may themselves contain colons, as Ollama's
// name:tag do, so everything after the second colon is the model list).
func ParseKeysEnv(s string, defRPM, defTPM int) ([]*Key, error) {
	var out []*Key
	for i, entry := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
		name, rest, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("LLMO_API_KEYS entry %d: want name:key[:model|model...]", i+1)
		}
		secret, models, _ := strings.Cut(rest, ":")
		spec := KeySpec{Name: name, Key: secret}
		if models != "" {
			spec.Models = strings.Split(models, "|")
		}
		if secret == "" {
			return nil, fmt.Errorf("LLMO_API_KEYS entry %d (%q): empty key", i+1, name)
		}
		k, err := spec.compile(defRPM, defTPM)
		if err != nil {
			return nil, fmt.Errorf("LLMO_API_KEYS entry %d: %w", i+1, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// checkDuplicates refuses two keys with one name (metrics and cache
// namespaces are per name) or one secret (the match would be ambiguous).
func checkDuplicates(keys []*Key) error {
	names := map[string]bool{}
	hashes := map[[sha256.Size]byte]string{}
	for _, k := range keys {
		if names[k.Name] {
			return fmt.Errorf("duplicate key name %q", k.Name)
		}
		names[k.Name] = true
		if other, ok := hashes[k.Hash]; ok {
			return fmt.Errorf("keys %q and %q have the same secret", other, k.Name)
		}
		hashes[k.Hash] = k.Name
	}
	return nil
}

func checkName(n string) error {
	if n == "" {
		return errors.New("name is required")
	}
	if len(n) > maxNameLen {
		return fmt.Errorf("name is longer than %d bytes", maxNameLen)
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == '@') {
			return fmt.Errorf("name %q: use letters, digits and - _ . @ only", n)
		}
	}
	return nil
}

// checkSecret rejects secrets that are too short to be secret or that could
// not be sent in an HTTP header. The error never quotes the secret.
func checkSecret(s string) error {
	if len(s) < minKeyLen {
		return fmt.Errorf("key is shorter than %d characters", minKeyLen)
	}
	if len(s) > maxKeyLen {
		return fmt.Errorf("key is longer than %d characters", maxKeyLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return errors.New("key must be printable ASCII without spaces")
		}
	}
	return nil
}
