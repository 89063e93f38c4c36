package storage

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/llmo/llmo/internal/errs"
)

// route is a parsed /v2 request path.
type route struct {
	kind string // base, catalog, tags, manifest, blob, upload, referrers
	name string // repository
	arg  string // reference, digest or upload id ("" to start an upload)
}

// Route templates, used as metric labels instead of raw paths.
var templates = map[string]string{
	"base":      "/v2/",
	"catalog":   "/v2/_catalog",
	"tags":      "/v2/{name}/tags/list",
	"manifest":  "/v2/{name}/manifests/{reference}",
	"blob":      "/v2/{name}/blobs/{digest}",
	"upload":    "/v2/{name}/blobs/uploads/{uuid}",
	"referrers": "/v2/{name}/referrers/{digest}",
}

// parseRoute splits a /v2 path. Repository names may contain "/" and even
// components such as "blobs", so each form is tried from the end of the
// path and the name is validated separately.
func parseRoute(p string) (route, bool) {
	if p == "/v2" {
		return route{kind: "base"}, true
	}
	p, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return route{}, false
	}
	switch p {
	case "":
		return route{kind: "base"}, true
	case "_catalog":
		return route{kind: "catalog"}, true
	}
	if name, ok := strings.CutSuffix(p, "/tags/list"); ok {
		return route{kind: "tags", name: name}, true
	}
	if name, ok := strings.CutSuffix(p, "/blobs/uploads"); ok {
		return route{kind: "upload", name: name}, true
	}
	for _, f := range []struct{ sep, kind string }{
		{"/blobs/uploads/", "upload"},
		{"/manifests/", "manifest"},
		{"/blobs/", "blob"},
		{"/referrers/", "referrers"},
	} {
		i := strings.LastIndex(p, f.sep)
		if i <= 0 {
			continue
		}
		arg := p[i+len(f.sep):]
		if strings.Contains(arg, "/") {
			continue
		}
		if arg == "" && f.kind != "upload" {
			continue
		}
		return route{kind: f.kind, name: p[:i], arg: arg}, true
	}
	return route{}, false
}

func opOf(r *http.Request) string {
	t := r.Pattern
	for k, v := range templates {
		if strings.HasSuffix(t, v) {
			return k
		}
	}
	return "other"
}

func (s *Storage) serveV2(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		s.writeOCIError(w, r, errs.E(errs.NotFound, "no such endpoint %q", truncate(r.URL.Path)).WithCode(codeNameUnknown))
		return
	}
	// Label metrics and logs by template, never by the raw path.
	r.Pattern = r.Method + " " + templates[rt.kind]
	if rt.kind != "base" && rt.kind != "catalog" {
		if err := ValidRepo(rt.name); err != nil {
			s.writeOCIError(w, r, err)
			return
		}
	}
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	if write || rt.kind == "base" {
		if err := s.authorize(r); err != nil {
			if rt.kind == "base" && r.Method == http.MethodGet && s.cfg.PushToken != "" {
				// /v2/ is the clients' ping: challenge them so that clients
				// with credentials learn the scheme; reads stay anonymous.
				s.writeOCIError(w, r, err)
				return
			}
			if write {
				s.writeOCIError(w, r, err)
				return
			}
		}
	}
	var err error
	switch rt.kind + " " + r.Method {
	case "base GET", "base HEAD":
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, "{}\n")
		}
	case "catalog GET":
		err = s.handleCatalog(w, r)
	case "tags GET":
		err = s.handleTags(w, r, rt.name)
	case "manifest GET", "manifest HEAD":
		err = s.handleGetManifest(w, r, rt.name, rt.arg)
	case "manifest PUT":
		err = s.handlePutManifest(w, r, rt.name, rt.arg)
	case "manifest DELETE":
		err = s.reg.deleteManifest(r.Context(), rt.name, rt.arg)
		if err == nil {
			w.WriteHeader(http.StatusAccepted)
		}
	case "blob GET", "blob HEAD":
		err = s.handleGetBlob(w, r, rt.name, rt.arg)
	case "blob DELETE":
		err = s.handleDeleteBlob(w, r, rt.name, rt.arg)
	case "upload POST":
		if rt.arg != "" {
			err = errs.E(errs.MethodNotAllowed, "POST starts an upload at /v2/<name>/blobs/uploads/").WithCode(codeUnsupported)
			break
		}
		err = s.handleStartUpload(w, r, rt.name)
	case "upload GET":
		err = s.handleUploadStatus(w, r, rt.name, rt.arg)
	case "upload PATCH":
		err = s.handlePatchUpload(w, r, rt.name, rt.arg)
	case "upload PUT":
		err = s.handlePutUpload(w, r, rt.name, rt.arg)
	case "upload DELETE":
		err = s.handleCancelUpload(w, r, rt.name, rt.arg)
	case "referrers GET":
		err = s.handleReferrers(w, r, rt.name, rt.arg)
	default:
		err = errs.E(errs.MethodNotAllowed, "method %s is not allowed on %s", r.Method, templates[rt.kind]).WithCode(codeUnsupported)
	}
	if err != nil {
		s.writeOCIError(w, r, err)
	}
}

