// Package artifact moves llmo model artifacts between files, OCI registries
// (the llmo storage service or any other) and Hugging Face, and keeps a
// local cache of verified models by digest. Resolve is what the model
// service calls to turn --model into a file; the push, pull and models
// commands use the rest. The artifact format is in docs/artifact-format.md.
package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/llmo/llmo/internal/artifact/modelfmt"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/storage"
)

// ResolveOptions configure Resolve.
type ResolveOptions struct {
	StorageURL string    // storage service for NAME:TAG (LLMO_STORAGE)
	CacheDir   string    // local digest cache (LLMO_MODEL_CACHE); "" = DefaultCacheDir()
	HFBaseURL  string    // Hugging Face base URL (LLMO_HF_BASE_URL); "" = https://huggingface.co
	Token      string    // bearer token for pushes to the registry (STORAGE_PUSH_TOKEN)
	HFToken    string    // Hugging Face token (HF_TOKEN), sent to the hub only
	Progress   io.Writer // progress bars; nil = none

	// Refresh asks the registry for the tag's current digest even when the
	// reference is already cached (llmo pull). Without it a cached
	// reference is used without contacting the registry, so a model
	// service restarts while storage is down.
	Refresh bool
	// Retries is the number of download attempts; 0 = 4.
	Retries int
	// HTTP is the client to use; nil = a client with sane timeouts.
	HTTP *http.Client
}

// DefaultHFBaseURL is Hugging Face's own address.
const DefaultHFBaseURL = "https://huggingface.co"

// DefaultCacheDir is ~/.cache/llmo/models.
func DefaultCacheDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "llmo", "models")
	}
	return filepath.Join(os.TempDir(), "llmo-models")
}

var defaultHTTP = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	TLSHandshakeTimeout:   10 * time.Second,
	ResponseHeaderTimeout: 60 * time.Second,
	IdleConnTimeout:       90 * time.Second,
}}

func (o *ResolveOptions) defaults() {
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir()
	}
	if o.HFBaseURL == "" {
		o.HFBaseURL = DefaultHFBaseURL
	}
	if o.Retries <= 0 {
		o.Retries = 4
	}
	if o.HTTP == nil {
		o.HTTP = defaultHTTP
	}
}

// Resolve turns a model reference into a local file and its sha256
// digest: an existing path is used in place; oci://, NAME:TAG and hf://
// references are downloaded into the cache, verified, and reused from the
// cache afterwards. A corrupt or truncated download is retried and, if it
// never verifies, refused: nothing unverified is ever returned.
func Resolve(ctx context.Context, ref string, o ResolveOptions) (path, digest string, err error) {
	defer errs.Wrapf(&err, "resolve %s", ref)
	o.defaults()
	r, err := ParseRef(ref, o.StorageURL)
	if err != nil {
		return "", "", err
	}
	if r.Kind == KindFile {
		d, _, err := hashFile(r.Path)
		if err != nil {
			if os.IsNotExist(err) {
				return "", "", errs.Param("model", "model file %s does not exist", r.Path)
			}
			return "", "", errs.Wrap(errs.Invalid, err, "cannot read model file %s", r.Path)
		}
		return r.Path, d, nil
	}
	c := &cache{dir: o.CacheDir}
	if err := c.init(); err != nil {
		return "", "", err
	}
	if !o.Refresh || r.Digest != "" {
		if p, d, ok := c.lookupRef(r.String()); ok {
			return p, d, nil
		}
	}
	var p, d string
	switch r.Kind {
	case KindOCI:
		p, d, err = resolveOCI(ctx, r, o, c)
	case KindHF:
		p, d, err = resolveHF(ctx, r, o, c)
	}
	if err != nil {
		// The registry is down, but a copy verified earlier is at hand.
		if k := errs.KindOf(err); k == errs.Unavailable || k == errs.Timeout {
			if p, d, ok := c.lookupRef(r.String()); ok {
				return p, d, nil
			}
		}
		return "", "", err
	}
	return p, d, c.saveRef(r.String(), d)
}

