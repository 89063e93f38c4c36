package artifact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/llmo/llmo/internal/artifact/modelfmt"
	"github.com/llmo/llmo/internal/errs"
	"github.com/llmo/llmo/internal/storage"
)

// Client talks to an OCI registry: the llmo storage service or any other
// (ECR, GHCR, Harbor, CNCF Distribution).
type Client struct {
	Base      string // http(s)://HOST[:PORT]
	Token     string // bearer token for pushes (STORAGE_PUSH_TOKEN)
	HTTP      *http.Client
	ChunkSize int64 // PATCH size for blob uploads; 0 = 32 MiB
	Retries   int   // attempts per transfer; 0 = 4
	Progress  io.Writer
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

func (c *Client) retries() int {
	if c.Retries > 0 {
		return c.Retries
	}
	return 4
}

func (c *Client) url(path string) string { return strings.TrimSuffix(c.Base, "/") + path }

func (c *Client) do(ctx context.Context, method, u string, body io.Reader, size int64, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	res, err := c.http().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, errs.Wrap(errs.Canceled, err, "canceled")
		}
		return nil, errs.Wrap(errs.Unavailable, err, "registry %s unreachable", c.Base)
	}
	return res, nil
}

// regError turns a registry error response into an errs.Error that keeps
// the registry's message.
func regError(res *http.Response, what string) error {
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	msg := strings.TrimSpace(string(b))
	var env struct {
		Errors []struct{ Code, Message string }
	}
	if json.Unmarshal(b, &env) == nil && len(env.Errors) > 0 {
		msg = env.Errors[0].Code + ": " + env.Errors[0].Message
	}
	kind := errs.BadGateway
	switch res.StatusCode {
	case http.StatusNotFound:
		kind = errs.NotFound
	case http.StatusUnauthorized:
		kind = errs.Unauthenticated
	case http.StatusForbidden:
		kind = errs.PermissionDenied
	case http.StatusBadRequest:
		kind = errs.Invalid
	case http.StatusRequestEntityTooLarge:
		kind = errs.TooLarge
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		kind = errs.Unavailable
	}
	return errs.E(kind, "%s: registry answered %d: %s", what, res.StatusCode, truncate(msg))
}

func truncate(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

var manifestAccept = strings.Join([]string{
	storage.MediaTypeOCIManifest, storage.MediaTypeDockerManifest,
}, ", ")

// Manifest fetches and verifies a manifest by tag or digest.
func (c *Client) Manifest(ctx context.Context, repo, ref string) (*storage.Manifest, string, error) {
	res, err := c.do(ctx, "GET", c.url("/v2/"+repo+"/manifests/"+ref), nil, 0, map[string]string{"Accept": manifestAccept})
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, "", regError(res, "manifest "+repo+":"+ref)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, 4<<20+1))
	if err != nil {
		return nil, "", errs.Wrap(errs.Unavailable, err, "reading manifest")
	}
	d := storage.DigestOf(b)
	if strings.HasPrefix(ref, "sha256:") && string(d) != ref {
		return nil, "", errs.E(errs.BadGateway, "manifest %s failed digest verification (got %s)", ref, d)
	}
	if h := res.Header.Get("Docker-Content-Digest"); h != "" && h != string(d) {
		return nil, "", errs.E(errs.BadGateway, "manifest %s:%s failed digest verification: registry says %s, content is %s", repo, ref, h, d)
	}
	m, err := storage.ParseManifest(res.Header.Get("Content-Type"), b)
	if err != nil {
		return nil, "", errs.Wrap(errs.BadGateway, err, "registry sent an invalid manifest")
	}
	return m, string(d), nil
}