// authorize checks the push token: "Authorization: Bearer TOKEN", or Basic
// auth with TOKEN as the password (any user name), which is what docker,
// crane, skopeo and oras send when given credentials.
func (s *Storage) authorize(r *http.Request) error {
	if s.cfg.PushToken == "" {
		return nil
	}
	var got string
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		got = strings.TrimSpace(tok)
	} else if _, pw, ok := r.BasicAuth(); ok {
		got = pw
	}
	if got == "" {
		return errs.E(errs.Unauthenticated, "authentication required to push or delete").WithCode(codeUnauthorized)
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.PushToken)) != 1 {
		return errs.E(errs.Unauthenticated, "invalid push token").WithCode(codeUnauthorized)
	}
	return nil
}

// pageParams reads the n and last query parameters of tags/list and
// _catalog.
func pageParams(r *http.Request) (n int, last string, err error) {
	q := r.URL.Query()
	n = -1
	if v := q.Get("n"); v != "" {
		n, err = strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, "", errs.Param("n", "n must be a non-negative integer").WithCode("PAGINATION_NUMBER_INVALID")
		}
	}
	return n, q.Get("last"), nil
}

// page applies n/last to a sorted list and sets the Link header.
func page(w http.ResponseWriter, base string, all []string, n int, last string) []string {
	out := all
	if last != "" {
		i := 0
		for i < len(out) && out[i] <= last {
			i++
		}
		out = out[i:]
	}
	if n >= 0 && len(out) > n {
		out = out[:n]
		if n > 0 {
			w.Header().Set("Link", fmt.Sprintf(`<%s?n=%d&last=%s>; rel="next"`, base, n, url.QueryEscape(out[n-1])))
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}

func (s *Storage) handleCatalog(w http.ResponseWriter, r *http.Request) error {
	n, last, err := pageParams(r)
	if err != nil {
		return err
	}
	names, err := s.reg.repositories(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"repositories": page(w, "/v2/_catalog", names, n, last)})
	return nil
}

func (s *Storage) handleTags(w http.ResponseWriter, r *http.Request, name string) error {
	n, last, err := pageParams(r)
	if err != nil {
		return err
	}
	ok, err := s.reg.repoExists(r.Context(), name)
	if err != nil {
		return err
	}
	if !ok {
		return errs.E(errs.NotFound, "repository %q not known to registry", name).WithCode(codeNameUnknown)
	}
	tags, err := s.reg.tags(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "tags": page(w, "/v2/"+name+"/tags/list", tags, n, last)})
	return nil
}

func (s *Storage) handleGetManifest(w http.ResponseWriter, r *http.Request, name, ref string) error {
	d, mt, err := s.reg.resolveManifest(r.Context(), name, ref)
	if err != nil {
		return err
	}
	b, err := s.reg.readManifest(r.Context(), d)
	if err != nil {
		if err == errVerify {
			s.metrics.verifyFailures.Inc()
		}
		return err
	}
	h := w.Header()
	h.Set("Content-Type", mt)
	h.Set("Docker-Content-Digest", string(d))
	h.Set("ETag", `"`+string(d)+`"`)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		n, _ := w.Write(b)
		s.metrics.bytesOut.Add(float64(n))
	}
	return nil
}

func (s *Storage) handlePutManifest(w http.ResponseWriter, r *http.Request, name, ref string) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifestBytes+1))
	if err != nil {
		return bodyErr(r, err)
	}
	s.metrics.bytesIn.Add(float64(len(body)))
	d, m, err := s.reg.putManifest(r.Context(), name, ref, r.Header.Get("Content-Type"), body)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/manifests/"+string(d))
	h.Set("Docker-Content-Digest", string(d))
	if m.Subject != nil {
		h.Set("OCI-Subject", m.Subject.Digest)
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func bodyErr(r *http.Request, err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errs.E(errs.TooLarge, "request body exceeds the limit of %d bytes", mbe.Limit).WithCode(codeSizeInvalid)
	}
	if r.Context().Err() != nil {
		return errs.Wrap(errs.Canceled, err, "request canceled")
	}
	return errs.Wrap(errs.Invalid, err, "could not read the request body").WithCode(codeBlobUploadInvalid)
}