func resolveOCI(ctx context.Context, r Ref, o ResolveOptions, c *cache) (string, string, error) {
	cl := &Client{Base: r.Registry, Token: o.Token, HTTP: o.HTTP, Progress: o.Progress, Retries: o.Retries}
	ref := r.Tag
	if r.Digest != "" {
		ref = r.Digest
	}
	m, _, err := cl.Manifest(ctx, r.Repo, ref)
	if err != nil {
		return "", "", err
	}
	layer, err := GGUFLayer(m)
	if err != nil {
		return "", "", err
	}
	if p, ok := c.blob(layer.Digest); ok {
		return p, layer.Digest, nil
	}
	u := cl.url("/v2/" + r.Repo + "/blobs/" + layer.Digest)
	hdr := map[string]string{}
	if o.Token != "" {
		hdr["Authorization"] = "Bearer " + o.Token
	}
	p, err := c.fetch(ctx, o, u, hdr, layer.Digest, layer.Size)
	return p, layer.Digest, err
}

// Push uploads a GGUF file as an llmo model artifact to ref (oci://... or
// NAME:TAG against storageURL) and returns the manifest digest.
func Push(ctx context.Context, file, ref string, o ResolveOptions) (string, error) {
	o.defaults()
	r, err := ParseRef(ref, o.StorageURL)
	if err != nil {
		return "", err
	}
	if r.Kind != KindOCI || r.Digest != "" {
		return "", errs.Param("ref", "push needs oci://HOST/REPO:TAG or NAME:TAG, got %q", ref)
	}
	cfg, err := ConfigFromGGUF(file)
	if err != nil {
		return "", errs.Wrap(errs.Invalid, err, "%s is not a readable GGUF file: %v", file, err)
	}
	cl := &Client{Base: r.Registry, Token: o.Token, HTTP: o.HTTP, Progress: o.Progress, Retries: o.Retries}
	cb, _ := json.Marshal(cfg)
	cd, err := cl.PushBytes(ctx, r.Repo, cb)
	if err != nil {
		return "", err
	}
	d, size, err := hashFile(file)
	if err != nil {
		return "", err
	}
	if err := cl.PushFile(ctx, r.Repo, file, d, size); err != nil {
		return "", err
	}
	m := storage.Manifest{
		SchemaVersion: 2,
		MediaType:     modelfmt.MediaTypeManifest,
		ArtifactType:  modelfmt.ArtifactType,
		Config:        &storage.Descriptor{MediaType: modelfmt.MediaTypeConfig, Digest: cd, Size: int64(len(cb))},
		Layers: []storage.Descriptor{{MediaType: modelfmt.MediaTypeGGUF, Digest: d, Size: size,
			Annotations: map[string]string{modelfmt.AnnotationTitle: filepath.Base(file)}}},
		Annotations: map[string]string{"org.opencontainers.image.created": time.Now().UTC().Format(time.RFC3339)},
	}
	return cl.PutManifest(ctx, r.Repo, r.Tag, m)
}

// cache is the local model cache:
//
//	blobs/sha256/<hex>       verified model files, named by digest
//	blobs/sha256/<hex>.ok    size and mtime when last verified
//	refs/<sha256 of ref>     {"ref","digest"}: what a reference resolved to
//	tmp/<hex>.partial        downloads in progress (resumed with Range)
type cache struct{ dir string }

func (c *cache) init() error {
	for _, d := range []string{"blobs/sha256", "refs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(c.dir, d), 0o755); err != nil {
			return errs.Wrap(errs.Internal, err, "cannot create the model cache in %s", c.dir)
		}
	}
	return nil
}

