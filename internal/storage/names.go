package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"

	"github.com/llmo/llmo/internal/errs"
)

// The OCI distribution spec's grammar for repository names and tags.
var (
	repoRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	hexRE  = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

// maxRepoLen is CNCF Distribution's limit on a repository name.
const maxRepoLen = 255

// ValidRepo checks a repository name against the spec's regexp. Every
// component starts with [a-z0-9], so no name can contain "..", a leading
// "/" or one of the store's own "_"-prefixed directories.
func ValidRepo(name string) error {
	if name == "" || len(name) > maxRepoLen || !repoRE.MatchString(name) {
		return errs.E(errs.Invalid, "invalid repository name %q", truncate(name)).WithCode(codeNameInvalid)
	}
	return nil
}

// ValidTag checks a tag against the spec's regexp.
func ValidTag(tag string) error {
	if !tagRE.MatchString(tag) {
		return errs.E(errs.Invalid, "invalid tag %q", truncate(tag)).WithCode(codeTagInvalid)
	}
	return nil
}

// Digest is a validated "sha256:<64 hex>" content digest.
type Digest string

// ParseDigest accepts sha256 digests only; the store is content-addressed by
// sha256 and other algorithms are refused rather than half supported.
func ParseDigest(s string) (Digest, error) {
	alg, hx, ok := strings.Cut(s, ":")
	if !ok || alg == "" || hx == "" {
		return "", errs.E(errs.Invalid, "invalid digest %q", truncate(s)).WithCode(codeDigestInvalid)
	}
	if alg != "sha256" {
		return "", errs.E(errs.Invalid, "unsupported digest algorithm %q: only sha256 is supported", truncate(alg)).WithCode(codeDigestInvalid)
	}
	if !hexRE.MatchString(hx) {
		return "", errs.E(errs.Invalid, "invalid sha256 digest %q", truncate(s)).WithCode(codeDigestInvalid)
	}
	return Digest(s), nil
}

// Hex is the digest's hex part.
func (d Digest) Hex() string { return string(d)[len("sha256:"):] }

func (d Digest) String() string { return string(d) }

// DigestOf is the sha256 digest of b.
func DigestOf(b []byte) Digest {
	sum := sha256.Sum256(b)
	return Digest("sha256:" + hex.EncodeToString(sum[:]))
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