func (s *Storage) handleGetBlob(w http.ResponseWriter, r *http.Request, name, digest string) error {
	d, err := ParseDigest(digest)
	if err != nil {
		return err
	}
	if _, err := s.reg.blobInRepo(r.Context(), name, d); err != nil {
		return err
	}
	f, size, err := s.reg.b.Open(r.Context(), blobKey(d))
	if isNotExist(err) {
		return blobUnknown(d)
	}
	if err != nil {
		return internal(err, "open blob")
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Docker-Content-Digest", string(d))
	h.Set("ETag", `"`+string(d)+`"`)
	h.Set("Accept-Ranges", "bytes")
	vr := &verifyingReader{rs: f, size: size, want: d, h: sha256.New(), s: s}
	http.ServeContent(w, r, "", zeroTime, vr)
	return nil
}

func (s *Storage) handleDeleteBlob(w http.ResponseWriter, r *http.Request, name, digest string) error {
	d, err := ParseDigest(digest)
	if err != nil {
		return err
	}
	ok, err := s.reg.exists(r.Context(), layerLink(name, d))
	if err != nil {
		return err
	}
	if !ok {
		return blobUnknown(d)
	}
	if err := s.reg.b.Delete(r.Context(), layerLink(name, d)); err != nil {
		return internal(err, "delete blob link")
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Storage) uploadHeaders(w http.ResponseWriter, name, id string, size int64) {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
	h.Set("Docker-Upload-UUID", id)
	end := size - 1
	if end < 0 {
		end = 0 // as CNCF Distribution does for an empty session
	}
	h.Set("Range", fmt.Sprintf("0-%d", end))
	h.Set("Content-Length", "0")
}

func (s *Storage) handleStartUpload(w http.ResponseWriter, r *http.Request, name string) error {
	ctx := r.Context()
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		d, err := ParseDigest(mount)
		if err != nil {
			return err
		}
		if from := q.Get("from"); from != "" && ValidRepo(from) == nil {
			ok, err := s.reg.mount(ctx, name, from, d)
			if err != nil {
				return err
			}
			if ok {
				w.Header().Set("Location", "/v2/"+name+"/blobs/"+string(d))
				w.Header().Set("Docker-Content-Digest", string(d))
				w.WriteHeader(http.StatusCreated)
				return nil
			}
		}
		// The spec says to fall back to an ordinary upload session.
	}
	var want Digest
	if v := q.Get("digest"); v != "" {
		var err error
		if want, err = ParseDigest(v); err != nil {
			return err
		}
	}
	id, err := s.reg.startUpload(ctx, name)
	if err != nil {
		return err
	}
	if want == "" {
		s.uploadHeaders(w, name, id, 0)
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	// Monolithic upload: POST ?digest= with the whole blob as the body.
	unlock := s.reg.lockUpload(id)
	defer unlock()
	u := &upload{Repo: name}
	if err := s.appendBody(r, id, u); err != nil {
		_ = s.reg.cancelUpload(ctx, id)
		return err
	}
	if err := s.finish(w, r, id, u, want); err != nil {
		return err
	}
	return nil
}

func (s *Storage) appendBody(r *http.Request, id string, u *upload) error {
	n, err := s.reg.appendChunk(r.Context(), id, u, r.Body)
	s.metrics.bytesIn.Add(float64(n))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errs.E(errs.TooLarge, "upload exceeds the limit of %d bytes", mbe.Limit).WithCode(codeSizeInvalid)
		}
		return err
	}
	return nil
}

func (s *Storage) finish(w http.ResponseWriter, r *http.Request, id string, u *upload, d Digest) error {
	if err := s.reg.commit(r.Context(), id, u, d); err != nil {
		if errs.As(err).Code == codeDigestInvalid {
			s.metrics.verifyFailures.Inc()
			_ = s.reg.cancelUpload(r.Context(), id)
		}
		return err
	}
	w.Header().Set("Location", "/v2/"+u.Repo+"/blobs/"+string(d))
	w.Header().Set("Docker-Content-Digest", string(d))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Storage) handleUploadStatus(w http.ResponseWriter, r *http.Request, name, id string) error {
	u, err := s.reg.loadUpload(r.Context(), name, id)
	if err != nil {
		return err
	}
	s.uploadHeaders(w, name, id, u.Size)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// parseContentRange reads a PATCH's "Content-Range: START-END" (the spec's
// form; "bytes START-END/*" is accepted too).
func parseContentRange(v string) (start, end int64, err error) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "bytes ")
	v, _, _ = strings.Cut(v, "/")
	a, b, ok := strings.Cut(v, "-")
	if ok {
		start, err = strconv.ParseInt(a, 10, 64)
		if err == nil {
			end, err = strconv.ParseInt(b, 10, 64)
		}
	}
	if !ok || err != nil || start < 0 || end < start {
		return 0, 0, errs.E(errs.RangeNotSatisfiable, "invalid Content-Range %q", truncate(v)).WithCode(codeBlobUploadInvalid)
	}
	return start, end, nil
}

