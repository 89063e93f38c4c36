package storage

import (
	"encoding/json"
	"net/http"

	"github.com/llmo/llmo/internal/errs"
)

// Error codes of the OCI distribution spec, carried in errs.Error.Code.
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeUnauthorized        = "UNAUTHORIZED"
	codeDenied              = "DENIED"
	codeUnsupported         = "UNSUPPORTED"
	codeTooManyRequests     = "TOOMANYREQUESTS"
	codeTagInvalid          = "TAG_INVALID" // used by Distribution; not in the spec's table
)

type ociError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail"`
}

type ociErrors struct {
	Errors []ociError `json:"errors"`
}

// defaultCode picks a spec code for errors that did not set one.
func defaultCode(k errs.Kind) string {
	switch k {
	case errs.Unauthenticated:
		return codeUnauthorized
	case errs.PermissionDenied:
		return codeDenied
	case errs.NotFound:
		return codeNameUnknown
	case errs.TooLarge:
		return codeSizeInvalid
	case errs.RateLimited:
		return codeTooManyRequests
	case errs.MethodNotAllowed, errs.NotImplemented:
		return codeUnsupported
	case errs.Invalid:
		return codeBlobUploadInvalid
	}
	return "UNKNOWN"
}

// writeOCIError renders err in the distribution spec's envelope
// {"errors":[{"code","message","detail"}]}, logging the detail.
func (s *Storage) writeOCIError(w http.ResponseWriter, r *http.Request, err error) {
	e := errs.As(err)
	if e.Kind == errs.Canceled {
		return
	}
	if e.Kind == errs.Internal || e.Kind == errs.Unavailable {
		s.log.ErrorContext(r.Context(), "storage error", "route", r.Pattern, "err", err)
	} else {
		s.log.DebugContext(r.Context(), "storage client error", "route", r.Pattern, "err", err)
	}
	s.metrics.errors.WithLabelValues(opOf(r)).Inc()
	code := e.Code
	if code == "" {
		code = defaultCode(e.Kind)
	}
	msg := e.Message
	if msg == "" {
		msg = e.Kind.String()
	}
	body, _ := json.Marshal(ociErrors{Errors: []ociError{{Code: code, Message: msg, Detail: nil}}})
	if e.Kind == errs.Unauthenticated {
		w.Header().Set("WWW-Authenticate", `Basic realm="llmo-storage"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Kind.Status())
	if r.Method != http.MethodHead {
		_, _ = w.Write(append(body, '\n'))
	}
}
