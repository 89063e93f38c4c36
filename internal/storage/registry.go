package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/llmo/llmo/internal/errs"
)

// Keys in the backend. Repository names pass ValidRepo, so none of their
// components starts with "_" and none can collide with the store's own
// "_layers", "_manifests", "_referrers" and "_uploads" directories.
func blobKey(d Digest) string    { return "blobs/sha256/" + d.Hex()[:2] + "/" + d.Hex() }
func repoKey(repo string) string { return "repositories/" + repo }
func layerLink(repo string, d Digest) string {
	return repoKey(repo) + "/_layers/sha256/" + d.Hex()
}
func revLink(repo string, d Digest) string {
	return repoKey(repo) + "/_manifests/revisions/sha256/" + d.Hex()
}
func tagsPrefix(repo string) string  { return repoKey(repo) + "/_manifests/tags" }
func tagKey(repo, tag string) string { return tagsPrefix(repo) + "/" + tag }
func referrersPrefix(repo string, subject Digest) string {
	return repoKey(repo) + "/_referrers/sha256/" + subject.Hex()
}
func uploadInfoKey(id string) string { return "_uploads/" + id + "/info.json" }

var uploadIDRE = regexp.MustCompile(`^[a-f0-9]{32}$`)

// upload is the persisted state of an upload session.
type upload struct {
	Repo    string    `json:"repo"`
	Size    int64     `json:"size"`
	Parts   int       `json:"parts"`
	Started time.Time `json:"started"`
}

// registry implements the distribution operations over a Backend.
type registry struct {
	b         Backend
	maxUpload int64

	mu      sync.Mutex
	uploads map[string]*sync.Mutex // serialises PATCH/PUT on one session
}

func newRegistry(b Backend, maxUpload int64) *registry {
	return &registry{b: b, maxUpload: maxUpload, uploads: map[string]*sync.Mutex{}}
}

func (g *registry) lockUpload(id string) func() {
	g.mu.Lock()
	m := g.uploads[id]
	if m == nil {
		m = &sync.Mutex{}
		g.uploads[id] = m
	}
	g.mu.Unlock()
	m.Lock()
	return m.Unlock
}

func (g *registry) forgetUpload(id string) {
	g.mu.Lock()
	delete(g.uploads, id)
	g.mu.Unlock()
}

func blobUnknown(d Digest) error {
	return errs.E(errs.NotFound, "blob %s unknown to registry", d).WithCode(codeBlobUnknown)
}

func manifestUnknown(ref string) error {
	return errs.E(errs.NotFound, "manifest %s unknown to registry", truncate(ref)).WithCode(codeManifestUnknown)
}

func uploadUnknown() error {
	return errs.E(errs.NotFound, "blob upload unknown to registry").WithCode(codeBlobUploadUnknown)
}

func internal(err error, what string) error {
	return errs.Wrap(errs.Internal, err, "storage backend failed: %s", what)
}

// exists reports whether key exists, separating "no" from backend failure.
func (g *registry) exists(ctx context.Context, key string) (bool, error) {
	_, err := g.b.Stat(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case isNotExist(err):
		return false, nil
	}
	return false, internal(err, "stat")
}

// blobInRepo checks that repo links d and that the blob exists, and
// returns its size.
func (g *registry) blobInRepo(ctx context.Context, repo string, d Digest) (int64, error) {
	ok, err := g.exists(ctx, layerLink(repo, d))
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, blobUnknown(d)
	}
	size, err := g.b.Stat(ctx, blobKey(d))
	if isNotExist(err) {
		return 0, blobUnknown(d)
	}
	if err != nil {
		return 0, internal(err, "stat blob")
	}
	return size, nil
}

func (g *registry) link(ctx context.Context, repo string, d Digest) error {
	if err := g.b.Put(ctx, layerLink(repo, d), []byte(d)); err != nil {
		return internal(err, "link blob")
	}
	return nil
}

// mount links a blob that from holds into repo. ok is false when from does
// not hold it, in which case the caller starts an ordinary upload.
func (g *registry) mount(ctx context.Context, repo, from string, d Digest) (bool, error) {
	if _, err := g.blobInRepo(ctx, from, d); err != nil {
		if errs.Is(err, errs.NotFound) {
			return false, nil
		}
		return false, err
	}
	return true, g.link(ctx, repo, d)
}