func (c *cache) blobPath(d string) string {
	return filepath.Join(c.dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
}

type stamp struct {
	Size    int64 `json:"size"`
	ModTime int64 `json:"mtime_ns"`
}

// blob returns the cached file for d if it verifies. The full hash is
// skipped when size and mtime match the last verification, so a restart
// does not rehash a large model; any write to the file changes its mtime
// and forces a rehash. A file that fails is removed.
func (c *cache) blob(d string) (string, bool) {
	if _, err := storage.ParseDigest(d); err != nil {
		return "", false
	}
	p := c.blobPath(d)
	st, err := os.Stat(p)
	if err != nil {
		return "", false
	}
	want := stamp{st.Size(), st.ModTime().UnixNano()}
	if b, err := os.ReadFile(p + ".ok"); err == nil {
		var got stamp
		if json.Unmarshal(b, &got) == nil && got == want {
			return p, true
		}
	}
	got, _, err := hashFile(p)
	if err != nil || got != d {
		_ = os.Remove(p)
		_ = os.Remove(p + ".ok")
		return "", false
	}
	c.stamp(p)
	return p, true
}

// stamp records that p was just verified.
func (c *cache) stamp(p string) {
	st, err := os.Stat(p)
	if err != nil {
		return
	}
	b, _ := json.Marshal(stamp{st.Size(), st.ModTime().UnixNano()})
	_ = os.WriteFile(p+".ok", b, 0o644)
}

func (c *cache) refPath(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return filepath.Join(c.dir, "refs", hex.EncodeToString(sum[:]))
}

func (c *cache) lookupRef(ref string) (string, string, bool) {
	b, err := os.ReadFile(c.refPath(ref))
	if err != nil {
		return "", "", false
	}
	var e struct{ Ref, Digest string }
	if json.Unmarshal(b, &e) != nil || e.Ref != ref {
		return "", "", false
	}
	p, ok := c.blob(e.Digest)
	return p, e.Digest, ok
}

func (c *cache) saveRef(ref, d string) error {
	b, _ := json.Marshal(map[string]string{"ref": ref, "digest": d})
	tmp, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), "ref-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), c.refPath(ref))
}

// fetch downloads u into the cache as blob d. want is the expected digest
// ("" when the source gives none: then the content's own digest is used),
// size the expected size (-1 if unknown). Truncated transfers resume with
// Range; content that fails verification is discarded and fetched again.
func (c *cache) fetch(ctx context.Context, o ResolveOptions, u string, hdr map[string]string, want string, size int64) (string, error) {
	name := strings.TrimPrefix(want, "sha256:")
	if name == "" {
		sum := sha256.Sum256([]byte(u))
		name = "url-" + hex.EncodeToString(sum[:8])
	}
	partial := filepath.Join(c.dir, "tmp", name+".partial")
	lock, err := os.OpenFile(partial+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", errs.Wrap(errs.Internal, err, "cannot write to the model cache")
	}
	defer lock.Close()
	if err := lockFile(lock); err != nil {
		return "", errs.Wrap(errs.Internal, err, "cannot lock the download")
	}
	// Another process may have finished the download while we waited.
	if want != "" {
		if p, ok := c.blob(want); ok {
			return p, nil
		}
	}
	var last error
	for attempt := 1; attempt <= o.Retries; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return "", errs.Wrap(errs.Canceled, ctx.Err(), "download canceled")
			case <-time.After(time.Duration(attempt-1) * 250 * time.Millisecond):
			}
		}
		f, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return "", errs.Wrap(errs.Internal, err, "cannot write to the model cache")
		}
		bar := newBar(o.Progress, size, "pull "+shortDigest(name))
		err = download(ctx, o.HTTP, u, hdr, f, size, bar)
		bar.finish()
		if err == nil {
			err = f.Sync()
		}
		f.Close()
		if err != nil {
			last = err
			if errors.Is(err, errShort) || errs.KindOf(err) == errs.Unavailable {
				continue // resume from what we have
			}
			return "", err
		}
		got, n, err := hashFile(partial)
		if err != nil {
			return "", err
		}
		if (size >= 0 && n != size) || (want != "" && got != want) {
			// Corrupt: never keep, never load. Fetch again from zero.
			_ = os.Remove(partial)
			last = errs.E(errs.BadGateway, "downloaded content failed verification: want %s (%d bytes), got %s (%d bytes)", want, size, got, n)
			continue
		}
		dst := c.blobPath(got)
		if err := os.Rename(partial, dst); err != nil {
			return "", errs.Wrap(errs.Internal, err, "cannot move the download into the cache")
		}
		c.stamp(dst)
		return dst, nil
	}
	if errs.KindOf(last) == errs.BadGateway {
		return "", last
	}
	return "", errs.Wrap(errs.Unavailable, last, "download failed after %d attempts: %v", o.Retries, last)
}

func (c *cache) String() string { return fmt.Sprintf("cache(%s)", c.dir) }
