package storage

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// checker fails the test for llmo and only logs for the reference
// registry, so that the reference run lists behaviour differences.
type checker struct {
	t   *testing.T
	ref bool
}

func (c checker) want(ok bool, format string, args ...any) {
	c.t.Helper()
	if ok {
		return
	}
	if c.ref {
		c.t.Logf("REFERENCE DIFFERS: "+format, args...)
		return
	}
	c.t.Errorf(format, args...)
}

func ociCode(b []byte) string {
	var e ociErrors
	if json.Unmarshal(b, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

func pushBlob(t *testing.T, base, repo string, blob []byte) string {
	t.Helper()
	d := sha(blob)
	r := do(t, "POST", base+"/v2/"+repo+"/blobs/uploads/?digest="+d, blob, "Content-Type", "application/octet-stream")
	if r.code != http.StatusCreated {
		// Some registries do not take monolithic POSTs; use POST + PUT.
		r = do(t, "POST", base+"/v2/"+repo+"/blobs/uploads/", nil)
		if r.code != http.StatusAccepted {
			t.Fatalf("start upload: %v", r)
		}
		r = do(t, "PUT", withQuery(abs(base, r.header.Get("Location")), "digest="+d), blob, "Content-Type", "application/octet-stream")
		if r.code != http.StatusCreated {
			t.Fatalf("put blob: %v", r)
		}
	}
	return d
}

func imageManifest(config, layer []byte, extra string) []byte {
	return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]%s}`,
		sha(config), len(config), sha(layer), len(layer), extra))
}

// runSpecSuite drives end-1 .. end-13 with raw HTTP against base.
func runSpecSuite(t *testing.T, base string, ref bool) {
	c := checker{t, ref}
	const repo = "suite/models"
	blob := bytes.Repeat([]byte("llmo-blob-0123456789"), 1000)

	t.Run("end-1 base", func(t *testing.T) {
		r := do(t, "GET", base+"/v2/", nil)
		checker{t, ref}.want(r.code == 200, "GET /v2/ = %v", r)
		checker{t, ref}.want(r.header.Get("Docker-Distribution-API-Version") == "registry/2.0", "API version header = %q", r.header.Get("Docker-Distribution-API-Version"))
		r = do(t, "GET", base+"/v2", nil)
		checker{t, ref}.want(r.code == 200 || r.code == 301, "GET /v2 = %v", r)
	})

	var d string
	t.Run("end-4b monolithic and end-2 pull with range", func(t *testing.T) {
		c := checker{t, ref}
		d = pushBlob(t, base, repo, blob)
		r := do(t, "HEAD", base+"/v2/"+repo+"/blobs/"+d, nil)
		c.want(r.code == 200 && r.header.Get("Content-Length") == fmt.Sprint(len(blob)), "HEAD blob = %v len %s", r, r.header.Get("Content-Length"))
		c.want(r.header.Get("Docker-Content-Digest") == d, "HEAD Docker-Content-Digest = %q", r.header.Get("Docker-Content-Digest"))
		r = do(t, "GET", base+"/v2/"+repo+"/blobs/"+d, nil)
		c.want(r.code == 200 && bytes.Equal(r.body, blob), "GET blob = %d, %d bytes", r.code, len(r.body))
		r = do(t, "GET", base+"/v2/"+repo+"/blobs/"+d, nil, "Range", "bytes=20-39")
		c.want(r.code == 206 && bytes.Equal(r.body, blob[20:40]), "range GET = %v", r)
		c.want(r.header.Get("Content-Range") == fmt.Sprintf("bytes 20-39/%d", len(blob)), "Content-Range = %q", r.header.Get("Content-Range"))
		r = do(t, "GET", base+"/v2/"+repo+"/blobs/"+d, nil, "Range", fmt.Sprintf("bytes=%d-", len(blob)+10))
		c.want(r.code == 416, "unsatisfiable range = %v", r)
		r = do(t, "GET", base+"/v2/"+repo+"/blobs/"+sha([]byte("nope")), nil)
		c.want(r.code == 404 && ociCode(r.body) == "BLOB_UNKNOWN", "unknown blob = %v", r)
		r = do(t, "GET", base+"/v2/other/repo/blobs/"+d, nil)
		c.want(r.code == 404, "blob visible in a repo that does not link it: %v", r)
		r = do(t, "GET", base+"/v2/"+repo+"/blobs/sha256:zz", nil)
		c.want(r.code == 400 || r.code == 404, "bad digest = %v", r)
	})

	t.Run("end-4a end-5 end-13 end-6 chunked resumable", func(t *testing.T) {
		c := checker{t, ref}
		data := bytes.Repeat([]byte("chunked!"), 3000)
		dd := sha(data)
		r := do(t, "POST", base+"/v2/"+repo+"/blobs/uploads/", nil)
		if r.code != 202 {
			t.Fatalf("POST = %v", r)
		}
		loc := abs(base, r.header.Get("Location"))
		c.want(r.header.Get("Docker-Upload-UUID") != "", "no Docker-Upload-UUID")
		r = do(t, "PATCH", loc, data[:10000], "Content-Type", "application/octet-stream", "Content-Range", "0-9999")
		c.want(r.code == 202 && r.header.Get("Range") == "0-9999", "PATCH 1 = %v Range %q", r, r.header.Get("Range"))
		loc = abs(base, r.header.Get("Location"))
		r = do(t, "GET", loc, nil)
		c.want(r.code == 204 && r.header.Get("Range") == "0-9999", "upload status = %v Range %q", r, r.header.Get("Range"))
		r = do(t, "PATCH", loc, data[10000:20000], "Content-Type", "application/octet-stream", "Content-Range", "10000-19999")
		c.want(r.code == 202 && r.header.Get("Range") == "0-19999", "PATCH 2 = %v Range %q", r, r.header.Get("Range"))
		loc = abs(base, r.header.Get("Location"))
		r = do(t, "PUT", withQuery(loc, "digest="+dd), data[20000:], "Content-Type", "application/octet-stream")
		c.want(r.code == 201 && r.header.Get("Docker-Content-Digest") == dd, "PUT = %v", r)
		r = do(t, "GET", base+"/v2/"+repo+"/blobs/"+dd, nil)
		c.want(r.code == 200 && bytes.Equal(r.body, data), "chunked blob read back = %d (%d bytes)", r.code, len(r.body))
		r = do(t, "GET", loc, nil)
		c.want(r.code == 404 && ociCode(r.body) == "BLOB_UPLOAD_UNKNOWN", "finished upload still has status: %v", r)
	})

	t.Run("out-of-order chunk", func(t *testing.T) {
		c := checker{t, ref}
		data := bytes.Repeat([]byte("order"), 1000)
		r := do(t, "POST", base+"/v2/"+repo+"/blobs/uploads/", nil)
		loc := abs(base, r.header.Get("Location"))
		r = do(t, "PATCH", loc, data[:1000], "Content-Type", "application/octet-stream", "Content-Range", "0-999")
		loc = abs(base, r.header.Get("Location"))
		// A chunk that does not start where the upload ends is refused.
		r = do(t, "PATCH", loc, data[2000:3000], "Content-Type", "application/octet-stream", "Content-Range", "2000-2999")
		c.want(r.code == 416, "out-of-order PATCH = %v", r)
		if l := r.header.Get("Location"); l != "" {
			loc = abs(base, l) // Distribution's Location carries upload state
		}
		r = do(t, "GET", loc, nil)
		c.want(r.header.Get("Range") == "0-999", "Range after a refused chunk = %q (%v)", r.header.Get("Range"), r)
	})

	t.Run("digest mismatch is refused and invisible", func(t *testing.T) {
		c := checker{t, ref}
		data := []byte("the real content")
		lie := sha([]byte("something else"))
		r := do(t, "POST", base+"/v2/"+repo+"/blobs/uploads/", nil)
		loc := abs(base, r.header.Get("Location"))
		r = do(t, "PUT", withQuery(loc, "digest="+lie), data, "Content-Type", "application/octet-stream")
		c.want(r.code == 400 && ociCode(r.body) == "DIGEST_INVALID", "mismatch PUT = %v", r)
		r = do(t, "HEAD", base+"/v2/"+repo+"/blobs/"+lie, nil)
		c.want(r.code == 404, "mismatched blob is visible: %v", r)
		r = do(t, "HEAD", base+"/v2/"+repo+"/blobs/"+sha(data), nil)
		c.want(r.code == 404, "content of a refused upload is visible: %v", r)
	})

	t.Run("end-11 mount", func(t *testing.T) {
		c := checker{t, ref}
		r := do(t, "POST", base+"/v2/suite/mounted/blobs/uploads/?mount="+d+"&from="+repo, nil)
		c.want(r.code == 201, "mount = %v", r)
		r = do(t, "HEAD", base+"/v2/suite/mounted/blobs/"+d, nil)
		c.want(r.code == 200, "mounted blob HEAD = %v", r)
		r = do(t, "POST", base+"/v2/suite/mounted2/blobs/uploads/?mount="+sha([]byte("absent"))+"&from="+repo, nil)
		c.want(r.code == 202, "mount of a missing blob must fall back to an upload session: %v", r)
	})

	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	cd := pushBlob(t, base, repo, config)
	_ = cd
	man := imageManifest(config, blob, "")
	md := sha(man)
	t.Run("end-7 end-3 manifests", func(t *testing.T) {
		c := checker{t, ref}
		bad := imageManifest(config, []byte("never pushed"), "")
		r := do(t, "PUT", base+"/v2/"+repo+"/manifests/v0", bad, "Content-Type", MediaTypeOCIManifest)
		c.want(r.code == 400 && ociCode(r.body) == "MANIFEST_BLOB_UNKNOWN", "manifest with unknown blob = %v", r)
		r = do(t, "PUT", base+"/v2/"+repo+"/manifests/v0", []byte(`{"schemaVersion":2,`), "Content-Type", MediaTypeOCIManifest)
		c.want(r.code == 400 && ociCode(r.body) == "MANIFEST_INVALID", "truncated manifest = %v", r)
		for _, tag := range []string{"v1", "v2", "v3", "latest"} {
			r = do(t, "PUT", base+"/v2/"+repo+"/manifests/"+tag, man, "Content-Type", MediaTypeOCIManifest)
			c.want(r.code == 201 && r.header.Get("Docker-Content-Digest") == md, "PUT manifest %s = %v", tag, r)
		}
		r = do(t, "PUT", base+"/v2/"+repo+"/manifests/"+sha([]byte("x")), man, "Content-Type", MediaTypeOCIManifest)
		c.want(r.code == 400, "PUT by wrong digest = %v", r)
		r = do(t, "GET", base+"/v2/"+repo+"/manifests/v1", nil, "Accept", MediaTypeOCIManifest)
		c.want(r.code == 200 && bytes.Equal(r.body, man) && r.header.Get("Content-Type") == MediaTypeOCIManifest, "GET by tag = %v ct %q", r, r.header.Get("Content-Type"))
		r = do(t, "HEAD", base+"/v2/"+repo+"/manifests/"+md, nil, "Accept", MediaTypeOCIManifest)
		c.want(r.code == 200 && r.header.Get("Docker-Content-Digest") == md, "HEAD by digest = %v", r)
		r = do(t, "GET", base+"/v2/"+repo+"/manifests/nope", nil, "Accept", MediaTypeOCIManifest)
		c.want(r.code == 404 && ociCode(r.body) == "MANIFEST_UNKNOWN", "unknown tag = %v", r)
	})

	t.Run("end-8 tags with pagination", func(t *testing.T) {
		c := checker{t, ref}
		r := do(t, "GET", base+"/v2/"+repo+"/tags/list", nil)
		var tl struct {
			Name string
			Tags []string
		}
		_ = json.Unmarshal(r.body, &tl)
		c.want(r.code == 200 && strings.Join(tl.Tags, ",") == "latest,v1,v2,v3", "tags = %v", r)
		r = do(t, "GET", base+"/v2/"+repo+"/tags/list?n=2", nil)
		_ = json.Unmarshal(r.body, &tl)
		c.want(strings.Join(tl.Tags, ",") == "latest,v1", "n=2 = %v", r)
		c.want(strings.Contains(r.header.Get("Link"), `rel="next"`), "no Link header on a partial page: %q", r.header.Get("Link"))
		r = do(t, "GET", base+"/v2/"+repo+"/tags/list?n=2&last=v1", nil)
		_ = json.Unmarshal(r.body, &tl)
		c.want(strings.Join(tl.Tags, ",") == "v2,v3", "n=2&last=v1 = %v", r)
		r = do(t, "GET", base+"/v2/no/such/repo/tags/list", nil)
		c.want(r.code == 404 && ociCode(r.body) == "NAME_UNKNOWN", "tags of unknown repo = %v", r)
	})

	t.Run("catalog", func(t *testing.T) {
		c := checker{t, ref}
		r := do(t, "GET", base+"/v2/_catalog", nil)
		c.want(r.code == 200 && strings.Contains(string(r.body), `"suite/models"`), "catalog = %v", r)
		r = do(t, "GET", base+"/v2/_catalog?n=1", nil)
		var cat struct{ Repositories []string }
		_ = json.Unmarshal(r.body, &cat)
		c.want(r.code == 200 && len(cat.Repositories) == 1, "catalog n=1 = %v", r)
	})

	t.Run("end-12 referrers", func(t *testing.T) {
		c := checker{t, ref}
		sig := []byte(`{"signature":true}`)
		pushBlob(t, base, repo, sig)
		emptyCfg := []byte(`{}`)
		pushBlob(t, base, repo, emptyCfg)
		am := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.llmo.test.sig",`+
			`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},`+
			`"layers":[{"mediaType":"application/octet-stream","digest":"%s","size":%d}],`+
			`"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d}}`,
			sha(emptyCfg), sha(sig), len(sig), md, len(man)))
		r := do(t, "PUT", base+"/v2/"+repo+"/manifests/"+sha(am), am, "Content-Type", MediaTypeOCIManifest)
		c.want(r.code == 201, "PUT referrer = %v", r)
		c.want(r.header.Get("OCI-Subject") == md, "OCI-Subject = %q", r.header.Get("OCI-Subject"))
		r = do(t, "GET", base+"/v2/"+repo+"/referrers/"+md, nil)
		c.want(r.code == 200 && strings.Contains(string(r.body), sha(am)), "referrers = %v", r)
		r = do(t, "GET", base+"/v2/"+repo+"/referrers/"+md+"?artifactType=application/other", nil)
		c.want(r.code == 200 && !strings.Contains(string(r.body), sha(am)), "filtered referrers = %v", r)
	})

	t.Run("end-9 end-10 deletes", func(t *testing.T) {
		c := checker{t, ref}
		r := do(t, "DELETE", base+"/v2/"+repo+"/manifests/"+md, nil)
		c.want(r.code == 202, "DELETE manifest = %v", r)
		r = do(t, "GET", base+"/v2/"+repo+"/manifests/"+md, nil, "Accept", MediaTypeOCIManifest)
		c.want(r.code == 404, "deleted manifest = %v", r)
		r = do(t, "GET", base+"/v2/"+repo+"/manifests/v1", nil, "Accept", MediaTypeOCIManifest)
		c.want(r.code == 404, "tag of a deleted manifest = %v", r)
		r = do(t, "DELETE", base+"/v2/"+repo+"/blobs/"+d, nil)
		c.want(r.code == 202, "DELETE blob = %v", r)
		r = do(t, "HEAD", base+"/v2/"+repo+"/blobs/"+d, nil)
		c.want(r.code == 404, "deleted blob = %v", r)
		r = do(t, "HEAD", base+"/v2/suite/mounted/blobs/"+d, nil)
		c.want(r.code == 200, "delete in one repo removed the blob from another: %v", r)
		r = do(t, "DELETE", base+"/v2/"+repo+"/blobs/"+d, nil)
		c.want(r.code == 404, "second DELETE blob = %v", r)
	})

	t.Run("bad names", func(t *testing.T) {
		c := checker{t, ref}
		for _, p := range []string{"/v2/UPPER/blobs/uploads/", "/v2/a/../b/blobs/uploads/", "/v2/a//b/blobs/uploads/", "/v2/-a/blobs/uploads/", "/v2/a%2F..%2Fb/blobs/uploads/"} {
			r := do(t, "POST", base+p, nil)
			// net/http's mux answers unclean paths with a redirect to the
			// cleaned path, which is then validated like any other.
			loc := r.header.Get("Location")
			c.want(r.code == 400 || r.code == 404 || (r.code == 307 && !strings.Contains(loc, "..") && !strings.Contains(loc, "//")), "POST %s = %v (Location %q)", p, r, loc)
		}
	})
	_ = c
}

func TestSpecFilesystem(t *testing.T) {
	base, _ := startFS(t, nil)
	runSpecSuite(t, base, false)
}

func TestSpecS3(t *testing.T) {
	base, _ := startS3(t, nil)
	runSpecSuite(t, base, false)
}

func TestSpecReferenceDockerRegistry(t *testing.T) {
	runSpecSuite(t, startDockerRegistry(t), true)
}
