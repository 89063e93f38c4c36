package artifact

import (
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/storage"
)

// Kind is the kind of model reference.
type Kind int

// Reference kinds.
const (
	KindFile Kind = iota // a local path
	KindOCI              // oci://HOST[:PORT]/REPO:TAG or NAME:TAG against the storage service
	KindHF               // hf://ORG/REPO/FILE.gguf
)

// Ref is a parsed model reference.
type Ref struct {
	Kind     Kind
	Path     string // KindFile
	Registry string // KindOCI: base URL, such as http://127.0.0.1:8003
	Repo     string // KindOCI: repository; KindHF: ORG/REPO
	Tag      string // KindOCI: tag ("" when Digest is set)
	Digest   string // KindOCI: manifest digest when pinned with @sha256:...
	File     string // KindHF: file inside the repository
	Original string
}

// String is the canonical form, used as the key of the local ref cache.
func (r Ref) String() string {
	switch r.Kind {
	case KindFile:
		return r.Path
	case KindHF:
		return "hf://" + r.Repo + "/" + r.File
	}
	s := r.Registry + "/" + r.Repo
	if r.Digest != "" {
		return s + "@" + r.Digest
	}
	return s + ":" + r.Tag
}

// ParseRef parses a model reference. storageURL is the storage service for
// NAME:TAG references.
func ParseRef(s, storageURL string) (Ref, error) {
	r := Ref{Original: s}
	switch {
	case s == "":
		return r, errs.Param("model", "empty model reference")
	case strings.HasPrefix(s, "hf://"):
		rest := strings.TrimPrefix(s, "hf://")
		parts := strings.Split(rest, "/")
		if len(parts) < 3 || parts[0] == "" || parts[1] == "" {
			return r, errs.Param("model", "hf reference %q: want hf://ORG/REPO/FILE.gguf", s)
		}
		for _, p := range parts {
			if p == "" || p == "." || p == ".." {
				return r, errs.Param("model", "hf reference %q: bad path component", s)
			}
		}
		r.Kind, r.Repo, r.File = KindHF, parts[0]+"/"+parts[1], strings.Join(parts[2:], "/")
		return r, nil
	case strings.HasPrefix(s, "oci://"), strings.HasPrefix(s, "oci+http://"), strings.HasPrefix(s, "oci+https://"):
		scheme, rest, _ := strings.Cut(s, "://")
		host, name, ok := strings.Cut(rest, "/")
		if !ok || host == "" {
			return r, errs.Param("model", "oci reference %q: want oci://HOST[:PORT]/REPO:TAG", s)
		}
		switch scheme {
		case "oci+http":
			r.Registry = "http://" + host
		case "oci+https":
			r.Registry = "https://" + host
		default:
			r.Registry = defaultScheme(host) + "://" + host
		}
		return parseName(r, name)
	}
	if isPath(s) {
		r.Kind, r.Path = KindFile, s
		return r, nil
	}
	if storageURL == "" {
		return r, errs.Param("model", "%q is neither a file nor a full reference, and no storage service is configured (--storage or LLMO_STORAGE)", s)
	}
	u, err := url.Parse(storageURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return r, errs.Param("storage", "storage URL %q: want http(s)://HOST[:PORT]", storageURL)
	}
	r.Registry = u.Scheme + "://" + u.Host
	return parseName(r, s)
}

// isPath reports whether s names a local file: it exists, or it looks like
// a path rather than NAME:TAG.
func isPath(s string) bool {
	if _, err := os.Stat(s); err == nil {
		return true
	}
	return strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") ||
		strings.HasPrefix(s, "~") || strings.HasSuffix(s, ".gguf") && !strings.Contains(s, ":")
}

func parseName(r Ref, name string) (Ref, error) {
	r.Kind = KindOCI
	if repo, d, ok := strings.Cut(name, "@"); ok {
		r.Repo, r.Digest = repo, d
		if _, err := storage.ParseDigest(d); err != nil {
			return r, errs.Param("model", "reference %q: invalid digest %q", r.Original, d)
		}
	} else {
		r.Repo, r.Tag = name, "latest"
		if i := strings.LastIndex(name, ":"); i > 0 && !strings.Contains(name[i:], "/") {
			r.Repo, r.Tag = name[:i], name[i+1:]
		}
		if storage.ValidTag(r.Tag) != nil {
			return r, errs.Param("model", "reference %q: invalid tag %q", r.Original, r.Tag)
		}
	}
	if storage.ValidRepo(r.Repo) != nil {
		return r, errs.Param("model", "reference %q: invalid repository name %q (lower-case letters, digits, separators . _ - and /)", r.Original, r.Repo)
	}
	return r, nil
}

func defaultScheme(host string) string {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return "http"
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return "http"
	}
	return "https"
}