// GGUFLayer picks the model layer of a manifest: the layer with llmo's
// GGUF media type, or else a single layer whose title ends in .gguf (an
// artifact pushed with oras).
func GGUFLayer(m *storage.Manifest) (storage.Descriptor, error) {
	var cand []storage.Descriptor
	for _, l := range m.Layers {
		if l.MediaType == modelfmt.MediaTypeGGUF {
			return l, nil
		}
		if strings.HasSuffix(strings.ToLower(l.Annotations[modelfmt.AnnotationTitle]), ".gguf") {
			cand = append(cand, l)
		}
	}
	if len(cand) == 1 {
		return cand[0], nil
	}
	return storage.Descriptor{}, errs.E(errs.Invalid, "the artifact has no GGUF layer (media type %s)", modelfmt.MediaTypeGGUF)
}

// BlobExists reports whether repo holds blob d.
func (c *Client) BlobExists(ctx context.Context, repo, d string) (bool, error) {
	res, err := c.do(ctx, "HEAD", c.url("/v2/"+repo+"/blobs/"+d), nil, 0, nil)
	if err != nil {
		return false, err
	}
	res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, regError(res, "blob "+d)
}

// PushBytes uploads a small blob in one request.
func (c *Client) PushBytes(ctx context.Context, repo string, b []byte) (string, error) {
	d := string(storage.DigestOf(b))
	if ok, err := c.BlobExists(ctx, repo, d); err != nil || ok {
		return d, err
	}
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return "", err
	}
	res, err := c.do(ctx, "PUT", withQuery(loc, "digest="+d), bytes.NewReader(b), int64(len(b)), map[string]string{"Content-Type": "application/octet-stream"})
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return "", regError(res, "upload blob")
	}
	return d, nil
}

func withQuery(u, kv string) string {
	if strings.Contains(u, "?") {
		return u + "&" + kv
	}
	return u + "?" + kv
}

func (c *Client) startUpload(ctx context.Context, repo string) (string, error) {
	res, err := c.do(ctx, "POST", c.url("/v2/"+repo+"/blobs/uploads/"), nil, 0, nil)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		return "", regError(res, "start upload")
	}
	return c.location(res)
}

func (c *Client) location(res *http.Response) (string, error) {
	loc, err := res.Location()
	if err != nil {
		return "", errs.Wrap(errs.BadGateway, err, "registry sent no upload Location")
	}
	return loc.String(), nil
}

// uploadStatus asks how many bytes an upload session holds (end-13).
func (c *Client) uploadStatus(ctx context.Context, loc string) (int64, string, error) {
	res, err := c.do(ctx, "GET", loc, nil, 0, nil)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusNoContent && res.StatusCode != http.StatusOK {
		return 0, "", regError(res, "upload status")
	}
	next, err := c.location(res)
	if err != nil {
		next = loc
	}
	return rangeEnd(res.Header.Get("Range")), next, nil
}