func newUploadID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (g *registry) startUpload(ctx context.Context, repo string) (string, error) {
	id := newUploadID()
	if err := g.saveUpload(ctx, id, &upload{Repo: repo, Started: time.Now().UTC()}); err != nil {
		return "", err
	}
	return id, nil
}

func (g *registry) saveUpload(ctx context.Context, id string, u *upload) error {
	b, _ := json.Marshal(u)
	if err := g.b.Put(ctx, uploadInfoKey(id), b); err != nil {
		return internal(err, "save upload state")
	}
	return nil
}

func (g *registry) loadUpload(ctx context.Context, repo, id string) (*upload, error) {
	if !uploadIDRE.MatchString(id) {
		return nil, uploadUnknown()
	}
	rc, _, err := g.b.Open(ctx, uploadInfoKey(id))
	if isNotExist(err) {
		return nil, uploadUnknown()
	}
	if err != nil {
		return nil, internal(err, "load upload state")
	}
	defer rc.Close()
	var u upload
	if err := json.NewDecoder(io.LimitReader(rc, 1<<16)).Decode(&u); err != nil {
		return nil, internal(err, "decode upload state")
	}
	if u.Repo != repo {
		return nil, uploadUnknown()
	}
	return &u, nil
}

// appendChunk streams r into the session, refusing to grow it past the
// upload cap. It returns the bytes added.
func (g *registry) appendChunk(ctx context.Context, id string, u *upload, r io.Reader) (int64, error) {
	room := g.maxUpload - u.Size
	lr := &capReader{r: r, left: room}
	n, err := g.b.AppendUpload(ctx, id, u.Parts, u.Size, lr)
	if lr.over {
		_ = g.dropLastPart(ctx, id, u)
		return 0, errs.E(errs.TooLarge, "upload exceeds the limit of %d bytes", g.maxUpload).WithCode(codeSizeInvalid)
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0, errs.Wrap(errs.Canceled, err, "upload canceled")
		}
		if e := errs.As(err); e.Kind == errs.TooLarge {
			return 0, e
		}
		return 0, errs.Wrap(errs.Invalid, err, "could not read the upload body").WithCode(codeBlobUploadInvalid)
	}
	if n == 0 {
		// An empty chunk adds nothing; keep no empty part around.
		_ = g.dropLastPart(ctx, id, u)
		return 0, nil
	}
	u.Size += n
	u.Parts++
	return n, g.saveUpload(ctx, id, u)
}

// dropLastPart restores the staged data to u's recorded state after a
// failed chunk, so that the client can resume at u.Size.
func (g *registry) dropLastPart(ctx context.Context, id string, u *upload) error {
	return g.b.TruncateUpload(ctx, id, u.Parts, u.Size)
}

// commit verifies and publishes the session as blob d in repo.
func (g *registry) commit(ctx context.Context, id string, u *upload, d Digest) error {
	err := g.b.CommitUpload(ctx, id, u.Parts, blobKey(d), d)
	if err == errDigestMismatch {
		return errs.E(errs.Invalid, "uploaded content does not match digest %s", d).WithCode(codeDigestInvalid)
	}
	if err != nil {
		return internal(err, "commit upload")
	}
	if err := g.link(ctx, u.Repo, d); err != nil {
		return err
	}
	_ = g.b.DeleteUpload(ctx, id)
	g.forgetUpload(id)
	return nil
}

func (g *registry) cancelUpload(ctx context.Context, id string) error {
	if err := g.b.DeleteUpload(ctx, id); err != nil {
		return internal(err, "delete upload")
	}
	g.forgetUpload(id)
	return nil
}

// capReader fails once more than left bytes have been read.
type capReader struct {
	r    io.Reader
	left int64
	over bool
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		c.over = true
		return 0, errs.E(errs.TooLarge, "upload too large").WithCode(codeSizeInvalid)
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		c.over = true
		return 0, errs.E(errs.TooLarge, "upload too large").WithCode(codeSizeInvalid)
	}
	return n, err
}