func (s *Storage) handlePatchUpload(w http.ResponseWriter, r *http.Request, name, id string) error {
	unlock := s.reg.lockUpload(id)
	defer unlock()
	u, err := s.reg.loadUpload(r.Context(), name, id)
	if err != nil {
		return err
	}
	if cr := r.Header.Get("Content-Range"); cr != "" {
		start, end, err := parseContentRange(cr)
		if err != nil {
			return err
		}
		if start != u.Size {
			// Out of order: the client must resume from the Range we report.
			s.uploadHeaders(w, name, id, u.Size)
			return errs.E(errs.RangeNotSatisfiable, "chunk starts at %d but the upload has %d bytes", start, u.Size).WithCode(codeBlobUploadInvalid)
		}
		if r.ContentLength >= 0 && r.ContentLength != end-start+1 {
			return errs.E(errs.RangeNotSatisfiable, "Content-Range covers %d bytes but Content-Length is %d", end-start+1, r.ContentLength).WithCode(codeSizeInvalid)
		}
	}
	if err := s.appendBody(r, id, u); err != nil {
		return err
	}
	s.uploadHeaders(w, name, id, u.Size)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Storage) handlePutUpload(w http.ResponseWriter, r *http.Request, name, id string) error {
	unlock := s.reg.lockUpload(id)
	defer unlock()
	u, err := s.reg.loadUpload(r.Context(), name, id)
	if err != nil {
		return err
	}
	v := r.URL.Query().Get("digest")
	if v == "" {
		return errs.E(errs.Invalid, "the digest query parameter is required to complete an upload").WithCode(codeDigestInvalid)
	}
	d, err := ParseDigest(v)
	if err != nil {
		return err
	}
	if err := s.appendBody(r, id, u); err != nil {
		return err
	}
	return s.finish(w, r, id, u, d)
}

func (s *Storage) handleCancelUpload(w http.ResponseWriter, r *http.Request, name, id string) error {
	unlock := s.reg.lockUpload(id)
	defer unlock()
	if _, err := s.reg.loadUpload(r.Context(), name, id); err != nil {
		return err
	}
	if err := s.reg.cancelUpload(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Storage) handleReferrers(w http.ResponseWriter, r *http.Request, name, digest string) error {
	d, err := ParseDigest(digest)
	if err != nil {
		return err
	}
	at := r.URL.Query().Get("artifactType")
	descs, err := s.reg.referrers(r.Context(), name, d, at)
	if err != nil {
		return err
	}
	if at != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", MediaTypeOCIIndex)
	writeJSONType(w, http.StatusOK, MediaTypeOCIIndex, Manifest{SchemaVersion: 2, MediaType: MediaTypeOCIIndex, Manifests: descs})
	return nil
}

// verifyingReader serves a blob and, when a response reads it from start
// to end, hashes it on the way out. A mismatch withholds the last chunk,
// so the client sees a short body rather than a complete corrupt one.
type verifyingReader struct {
	rs   io.ReadSeeker
	size int64
	pos  int64
	want Digest
	h    interface {
		io.Writer
		Sum([]byte) []byte
		Reset()
	}
	hashing bool
	s       *Storage
}

func (v *verifyingReader) Seek(off int64, whence int) (int64, error) {
	n, err := v.rs.Seek(off, whence)
	v.pos = n
	v.hashing = n == 0
	v.h.Reset()
	return n, err
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.rs.Read(p)
	if n > 0 {
		if v.hashing {
			_, _ = v.h.Write(p[:n])
		}
		v.pos += int64(n)
		if v.hashing && v.pos == v.size {
			if "sha256:"+hex.EncodeToString(v.h.Sum(nil)) != string(v.want) {
				v.s.metrics.verifyFailures.Inc()
				v.s.log.Error("blob failed digest verification on read", "digest", v.want)
				return 0, errVerify
			}
		}
		v.s.metrics.bytesOut.Add(float64(n))
	}
	return n, err
}