// rangeEnd turns "0-N" into N+1 bytes. "0-0" is ambiguous in the spec
// (Distribution sends it for an empty session); it is read as 0 so that a
// resumed upload re-sends its first byte rather than skipping it.
func rangeEnd(h string) int64 {
	_, e, ok := strings.Cut(h, "-")
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(e, 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n + 1
}

// PushFile uploads a file as blob d (its sha256) in PATCH chunks. A failed
// chunk is retried from the offset the registry reports, so a transfer
// resumes instead of starting over.
func (c *Client) PushFile(ctx context.Context, repo, path, d string, size int64) error {
	if ok, err := c.BlobExists(ctx, repo, d); err != nil || ok {
		if ok {
			c.progressSkip(size, "already in the registry")
		}
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := c.ChunkSize
	if chunk <= 0 {
		chunk = 32 << 20
	}
	loc, err := c.startUpload(ctx, repo)
	if err != nil {
		return err
	}
	bar := newBar(c.Progress, size, "push "+shortDigest(d))
	defer bar.finish()
	var off int64
	fails := 0
	for off < size {
		n := min(chunk, size-off)
		sec := io.NewSectionReader(f, off, n)
		res, err := c.do(ctx, "PATCH", loc, io.TeeReader(sec, bar), n, map[string]string{
			"Content-Type":  "application/octet-stream",
			"Content-Range": fmt.Sprintf("%d-%d", off, off+n-1),
		})
		if err == nil {
			if res.StatusCode == http.StatusAccepted {
				res.Body.Close()
				if next, lerr := c.location(res); lerr == nil {
					loc = next
				}
				off += n
				fails = 0
				continue
			}
			err = regError(res, "upload chunk")
			res.Body.Close()
			if k := errs.KindOf(err); k != errs.Unavailable && k != errs.BadGateway && res.StatusCode != http.StatusRequestedRangeNotSatisfiable {
				return err
			}
		}
		if ctx.Err() != nil {
			return errs.Wrap(errs.Canceled, ctx.Err(), "push canceled")
		}
		fails++
		if fails >= c.retries() {
			return err
		}
		time.Sleep(time.Duration(fails) * 200 * time.Millisecond)
		got, next, serr := c.uploadStatus(ctx, loc)
		if serr != nil {
			continue
		}
		loc, off = next, got
		bar.set(off)
	}
	res, err := c.do(ctx, "PUT", withQuery(loc, "digest="+d), nil, 0, nil)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return regError(res, "complete upload")
	}
	return nil
}

// PutManifest stores a manifest under a tag and returns its digest.
func (c *Client) PutManifest(ctx context.Context, repo, tag string, m any) (string, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	res, err := c.do(ctx, "PUT", c.url("/v2/"+repo+"/manifests/"+tag), bytes.NewReader(b), int64(len(b)),
		map[string]string{"Content-Type": storage.MediaTypeOCIManifest})
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return "", regError(res, "put manifest")
	}
	return string(storage.DigestOf(b)), nil
}

// Models lists the llmo models the storage service holds.
func (c *Client) Models(ctx context.Context) (*modelfmt.ModelList, error) {
	res, err := c.do(ctx, "GET", c.url("/llmo/v1/models"), nil, 0, nil)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, regError(res, "list models")
	}
	var l modelfmt.ModelList
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<20)).Decode(&l); err != nil {
		return nil, errs.Wrap(errs.BadGateway, err, "decoding the model list")
	}
	return &l, nil
}

// errShort marks a download that ended early; it is retried with Range.
var errShort = errors.New("download ended early")

// download fetches u into dst (resuming from dst's current size with a
// Range request), stopping at size bytes when size >= 0.
func download(ctx context.Context, hc *http.Client, u string, hdr map[string]string, dst *os.File, size int64, bar *bar) error {
	off, err := dst.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if size >= 0 && off >= size {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	}
	res, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return errs.Wrap(errs.Canceled, err, "download canceled")
		}
		return fmt.Errorf("%w: %v", errShort, err)
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusPartialContent && off > 0:
	case res.StatusCode == http.StatusOK:
		// The server ignored Range: start over.
		if err := dst.Truncate(0); err != nil {
			return err
		}
		if _, err := dst.Seek(0, io.SeekStart); err != nil {
			return err
		}
		off = 0
	case res.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		// Our partial file is longer than the object: start over.
		_ = dst.Truncate(0)
		return fmt.Errorf("%w: partial file longer than the object", errShort)
	default:
		return regError(res, "download "+redact(u))
	}
	bar.set(off)
	var body io.Reader = res.Body
	if size >= 0 {
		body = io.LimitReader(res.Body, size-off)
	}
	n, err := io.Copy(io.MultiWriter(dst, bar), body)
	if err != nil {
		if ctx.Err() != nil {
			return errs.Wrap(errs.Canceled, err, "download canceled")
		}
		return fmt.Errorf("%w: %v", errShort, err)
	}
	if size >= 0 && off+n < size {
		return fmt.Errorf("%w: got %d of %d bytes", errShort, off+n, size)
	}
	return nil
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "url"
	}
	p.RawQuery = ""
	return p.String()
}

// hashFile is the sha256 digest of a file.
func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), n, nil
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}