// resolveManifest turns a tag or digest reference into a digest that repo
// holds, with its media type.
func (g *registry) resolveManifest(ctx context.Context, repo, ref string) (Digest, string, error) {
	var d Digest
	if strings.Contains(ref, ":") {
		var err error
		if d, err = ParseDigest(ref); err != nil {
			return "", "", err
		}
	} else {
		if err := ValidTag(ref); err != nil {
			return "", "", err
		}
		b, err := g.readSmall(ctx, tagKey(repo, ref), 256)
		if isNotExist(err) {
			return "", "", manifestUnknown(ref)
		}
		if err != nil {
			return "", "", internal(err, "read tag")
		}
		if d, err = ParseDigest(string(b)); err != nil {
			return "", "", internal(err, "corrupt tag link")
		}
	}
	mt, err := g.readSmall(ctx, revLink(repo, d), 1024)
	if isNotExist(err) {
		return "", "", manifestUnknown(ref)
	}
	if err != nil {
		return "", "", internal(err, "read manifest link")
	}
	return d, string(mt), nil
}

func (g *registry) readSmall(ctx context.Context, key string, max int64) ([]byte, error) {
	rc, _, err := g.b.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, max))
}

// readManifest returns the manifest bytes of d, verified against d.
func (g *registry) readManifest(ctx context.Context, d Digest) ([]byte, error) {
	b, err := g.readSmall(ctx, blobKey(d), maxManifestBytes+1)
	if isNotExist(err) {
		return nil, manifestUnknown(string(d))
	}
	if err != nil {
		return nil, internal(err, "read manifest")
	}
	if DigestOf(b) != d {
		return nil, errVerify
	}
	return b, nil
}

var errVerify = errs.E(errs.Internal, "stored content failed digest verification").WithCode("BLOB_CORRUPT")

// putManifest validates and stores a manifest under repo, tagging it when
// ref is a tag. It returns the digest and the parsed manifest.
func (g *registry) putManifest(ctx context.Context, repo, ref, contentType string, body []byte) (Digest, *Manifest, error) {
	var tag string
	var want Digest
	if strings.Contains(ref, ":") {
		var err error
		if want, err = ParseDigest(ref); err != nil {
			return "", nil, err
		}
	} else {
		if err := ValidTag(ref); err != nil {
			return "", nil, err
		}
		tag = ref
	}
	m, err := ParseManifest(contentType, body)
	if err != nil {
		return "", nil, err
	}
	d := DigestOf(body)
	if want != "" && want != d {
		return "", nil, errs.E(errs.Invalid, "manifest digest is %s, not %s", d, want).WithCode(codeDigestInvalid)
	}
	if m.IsIndex() {
		for _, c := range m.Manifests {
			ok, err := g.exists(ctx, revLink(repo, Digest(c.Digest)))
			if err != nil {
				return "", nil, err
			}
			if !ok {
				return "", nil, errs.E(errs.Invalid, "manifest %s referenced by the index is unknown", c.Digest).WithCode(codeManifestBlobUnknown)
			}
		}
	} else {
		refs := append([]Descriptor{*m.Config}, m.Layers...)
		for _, c := range refs {
			if _, err := g.blobInRepo(ctx, repo, Digest(c.Digest)); err != nil {
				if errs.Is(err, errs.NotFound) {
					return "", nil, errs.E(errs.Invalid, "blob %s referenced by the manifest is unknown", c.Digest).WithCode(codeManifestBlobUnknown)
				}
				return "", nil, err
			}
		}
	}
	if ok, err := g.exists(ctx, blobKey(d)); err != nil {
		return "", nil, err
	} else if !ok {
		if err := g.b.Put(ctx, blobKey(d), body); err != nil {
			return "", nil, internal(err, "store manifest")
		}
	}
	if err := g.b.Put(ctx, revLink(repo, d), []byte(m.MediaType)); err != nil {
		return "", nil, internal(err, "link manifest")
	}
	if m.Subject != nil {
		desc := Descriptor{MediaType: m.MediaType, Digest: string(d), Size: int64(len(body)), ArtifactType: m.ArtifactType, Annotations: m.Annotations}
		if desc.ArtifactType == "" && m.Config != nil {
			desc.ArtifactType = m.Config.MediaType
		}
		b, _ := json.Marshal(desc)
		if err := g.b.Put(ctx, referrersPrefix(repo, Digest(m.Subject.Digest))+"/"+d.Hex(), b); err != nil {
			return "", nil, internal(err, "index referrer")
		}
	}
	if tag != "" {
		if err := g.b.Put(ctx, tagKey(repo, tag), []byte(d)); err != nil {
			return "", nil, internal(err, "tag manifest")
		}
	}
	return d, m, nil
}

