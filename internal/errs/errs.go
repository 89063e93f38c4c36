// Package errs is llmo's one error vocabulary.
//
// Every layer returns *Error values (or wraps them) with a Kind that says what
// went wrong from the caller's point of view. The HTTP layer maps a Kind to a
// status code in one table and renders the message in the OpenAI or Ollama
// envelope. The client sees Message; Detail (the wrapped error) is only
// logged, so internal paths and addresses never leak to callers.
package errs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Kind classifies an error by what the caller should do about it.
type Kind int

// The kinds, roughly in the order of the HTTP statuses they map to.
const (
	Internal            Kind = iota // a bug or an unexpected failure: 500
	Invalid                         // malformed or out-of-range input: 400
	Unauthenticated                 // missing or bad credentials: 401
	PermissionDenied                // authenticated but not allowed: 403
	NotFound                        // no such model, route or object: 404
	MethodNotAllowed                // wrong HTTP method: 405
	Conflict                        // state conflict (digest mismatch on upload, ...): 409
	TooLarge                        // body, prompt or upload over a limit: 413
	UnsupportedMedia                // wrong Content-Type: 415
	RangeNotSatisfiable             // bad byte range: 416
	RateLimited                     // quota or queue full, retry later: 429
	Canceled                        // the client went away: 499 (logged only)
	NotImplemented                  // feature not built: 501
	BadGateway                      // an upstream answered badly: 502
	Unavailable                     // not ready, draining or no healthy upstream: 503
	Timeout                         // an upstream or deadline expired: 504
)

var kindInfo = [...]struct {
	status int
	name   string // OpenAI error "type"
}{
	Internal:            {http.StatusInternalServerError, "server_error"},
	Invalid:             {http.StatusBadRequest, "invalid_request_error"},
	Unauthenticated:     {http.StatusUnauthorized, "authentication_error"},
	PermissionDenied:    {http.StatusForbidden, "permission_error"},
	NotFound:            {http.StatusNotFound, "not_found_error"},
	MethodNotAllowed:    {http.StatusMethodNotAllowed, "invalid_request_error"},
	Conflict:            {http.StatusConflict, "conflict_error"},
	TooLarge:            {http.StatusRequestEntityTooLarge, "invalid_request_error"},
	UnsupportedMedia:    {http.StatusUnsupportedMediaType, "invalid_request_error"},
	RangeNotSatisfiable: {http.StatusRequestedRangeNotSatisfiable, "invalid_request_error"},
	RateLimited:         {http.StatusTooManyRequests, "rate_limit_error"},
	Canceled:            {499, "canceled"},
	NotImplemented:      {http.StatusNotImplemented, "not_implemented_error"},
	BadGateway:          {http.StatusBadGateway, "upstream_error"},
	Unavailable:         {http.StatusServiceUnavailable, "service_unavailable_error"},
	Timeout:             {http.StatusGatewayTimeout, "timeout_error"},
}

// Status is the HTTP status code for k.
func (k Kind) Status() int {
	if k < 0 || int(k) >= len(kindInfo) {
		return http.StatusInternalServerError
	}
	return kindInfo[k].status
}

// String is the OpenAI error type for k, such as "invalid_request_error".
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindInfo) {
		return "server_error"
	}
	return kindInfo[k].name
}

// Error is llmo's error value.
type Error struct {
	Kind       Kind
	Message    string        // safe to show to the client
	Param      string        // the offending request parameter, if any
	Code       string        // a machine-readable code, such as "model_not_found"
	RetryAfter time.Duration // sent as Retry-After on 429 and 503
	Err        error         // detail for logs only
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Kind.String()
	}
	if e.Err != nil {
		return msg + ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// E builds an *Error of kind k with a client-facing message.
func E(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Param builds an Invalid error naming the request parameter at fault.
func Param(param, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Param: param, Message: fmt.Sprintf(format, args...)}
}

// Wrap builds an *Error of kind k that keeps err as the logged detail.
func Wrap(k Kind, err error, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...), Err: err}
}

// WithRetry sets RetryAfter and returns e, for chaining.
func (e *Error) WithRetry(d time.Duration) *Error { e.RetryAfter = d; return e }

// WithCode sets Code and returns e, for chaining.
func (e *Error) WithCode(code string) *Error { e.Code = code; return e }

// As returns the *Error in err's chain. Context errors become Canceled or
// Timeout; anything else is Internal with a generic client message.
func As(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, context.Canceled):
		return &Error{Kind: Canceled, Message: "request canceled", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Kind: Timeout, Message: "request timed out", Err: err}
	}
	return &Error{Kind: Internal, Message: "internal error", Err: err}
}

// KindOf is the Kind of err (Internal for foreign errors).
func KindOf(err error) Kind { return As(err).Kind }

// Is reports whether err carries kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

// Wrapf annotates *errp with an operation name, as pkgsite's derrors.Wrap
// does, keeping the Kind of an *Error intact:
//
//	defer errs.Wrapf(&err, "gguf.Open(%q)", path)
func Wrapf(errp *error, format string, args ...any) {
	if *errp == nil {
		return
	}
	op := fmt.Sprintf(format, args...)
	var e *Error
	if errors.As(*errp, &e) {
		c := *e
		c.Err = fmt.Errorf("%s: %w", op, errOrEmpty(e.Err))
		*errp = &c
		return
	}
	*errp = fmt.Errorf("%s: %w", op, *errp)
}

func errOrEmpty(err error) error {
	if err == nil {
		return errors.New("")
	}
	return err
}
