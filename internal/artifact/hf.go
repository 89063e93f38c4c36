package artifact

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/llmo/llmo/internal/errs"
)

var sha256HexRE = regexp.MustCompile(`^[a-f0-9]{64}$`)

// resolveHF imports hf://ORG/REPO/FILE from Hugging Face (or the server at
// o.HFBaseURL). For LFS files the hub's HEAD answer carries the file's
// sha256 in X-Linked-Etag (on the redirect to the CDN) or ETag; when it
// does, the download is verified against it.
func resolveHF(ctx context.Context, r Ref, o ResolveOptions, c *cache) (string, string, error) {
	base := strings.TrimSuffix(o.HFBaseURL, "/")
	u := base + "/" + r.Repo + "/resolve/main/" + escapePath(r.File)
	hdr := map[string]string{}
	if o.HFToken != "" {
		hdr["Authorization"] = "Bearer " + o.HFToken
	}
	req, err := http.NewRequestWithContext(ctx, "HEAD", u, nil)
	if err != nil {
		return "", "", errs.Wrap(errs.Invalid, err, "bad Hugging Face URL")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	noFollow := *o.HTTP
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := noFollow.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", "", errs.Wrap(errs.Canceled, err, "canceled")
		}
		return "", "", errs.Wrap(errs.Unavailable, err, "Hugging Face (%s) unreachable", base)
	}
	res.Body.Close()
	get := u
	switch {
	case res.StatusCode >= 300 && res.StatusCode < 400:
		loc, err := res.Location()
		if err != nil {
			return "", "", errs.E(errs.BadGateway, "Hugging Face redirect without a Location")
		}
		get = loc.String()
	case res.StatusCode == http.StatusOK:
	default:
		return "", "", regError(res, "hf://"+r.Repo+"/"+r.File)
	}
	want := hubSHA256(res.Header.Get("X-Linked-Etag"))
	if want == "" {
		want = hubSHA256(res.Header.Get("ETag"))
	}
	size := int64(-1)
	for _, h := range []string{"X-Linked-Size", "Content-Length"} {
		if n, err := strconv.ParseInt(res.Header.Get(h), 10, 64); err == nil && n >= 0 && (h == "X-Linked-Size" || res.StatusCode == http.StatusOK) {
			size = n
			break
		}
	}
	if want != "" {
		if p, ok := c.blob(want); ok {
			return p, want, nil
		}
	}
	// Send the token only to the hub itself, not to a CDN it redirects to.
	if gu, err := url.Parse(get); err == nil {
		if bu, err := url.Parse(base); err == nil && gu.Host != bu.Host {
			hdr = nil
		}
	}
	p, err := c.fetch(ctx, o, get, hdr, want, size)
	if err != nil {
		return "", "", err
	}
	if want == "" {
		want = "sha256:" + filepath.Base(p) // the cache names files by digest
	}
	return p, want, nil
}

// hubSHA256 extracts a sha256 from an ETag value ("<64 hex>", maybe weak).
// Git blob ETags (40 hex, sha1) are not content sha256 and give "".
func hubSHA256(etag string) string {
	e := strings.TrimPrefix(strings.TrimSpace(etag), "W/")
	e = strings.ToLower(strings.Trim(e, `"`))
	if sha256HexRE.MatchString(e) {
		return "sha256:" + e
	}
	return ""
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}