// deleteManifest deletes a tag, or a manifest revision with every tag that
// points at it.
func (g *registry) deleteManifest(ctx context.Context, repo, ref string) error {
	if !strings.Contains(ref, ":") {
		if err := ValidTag(ref); err != nil {
			return err
		}
		ok, err := g.exists(ctx, tagKey(repo, ref))
		if err != nil {
			return err
		}
		if !ok {
			return manifestUnknown(ref)
		}
		return g.b.Delete(ctx, tagKey(repo, ref))
	}
	d, _, err := g.resolveManifest(ctx, repo, ref)
	if err != nil {
		return err
	}
	tags, err := g.tags(ctx, repo)
	if err != nil {
		return err
	}
	for _, t := range tags {
		b, err := g.readSmall(ctx, tagKey(repo, t), 256)
		if err == nil && Digest(b) == d {
			if err := g.b.Delete(ctx, tagKey(repo, t)); err != nil {
				return internal(err, "delete tag")
			}
		}
	}
	if body, err := g.readManifest(ctx, d); err == nil {
		if m, err := ParseManifest("", body); err == nil && m.Subject != nil {
			_ = g.b.Delete(ctx, referrersPrefix(repo, Digest(m.Subject.Digest))+"/"+d.Hex())
		}
	}
	if err := g.b.Delete(ctx, revLink(repo, d)); err != nil {
		return internal(err, "delete manifest")
	}
	return nil
}

func (g *registry) tags(ctx context.Context, repo string) ([]string, error) {
	keys, err := g.b.List(ctx, tagsPrefix(repo))
	if err != nil {
		return nil, internal(err, "list tags")
	}
	var tags []string
	for _, k := range keys {
		if ValidTag(k) == nil {
			tags = append(tags, k)
		}
	}
	sort.Strings(tags)
	return tags, nil
}

// repoExists reports whether repo holds any manifest or blob.
func (g *registry) repoExists(ctx context.Context, repo string) (bool, error) {
	keys, err := g.b.List(ctx, repoKey(repo))
	if err != nil {
		return false, internal(err, "list repository")
	}
	return len(keys) > 0, nil
}

// repositories lists repositories that hold at least one manifest.
func (g *registry) repositories(ctx context.Context) ([]string, error) {
	keys, err := g.b.List(ctx, "repositories")
	if err != nil {
		return nil, internal(err, "list repositories")
	}
	seen := map[string]bool{}
	var names []string
	for _, k := range keys {
		i := strings.Index(k, "/_manifests/revisions/")
		if i <= 0 {
			continue
		}
		name := k[:i]
		if !seen[name] && ValidRepo(name) == nil {
			seen[name] = true
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

func (g *registry) referrers(ctx context.Context, repo string, subject Digest, artifactType string) ([]Descriptor, error) {
	keys, err := g.b.List(ctx, referrersPrefix(repo, subject))
	if err != nil {
		return nil, internal(err, "list referrers")
	}
	out := []Descriptor{}
	for _, k := range keys {
		b, err := g.readSmall(ctx, referrersPrefix(repo, subject)+"/"+k, 1<<20)
		if err != nil {
			continue
		}
		var d Descriptor
		if json.Unmarshal(b, &d) != nil {
			continue
		}
		// A deleted manifest's referrer entry may outlive it briefly.
		if ok, _ := g.exists(ctx, revLink(repo, Digest(d.Digest))); !ok {
			continue
		}
		if artifactType == "" || d.ArtifactType == artifactType {
			out = append(out, d)
		}
	}
	return out, nil
}
